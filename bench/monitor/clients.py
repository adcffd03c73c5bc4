"""CPU per request of one HTTP client, against a local server that answers at once.

    python bench/monitor/clients.py CLIENT URL N CONCURRENCY

CLIENT is one of: bare (raw asyncio sockets), aiohttp, aiohttp-uvloop, httpx (async),
httpx-gevent (its blocking client on greenlets), geventhttpclient (on greenlets). Prints one JSON
line: the client, requests answered 200, wall seconds and CPU seconds (user + system, this process)
(process_time) of the requests alone -- imports and set-up are left out.
"""

from __future__ import annotations

import sys

CLIENT = sys.argv[1]
if CLIENT in ("httpx-gevent", "geventhttpclient"):
    from gevent import monkey

    monkey.patch_all()

import asyncio  # noqa: E402 -- after gevent's patching
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


async def _aiohttp(url: str, n: int, c: int) -> list[int]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        todo = iter(range(n))
        codes: list[int] = []

        async def one() -> None:
            for _ in todo:
                async with session.get(url, allow_redirects=False) as response:
                    await response.read()
                    codes.append(response.status)

        await asyncio.gather(*(one() for _ in range(c)))
        return codes


async def _httpx(url: str, n: int, c: int) -> list[int]:
    import httpx

    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits) as client:
        todo = iter(range(n))
        codes: list[int] = []

        async def one() -> None:
            for _ in todo:
                codes.append((await client.get(url)).status_code)

        await asyncio.gather(*(one() for _ in range(c)))
        return codes


def _greenlets(get: Callable[[], int], n: int, c: int) -> list[int]:
    import gevent.pool

    return list(gevent.pool.Pool(c).imap_unordered(lambda _: get(), range(n)))


def _prepare(url: str, n: int, c: int) -> Callable[[], Any]:
    if CLIENT == "bare":
        import bare

        return lambda: [200] * asyncio.run(bare.main(url, n, c))
    if CLIENT == "aiohttp":
        return lambda: asyncio.run(_aiohttp(url, n, c))
    if CLIENT == "aiohttp-uvloop":
        import uvloop

        return lambda: uvloop.run(_aiohttp(url, n, c))
    if CLIENT == "httpx":
        return lambda: asyncio.run(_httpx(url, n, c))
    if CLIENT == "httpx-gevent":
        import httpx

        client = httpx.Client(limits=httpx.Limits(max_connections=c))
        return lambda: _greenlets(lambda: client.get(url).status_code, n, c)
    if CLIENT == "geventhttpclient":
        from geventhttpclient import HTTPClient
        from geventhttpclient.url import URL

        parsed = URL(url)
        ghc = HTTPClient.from_url(parsed, concurrency=c)

        def get() -> int:
            response = ghc.get(parsed.request_uri)
            response.read()
            return int(response.status_code)

        return lambda: _greenlets(get, n, c)
    raise SystemExit(f"unknown client {CLIENT}")


def main() -> None:
    url, n, c = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    go = _prepare(url, n, c)
    wall, cpu = time.monotonic(), time.process_time()
    codes = go()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    ok = sum(1 for code in codes if code == 200)
    print(json.dumps({"client": CLIENT, "ok": ok, "n": n, "wall": wall, "cpu": cpu}))


if __name__ == "__main__":
    main()
