"""The apps the monitor benchmark's workers run: the URL check as a blocking function (thread
and gevent pools) and as a coroutine (async pool), on the store in BENCH_URL."""

from __future__ import annotations

import os
import time

import httpx

import baozi
from baozi.monitor import check_url, reason_for

app = baozi.App(os.environ.get("BENCH_URL", "sqlite:////tmp/bench-monitor.db"))
app.task(name="check")(check_url)

_clients: dict[int, list[httpx.AsyncClient]] = {}
_turn = [0]


@app.task(name="check_async")
async def check_async(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, object]:
    """The same check on httpx's async client, one client (connection pool) per event loop."""
    import asyncio

    # Clients of 50 connections each, taken in turn (one big pool scales badly in httpx).
    loop = id(asyncio.get_running_loop())
    ring = _clients.get(loop)
    if ring is None:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        ring = _clients[loop] = [
            httpx.AsyncClient(timeout=timeout, limits=limits) for _ in range(40)
        ]
    _turn[0] += 1
    client = ring[_turn[0] % len(ring)]
    started = time.monotonic()
    try:
        response = await client.get(url)
    except Exception as exc:
        return {
            "url": url,
            "ok": False,
            "status": None,
            "seconds": time.monotonic() - started,
            "reason": reason_for(exc, timeout),
        }
    ok = response.status_code == expect
    return {
        "url": url,
        "ok": ok,
        "status": response.status_code,
        "seconds": time.monotonic() - started,
        "reason": "ok" if ok else "status",
    }
