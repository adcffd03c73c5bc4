"""The in-process checks on the client chosen: greenlets on geventhttpclient, or aiohttp on asyncio.

Each client is imported only when chosen, so a run pays for one of them at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import Literal

from .._extras import need
from ._check import Check

__all__ = ["CLIENTS", "Client", "check_local", "choose", "preload"]

Client = Literal["gevent", "aiohttp"]
CLIENTS: tuple[str, ...] = ("auto", "gevent", "aiohttp")
"""``--client``'s choices; ``auto`` is gevent where it is installed (with geventhttpclient)."""


def choose(client: str = "auto") -> Client:
    """The client ``client`` names; ``auto``: gevent where gevent and geventhttpclient are
    installed (about half aiohttp's CPU per check), else aiohttp."""
    if client == "gevent":
        return "gevent"
    if client == "aiohttp":
        need("monitor", "the monitor's aiohttp client")
        return "aiohttp"
    if client != "auto":
        raise ValueError(f"no monitor client {client!r}: choose one of {', '.join(CLIENTS)}")
    green = find_spec("gevent") is not None and find_spec("geventhttpclient") is not None
    if not green:  # gevent's client is baozi[gevent]'s; aiohttp is baozi[monitor]'s
        need("monitor", "the URL monitor")
    return "gevent" if green else "aiohttp"


def preload(client: Client) -> None:
    """Import ``client``'s modules now (before forking children that will use them)."""
    if client == "gevent":
        from ._green import check_indexed  # noqa: F401
    else:
        from ._aio import run  # noqa: F401


def check_local(
    urls: list[str],
    expect: int,
    timeout: float,
    concurrency: int,
    on_done: Callable[[int, Check], object] | None = None,
    client: Client = "aiohttp",
) -> list[Check]:
    """Check every URL in this process, ``concurrency`` at a time, on ``client``; results in
    input order, ``on_done`` told each one's place in ``urls``. Blocks until all are done."""
    if client == "gevent":
        from ._green import check_indexed as on_greenlets

        return on_greenlets(urls, expect, timeout, concurrency, on_done)
    from ._aio import check_indexed, run

    return run(check_indexed(urls, expect, timeout, concurrency, on_done))
