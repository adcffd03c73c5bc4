"""The checks on asyncio, with aiohttp's client: the in-process monitor and the async pool's task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import aiohttp

from ._check import Check, failed, judge

T = TypeVar("T")

__all__ = ["check_many", "check_url", "new_session", "run"]


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop's event loop where it is installed: the same asyncio,
    with less CPU per socket event, which is most of what a check costs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def new_session(limit: int) -> aiohttp.ClientSession:
    """A session for checks: at most ``limit`` connections (0: no limit), no redirects followed
    (a redirect is a finding), no cookies kept, no proxy variables read."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # checks are independent: no state between them
        trust_env=False,
    )


async def check_one(
    session: aiohttp.ClientSession, url: str, expect: int, timeout: aiohttp.ClientTimeout
) -> Check:
    """Check one URL on ``session``; every failure becomes a reason, never an exception."""
    started = time.monotonic()
    try:
        async with session.get(url, allow_redirects=False, timeout=timeout) as response:
            await (
                response.read()
            )  # the whole answer, as a browser would, and the connection is reusable
            return judge(url, response.status, response.headers.get("Location"), expect, started)
    except Exception as exc:  # every failure becomes a reason
        return failed(url, exc, timeout.total or 0.0, started)


async def check_indexed(
    urls: list[str],
    expect: int,
    timeout: float,
    concurrency: int,
    on_done: Callable[[int, Check], object] | None = None,
) -> list[Check]:
    """:func:`check_many`, telling ``on_done`` each result's place in ``urls``."""
    results: list[Check | None] = [None] * len(urls)
    limit = aiohttp.ClientTimeout(total=timeout)
    todo = iter(enumerate(urls))
    async with new_session(concurrency) as session:
        # ``concurrency`` coroutines that each take the next URL, rather than a task per URL
        # behind a semaphore: less CPU and memory per check, and the order of starts is the file's.
        async def checker() -> None:
            for i, url in todo:
                check = results[i] = await check_one(session, url, expect, limit)
                if on_done is not None:
                    on_done(i, check)

        await asyncio.gather(*(checker() for _ in range(min(concurrency, len(urls)))))
    return [check for check in results if check is not None]  # every one, once all are done


async def check_many(
    urls: Iterable[str],
    expect: int = 200,
    timeout: float = 5.0,
    concurrency: int = 500,
    on_done: Callable[[Check], object] | None = None,
) -> list[Check]:
    """Check every URL, ``concurrency`` at a time, on this event loop; results in input order."""
    report = None if on_done is None else (lambda _i, check: on_done(check))
    return await check_indexed(list(urls), expect, timeout, concurrency, report)


# One session per event loop, so connections stay alive from one job to the next. A loop made for
# one call (an async task on the thread pool runs under asyncio.run) must not leave its session
# open: the session is held by an async generator, which the loop's owner finalises before closing
# the loop (asyncio.run and the async pool both call shutdown_asyncgens), and that closes it.
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
_holders: dict[asyncio.AbstractEventLoop, AsyncIterator[None]] = {}
_limits: dict[float, aiohttp.ClientTimeout] = {}


async def _hold(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncIterator[None]:
    try:
        yield
    finally:
        _sessions.pop(loop, None)
        _holders.pop(loop, None)
        await session.close()


async def _loop_session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        session = _sessions[loop] = new_session(0)  # the pool's concurrency is the limit
        holder = _holders[loop] = _hold(loop, session)
        await anext(holder)
    return session


async def check_url(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
    """Check one URL with aiohttp; the job behind ``--via-queue`` on the async pool (or on the
    thread pool, one event loop per call)."""
    session = _sessions.get(asyncio.get_running_loop()) or await _loop_session()
    limit = _limits.get(timeout)
    if limit is None:
        if len(_limits) > 64:  # jobs choose their timeouts: keep only a few
            _limits.clear()
        limit = _limits[timeout] = aiohttp.ClientTimeout(total=timeout)
    return (await check_one(session, url, expect, limit)).as_dict()
