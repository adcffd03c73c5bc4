"""The asyncio client API: enqueue and wait from async code without blocking the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from baozi import App, JobFailed

from . import jobtasks
from ._helpers import working


def _record_threads(app: App) -> list[tuple[str, int]]:
    """Wrap the store's methods so that each call notes the thread it ran on."""
    calls: list[tuple[str, int]] = []
    store = app.store
    for name in ("enqueue", "record", "statuses", "rank", "change_token", "wait_for_change"):
        original = getattr(store, name)

        def wrapped(
            *args: object, _original: object = original, _name: str = name, **kw: object
        ) -> object:
            calls.append((_name, threading.get_ident()))
            return _original(*args, **kw)  # type: ignore[operator]

        setattr(store, name, wrapped)
    return calls


def test_async_calls_enqueue_and_wait_without_store_io_on_the_loop(url: str) -> None:
    app = App(url, lease=5.0)
    add = app.task(jobtasks.add)
    boom = app.task(jobtasks.fail_until)
    calls = _record_threads(app)
    loop_thread: list[int] = []

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        job = await add.delay_async(2, 3)
        assert await job.result_async(timeout=30) == 5
        assert await job.status_async() == "succeeded"
        jobs = await add.map_async([(i, i) for i in range(50)])
        assert await asyncio.gather(*(j.result_async(timeout=30) for j in jobs)) == [
            2 * i for i in range(50)
        ]
        with pytest.raises(JobFailed):
            await (await boom.delay_async(5)).result_async(timeout=30)

    with working(app, concurrency=8):
        asyncio.run(main())
    assert calls, "the store was never called"
    assert all(thread != loop_thread[0] for _, thread in calls)


def test_result_async_times_out_without_a_worker(url: str) -> None:
    app = App(url)
    add = app.task(jobtasks.add)

    async def main() -> None:
        job = await add.delay_async(1, 1)
        with pytest.raises(TimeoutError, match="still queued"):
            await job.result_async(timeout=0.2)
        assert await job.position_async() == 0

    asyncio.run(main())


def test_many_waiters_hold_no_thread_each(url: str) -> None:
    app = App(url, lease=5.0)
    asleep = app.task(jobtasks.asleep)  # a coroutine: the async pool runs it without a thread

    async def main() -> tuple[list[float], int]:
        jobs = await asleep.map_async([(0.3,)] * 300)
        waiters = [asyncio.ensure_future(j.result_async(timeout=60)) for j in jobs]
        await asyncio.sleep(0.1)
        threads = threading.active_count()  # while all 300 wait
        return list(await asyncio.gather(*waiters)), threads

    with working(app, pool="async", concurrency=300):
        before = threading.active_count()
        results, waiting = asyncio.run(main())
    assert results == [0.3] * 300
    assert waiting - before < 20  # a few helper threads, not one per waiting coroutine
