"""baozi.Queue, LifoQueue and PriorityQueue behave like the standard library's, on every store."""

from __future__ import annotations

import queue as stdlib_queue
import threading
import time

import pytest

import baozi
from baozi import LifoQueue, PriorityQueue, Queue

from ._helpers import abandon


def test_fifo_order(url: str) -> None:
    with Queue("q", url=url) as q:
        for i in range(5):
            q.put(i)
        assert [q.get() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_lifo_order(url: str) -> None:
    with LifoQueue("q", url=url) as q:
        for i in range(5):
            q.put(i)
        assert [q.get() for _ in range(5)] == [4, 3, 2, 1, 0]


def test_priority_lowest_first_and_equal_priorities_in_put_order(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        for item in [(3, "alex3"), (1, "alex1"), (1, "alex2"), (1, "alex3")]:
            q.put(item)
        first = q.get()
        assert first == (1, "alex1") and type(first) is tuple
        assert [q.get() for _ in range(3)] == [(1, "alex2"), (1, "alex3"), (3, "alex3")]


def test_priority_of_plain_numbers_and_lists(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        q.put_many([5, 2.5, [1, "list"], -7])
        assert [q.get() for _ in range(4)] == [-7, [1, "list"], 2.5, 5]


@pytest.mark.parametrize(
    "bad", [None, {"p": 1}, True, ([1], "list priority"), (("a", None), "x"), ((1, True), "x")]
)
def test_priority_queue_refuses_priorities_the_stdlib_could_not_order(
    url: str, bad: object
) -> None:
    with PriorityQueue("q", url=url) as q:
        with pytest.raises(TypeError, match="a priority is an int, float, str, bytes or a tuple"):
            q.put(bad)
        assert q.qsize() == 0


def test_priority_queue_refuses_nan(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        with pytest.raises(ValueError, match="NaN"):
            q.put((float("nan"), "x"))
        with pytest.raises(ValueError, match="NaN"):
            q.put((("a", float("nan")), "x"))
        assert q.qsize() == 0


def test_raises_the_stdlib_empty_and_full(url: str) -> None:
    with Queue("q", maxsize=1, url=url) as q:
        with pytest.raises(stdlib_queue.Empty):
            q.get_nowait()
        with pytest.raises(stdlib_queue.Empty):
            q.get(timeout=0.05)
        q.put_nowait("a")
        with pytest.raises(stdlib_queue.Full):
            q.put_nowait("b")
        with pytest.raises(stdlib_queue.Full):
            q.put("b", timeout=0.05)
        with pytest.raises(baozi.Full):
            q.put("b", block=False)


def test_negative_timeout_is_a_value_error(url: str) -> None:
    with Queue("q", url=url) as q:
        with pytest.raises(ValueError, match="non-negative"):
            q.get(timeout=-1)
        with pytest.raises(ValueError, match="non-negative"):
            q.put(1, timeout=-0.5)
        assert q.qsize() == 0


def test_qsize_empty_full(url: str) -> None:
    with Queue("q", maxsize=2, url=url) as q:
        assert q.empty() and not q.full() and q.qsize() == 0
        q.put(1)
        q.put(2)
        assert q.qsize() == 2 and q.full() and not q.empty()
        q.get()
        assert q.qsize() == 1 and not q.full()  # an item in flight is not counted


def test_put_blocks_while_full_until_a_get_makes_room(url: str) -> None:
    with Queue("q", maxsize=1, url=url) as q:
        q.put("a")
        threading.Timer(0.1, q.get).start()
        start = time.monotonic()
        q.put("b", timeout=10)
        assert 0.05 < time.monotonic() - start < 5
        assert q.get() == "b"


def test_get_blocks_until_a_put(url: str) -> None:
    with Queue("q", url=url) as q:
        threading.Timer(0.1, q.put, args=("late",)).start()
        assert q.get(timeout=10) == "late"


def test_maxsize_holds_across_handles(url: str) -> None:
    with Queue("q", maxsize=2, url=url) as a, Queue("q", maxsize=2, url=url) as b:
        a.put(1)
        b.put(2)
        with pytest.raises(stdlib_queue.Full):
            a.put_nowait(3)


def test_task_done_too_many_times_is_a_value_error(url: str) -> None:
    with Queue("q", url=url) as q:
        with pytest.raises(ValueError, match="too many times"):
            q.task_done()
        q.put(1)
        q.get()
        q.task_done()
        with pytest.raises(ValueError, match="too many times"):
            q.task_done()


def test_task_done_acknowledges_the_calling_threads_oldest_item(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put_many(["main-1", "worker-1", "main-2"])
        assert q.get() == "main-1"
        got: list[str] = []
        t = threading.Thread(target=lambda: got.append(q.get()))
        t.start()
        t.join()
        assert got == ["worker-1"]
        assert q.get() == "main-2"
        q.task_done()  # main's oldest: main-1
        q.close()  # puts back what was not acknowledged: worker-1 and main-2
    with Queue("q", url=url) as q:
        assert [q.get(), q.get()] == ["worker-1", "main-2"]


def test_task_done_from_a_thread_with_nothing_takes_the_handles_oldest(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put_many(["a", "b"])
        q.get()
        q.get()
        t = threading.Thread(target=q.task_done)
        t.start()
        t.join()
        q.close()
    with Queue("q", url=url) as q:
        assert q.get_many(10) == ["b"]


def test_join_waits_for_every_item_to_be_acknowledged(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put_many(range(10))
        done: list[int] = []

        def worker() -> None:
            while True:
                try:
                    item = q.get(timeout=0.5)
                except stdlib_queue.Empty:
                    return
                time.sleep(0.01)
                done.append(item)
                q.task_done()

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        q.join()
        assert sorted(done) == list(range(10))
        for t in threads:
            t.join()


def test_join_returns_at_once_on_an_empty_queue(url: str) -> None:
    with Queue("q", url=url) as q:
        joined = threading.Thread(target=q.join)
        started = time.monotonic()
        joined.start()
        joined.join(10)
        assert not joined.is_alive(), "join() blocked on a queue with nothing unfinished"
        assert time.monotonic() - started < 5
        q.put("a")  # and once an item is unfinished, it does wait
        waiting = threading.Thread(target=q.join, daemon=True)
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()
        q.get()
        q.task_done()
        waiting.join(10)
        assert not waiting.is_alive()


def test_reserve_acknowledges_on_success(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put("a")
        with q.reserve(timeout=1) as item:
            assert item == "a"
        q.join()  # nothing left anywhere
        assert q.qsize() == 0


def test_reserve_puts_the_item_back_in_its_place_on_error(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put_many(["a", "b"])
        with pytest.raises(RuntimeError):
            with q.reserve() as item:
                assert item == "a"
                raise RuntimeError("boom")
        assert q.get_many(5) == ["a", "b"]


def test_reserve_raises_empty_on_timeout(url: str) -> None:
    with Queue("q", url=url) as q:
        with pytest.raises(stdlib_queue.Empty):
            with q.reserve(timeout=0.05):
                pass


def test_put_many_and_get_many(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put_many(range(100))
        assert q.get_many(60) == list(range(60))
        assert q.get_many(60) == list(range(60, 100))
        q.task_done(100)
        with pytest.raises(stdlib_queue.Empty):
            q.get_many(5, timeout=0.01)


def test_put_many_is_all_or_nothing_on_a_bounded_queue(url: str) -> None:
    with Queue("q", maxsize=3, url=url) as q:
        q.put_many([1, 2])
        with pytest.raises(stdlib_queue.Full):
            q.put_many([3, 4], block=False)
        assert q.qsize() == 2
        with pytest.raises(ValueError, match="smaller batches"):
            q.put_many([5, 6, 7, 8])


def test_a_handle_with_the_same_name_sees_the_same_queue(url: str) -> None:
    with Queue("shared", url=url) as a, Queue("shared", url=url) as b, Queue("x", url=url) as c:
        a.put("hello")
        assert c.qsize() == 0
        assert b.get() == "hello"


def test_an_expired_lease_delivers_the_item_again(url: str) -> None:
    with Queue("q", url=url, lease=0.3) as crashed, Queue("q", url=url) as other:
        crashed.put_many(["a", "b"])
        assert crashed.get() == "a"
        abandon(crashed)  # stop its renewals, as a dead process would
        assert other.get(timeout=5) == "b"
        start = time.monotonic()
        assert other.get(timeout=5) == "a"  # wakes when the lease runs out, no sooner
        assert time.monotonic() - start < 2


def test_a_live_consumer_keeps_its_lease(url: str) -> None:
    with Queue("q", url=url, lease=0.3) as q, Queue("q", url=url) as other:
        q.put("a")
        assert q.get() == "a"
        time.sleep(1.0)  # more than three leases
        with pytest.raises(stdlib_queue.Empty):
            other.get(timeout=0.1)
        q.task_done()
        assert q.qsize() == 0


def test_position_reports_items_ahead(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        q.put_many([(5, "a"), (5, "b")])
        store = q._store
        ids = [i.id for i in store.snapshot("q")]
        assert [q.position(i) for i in ids] == [0, 1]
        q.put((1, "urgent"))
        assert [q.position(i) for i in ids] == [1, 2]


def test_close_is_idempotent_and_a_closed_handle_refuses_gets(url: str) -> None:
    q = Queue("q", url=url)
    q.close()
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.get_nowait()


def test_repr_names_the_queue(url: str) -> None:
    with Queue("orders", maxsize=3, url=url) as q:
        assert "orders" in repr(q) and "maxsize=3" in repr(q)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"name": ""}, ValueError),
        ({"lease": 0}, ValueError),
        ({"maxsize": "3"}, TypeError),
        ({"serializer": "yaml"}, ValueError),
    ],
)
def test_bad_constructor_arguments(url: str, kwargs: dict, error: type) -> None:  # type: ignore[type-arg]
    with pytest.raises(error):
        Queue(url=url, **kwargs)
