"""get_async and put_async: the blocking calls for asyncio code, waiting without a thread each."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
import threading
import time

import pytest

from baozi import LifoQueue, PriorityQueue, Queue


def test_get_async_and_put_async_keep_each_variants_order(url: str) -> None:
    async def main() -> list[list[object]]:
        out = []
        for kind, items in [(Queue, [1, 2, 3]), (LifoQueue, [1, 2, 3]), (PriorityQueue, [3, 1, 2])]:
            with kind("q-" + kind.__name__, url=url) as q:
                for item in items:
                    await q.put_async(item)
                out.append([await q.get_async() for _ in items])
                q.task_done(3)
        return out

    assert asyncio.run(main()) == [[1, 2, 3], [3, 2, 1], [1, 2, 3]]


def test_200_waiters_share_a_constant_number_of_threads_and_each_gets_one_item(url: str) -> None:
    async def main() -> tuple[int, int, list[int]]:
        with Queue("q", url=url) as q:
            await q.put_async("warm-up")  # the loop's executor threads exist before counting
            await q.get_async()
            before = threading.active_count()
            waiters = [asyncio.ensure_future(q.get_async()) for _ in range(200)]
            await asyncio.sleep(0.3)
            during = threading.active_count()
            with Queue("q", url=url) as other:
                for i in range(200):
                    other.put(i)
            got = await asyncio.wait_for(asyncio.gather(*waiters), 60)
            q.task_done(201)
            return before, during, got

    before, during, got = asyncio.run(main())
    assert during - before <= 4  # a change listener at most, not one thread per waiter
    assert sorted(got) == list(range(200))  # each item to exactly one waiter


def test_get_async_times_out_with_empty(url: str) -> None:
    async def main() -> float:
        with Queue("q", url=url) as q:
            start = time.monotonic()
            with pytest.raises(stdlib_queue.Empty):
                await q.get_async(timeout=0.2)
            return time.monotonic() - start

    assert 0.2 <= asyncio.run(main()) < 5


def test_put_async_waits_for_room_and_times_out_with_full(url: str) -> None:
    async def main() -> float:
        with Queue("q", url=url, maxsize=1) as q:
            await q.put_async("a")
            start = time.monotonic()
            with pytest.raises(stdlib_queue.Full):
                await q.put_async("b", timeout=0.2)
            took = time.monotonic() - start
            blocked = asyncio.ensure_future(q.put_async("c", timeout=30))
            await asyncio.sleep(0.1)
            assert not blocked.done()
            assert await q.get_async() == "a"
            q.task_done()
            await asyncio.wait_for(blocked, 30)
            assert await q.get_async() == "c"
            q.task_done()
            return took

    assert 0.2 <= asyncio.run(main()) < 5


def test_a_cancelled_get_async_leaves_the_item_in_the_queue(url: str) -> None:
    async def main() -> None:
        with Queue("q", url=url) as q:
            waiter = asyncio.ensure_future(q.get_async())
            await asyncio.sleep(0.1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(q.get_async(), 0.05)
            await q.put_async("kept")
            await asyncio.sleep(0.2)  # a cancelled call that had taken the item has put it back
            with Queue("q", url=url) as other:
                assert other.qsize() == 1
                assert other.get(timeout=5) == "kept"
                other.task_done()

    asyncio.run(main())


def test_an_item_handed_to_a_waiter_cancelled_at_that_moment_goes_back(url: str) -> None:
    async def main() -> None:
        with Queue("q", url=url) as q:
            waiters = [asyncio.ensure_future(q.get_async()) for _ in range(5)]
            await asyncio.sleep(0.1)
            with Queue("q", url=url) as other:
                other.put_many(range(5))
            for _ in range(200):  # cancel each waiter as soon as its item is set, before it runs
                await asyncio.sleep(0)
                for w in waiters:
                    w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
            taken = [w.result() for w in waiters if not w.cancelled()]
            if taken:
                q.task_done(len(taken))
            await asyncio.sleep(0.2)
            with Queue("q", url=url) as other:
                assert other.qsize() == 5 - len(taken)

    asyncio.run(main())


def test_waiters_still_pending_when_the_loop_ends_leave_no_item_taken(url: str) -> None:
    # The loop ends at moments spread over a store step, so some runs end it mid-step.
    for run in range(12):
        with Queue(f"q{run}", url=url) as q:
            waiters: list[asyncio.Future[object]] = []

            async def main(q: Queue = q, run: int = run, waiters: list = waiters) -> None:
                waiters.extend(asyncio.ensure_future(q.get_async()) for _ in range(3))
                await asyncio.sleep(0.05)
                with Queue(q.name, url=url) as other:
                    other.put_many(["a", "b", "c"])
                await asyncio.sleep(0.0005 * run)  # then the loop ends, its waiters pending

            asyncio.run(main())
            got = [w.result() for w in waiters if not w.cancelled()]
            with Queue(q.name, url=url) as other:  # q is still open: it holds only what it got
                assert other.qsize() == 3 - len(got), run
                rest = [other.get(timeout=5) for _ in range(3 - len(got))]
                assert sorted(got + rest) == ["a", "b", "c"]


def test_get_async_with_no_timeout_to_spare_takes_an_item_that_is_there(url: str) -> None:
    async def main() -> object:
        with Queue("q", url=url) as q:
            await q.put_async("here")
            got = await q.get_async(timeout=0)
            q.task_done()
            with pytest.raises(stdlib_queue.Empty):
                await q.get_async(timeout=0)
            return got

    assert asyncio.run(main()) == "here"


def test_a_closed_handle_refuses_async_calls(url: str) -> None:
    async def main() -> None:
        q = Queue("q", url=url)
        q.close()
        with pytest.raises(ValueError, match="closed"):
            await q.get_async()
        with pytest.raises(ValueError, match="closed"):
            await q.put_async(1)

    asyncio.run(main())
