"""The monitor's job, ``check_url``, in the form this process's pool can run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..pools.green import gevent_patched

__all__ = ["TASK", "check_url"]

TASK = f"{__package__}:check_url"  # baozi.monitor:check_url, resolved by workers, not here
"""The job name the monitor enqueues; every worker's app can run it (see ``App.resolve``)."""

check_url: Callable[..., Any]
"""Check one URL and return its ``Check`` as a dict. In a gevent-patched process, a blocking call
on geventhttpclient, for greenlets; elsewhere a coroutine on aiohttp, which the async pool runs on
its loop (and the thread pool on a loop of its own per call)."""
if gevent_patched():
    from ._green import check_url
else:

    async def check_url(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
        # aiohttp is imported by the first check, not by every process that imports the monitor.
        from ._aio import check_url as on_aiohttp

        return await on_aiohttp(url, expect, timeout)
