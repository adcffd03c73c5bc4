"""The checks on greenlets, with geventhttpclient: the gevent pool's task, and the in-process
monitor's checks where gevent is installed (about half aiohttp's CPU per check).

geventhttpclient uses gevent's own sockets, so neither needs the standard library patched: the
in-process monitor runs its greenlets on gevent's hub in an unpatched process. geventhttpclient
comes with the ``gevent`` extra.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult

from ._check import Check, failed, judge

try:
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL
except ImportError as exc:  # pragma: no cover -- installed with gevent by the extra
    raise ImportError(
        "the monitor's gevent check needs geventhttpclient: pip install 'baozi[gevent]'"
    ) from exc

__all__ = ["check_indexed", "check_one", "check_url"]

CONNECTIONS = 1000
"""Connections each host's client may hold (the pool's concurrency bounds them in practice)."""

HOSTS = 1000
"""Clients kept, the most recently used: a worker that checks many hosts keeps no more."""

_clients: OrderedDict[tuple[str, str, int, float], Any] = OrderedDict()


def _client(url: Any, timeout: float) -> Any:
    """The process's client for this scheme, host and port: its connections stay alive from one
    job to the next, and every greenlet shares it (greenlets of one thread need no lock)."""
    key = (url.scheme, url.host, url.port, timeout)
    client = _clients.get(key)
    if client is not None:
        _clients.move_to_end(key)
        return client
    if len(_clients) >= HOSTS:
        # Dropped, not closed: a greenlet may be using it still; its sockets close with it.
        _clients.popitem(last=False)
    client = _clients[key] = HTTPClient(
        url.host,
        url.port,
        ssl=url.scheme == "https",
        concurrency=CONNECTIONS,
        # No timeouts of its own (settimeout(None), though its hints say float): the check's
        # gevent.Timeout bounds the connect, the TLS handshake and every read, with one timer.
        connection_timeout=None,  # type: ignore[arg-type]
        network_timeout=None,  # type: ignore[arg-type]
    )
    _share_lookups(client)
    return client


DNS_TTL = 300.0
"""Seconds a host's address, once looked up, serves every new connection to it (as aiohttp's
``ttl_dns_cache`` does for the asyncio checks)."""


def _share_lookups(client: Any) -> None:
    """Make the client's connections share one DNS lookup per ``DNS_TTL``: geventhttpclient looks
    the host up again for every new connection, in a thread of gevent's pool, and a thousand
    connections opened at once cost a thousand lookups. Relies on its connection pool's
    ``_resolve`` (geventhttpclient 2.x); without one, the client is left as it is."""
    pool: Any = getattr(client, "_connection_pool", None)
    resolve = getattr(pool, "_resolve", None)
    if resolve is None:
        return
    found: list[Any] = []  # [addresses, looked up at]
    pending: list[AsyncResult] = []  # the lookup under way, which others wait for

    def shared() -> Any:
        if found and time.monotonic() - found[1] < DNS_TTL:
            return found[0]
        if pending:
            return pending[0].get()  # raises what the lookup raised
        waiting = AsyncResult()
        pending.append(waiting)
        try:
            addresses = resolve()
        except BaseException as exc:  # each waiter fails as this lookup did; none is kept
            waiting.set_exception(exc)
            raise
        finally:
            pending.clear()
        found[:] = [addresses, time.monotonic()]
        waiting.set(addresses)
        return addresses

    pool._resolve = shared


class _TimedOut(TimeoutError):
    pass


class _NotHTTPURL(ValueError):
    pass


def check_url(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
    """Check one URL with geventhttpclient; the job behind ``--via-queue`` on the gevent pool."""
    return check_one(url, expect, timeout).as_dict()


def check_one(url: str, expect: int, timeout: float) -> Check:
    """Check one URL, blocking this greenlet; every failure becomes a reason, never an exception."""
    started = time.monotonic()
    try:
        # The client's timeouts bound each connect and read; this one bounds the whole check.
        with gevent.Timeout(timeout, _TimedOut(f"{url} took over {timeout:g}s")):
            return _get(url, expect, timeout, started)
    except Exception as exc:  # every failure becomes a reason
        return failed(url, exc, timeout, started)


def check_indexed(
    urls: list[str],
    expect: int,
    timeout: float,
    concurrency: int,
    on_done: Callable[[int, Check], object] | None = None,
) -> list[Check]:
    """Check every URL on ``concurrency`` greenlets, telling ``on_done`` each result's place in
    ``urls``; results in input order. Blocks the calling thread until all are done."""
    results: list[Check | None] = [None] * len(urls)
    todo = iter(enumerate(urls))

    # As on asyncio: a few greenlets that each take the next URL, not one greenlet per URL.
    def checker() -> None:
        for i, url in todo:
            check = results[i] = check_one(url, expect, timeout)
            if on_done is not None:
                on_done(i, check)

    greenlets = [gevent.spawn(checker) for _ in range(min(concurrency, len(urls)))]
    gevent.joinall(greenlets, raise_error=True)
    return [check for check in results if check is not None]  # every one, once all are done


def _get(url: str, expect: int, timeout: float, started: float) -> Check:
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _NotHTTPURL(url)
    response = _client(parsed, timeout).get(parsed.request_uri)
    try:
        response.read()  # the whole answer, so the connection goes back to the pool
    finally:
        response.release()
    return judge(url, response.status_code, response.get("location"), expect, started)
