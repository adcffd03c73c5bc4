"""Stores written by the baozi of before layouts carried a version open with this one with nothing
lost: every job keeps its status, arguments, place and record, a worker runs the queued ones, the
locks, slots, events, conditions, dicts, rate limits and queues read back, and the store records
its layout (tests/fixtures/make_old_stores.py wrote them, with that baozi)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi import App, Deque, Dict, LifoQueue, PriorityQueue, Queue, Worker
from baozi.backends import open_store
from baozi.backends.redis import _layout as redis_layout
from baozi.backends.sqlite import _layout as sqlite_layout

from ._oldstores import IDS, READ, old_store, read, state
from .fixtures.make_old_stores import add, fail


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(kind: str, tmp_path: Path) -> Iterator[str]:
    with old_store(kind, tmp_path) as url:
        yield url


def _app(url: str) -> App:
    """The old stores' tasks, by the names they were enqueued under."""
    app = App(url, lease=2.0)
    app.task(name="old.add")(add)
    app.task(name="old.fail", retries=0)(fail)
    app.task(name="old.block", queue="killed")(lambda: "ran again")
    return app


def test_an_old_store_reads_back_exactly_as_the_baozi_that_wrote_it_read_it(
    kind: str, url: str
) -> None:
    assert read(url, kind) == READ[kind]


def test_opening_an_old_store_changes_nothing_but_recording_its_layout(kind: str, url: str) -> None:
    before = state(url)
    with open_store(url) as store:
        store.queues()  # a read: the first call that reaches a Redis server
    after = state(url)
    if kind == "sqlite":  # its layout was recorded already (layout 3, as it still is)
        assert sqlite_layout.latest() == 3
        assert after == before
        assert "INSERT INTO \"baozi_meta\" VALUES('schema','3');" in after
    else:
        assert redis_layout.latest() == 2  # step 1 -> 2 writes nothing but the version
        assert after == before | {"layout": {"type": "string", "value": "2", "expires": -1}}


def test_a_worker_runs_the_old_queued_jobs_in_their_order_and_the_killed_workers_job_again(
    kind: str, url: str
) -> None:
    ids = IDS[kind]
    app = _app(url)
    Worker(app, queues=["default", "killed"], concurrency=1).run(burst=True)
    queued = ["queued_first", "queued_front", "queued", "mapped_0", "mapped_1", "mapped_2"]
    jobs = {label: app.job(ids[label]) for label in ids}
    assert [jobs[label].result(timeout=0) for label in queued] == [12, 13, 11, 20, 21, 22]
    started = sorted(queued, key=lambda label: jobs[label].started_at or 0)
    assert started == queued  # lowest priority first, then the front, then in order
    assert jobs["killed"].result(timeout=0) == "ran again" and jobs["killed"].attempts == 2
    assert jobs["succeeded"].result(timeout=0) == 3
    assert jobs["failed"].status == "failed" and jobs["cancelled"].status == "cancelled"
    assert jobs["scheduled"].status == "scheduled" and jobs["running"].status == "running"
    assert jobs["paused"].status == "queued" and app.is_paused("paused")
    assert app.store.reserve("paused", "w", 5.0) == []
    app.resume("paused")
    Worker(app, queues=["paused"], concurrency=1).run(burst=True)
    assert jobs["paused"].result(timeout=0) == 51


def test_the_old_locks_slots_events_dicts_and_rate_limits_hold(url: str) -> None:
    app = _app(url)
    ledger = app.lock("ledger")
    assert ledger.locked() and not ledger.acquire(blocking=False)
    gpu = app.semaphore("gpu", value=3)
    assert gpu.holders() == 2
    assert gpu.acquire(blocking=False) and not gpu.acquire(blocking=False)
    gpu.release()
    assert app.event("green-light").is_set()
    assert dict(Dict("stats", url=url).items()) == {
        "hits": 42,
        "menu": {"bun": (1, 2.5), "tea": None},
    }
    assert app.store.rate_acquire("partner", 1e9, 2) > 0  # both of its events still count
    cond = app.condition("orders")
    assert app.store.counts("baozi.cond.orders").ready == 1  # the killed waiter's ticket
    with cond:
        cond.notify(1)  # spent on it, as on a waiter that died
    assert app.store.counts("baozi.cond.orders").ready == 0


def test_the_old_queues_hand_out_their_items_in_their_order(url: str) -> None:
    with Queue("orders", url=url) as q:
        assert q.maxsize == 10 and q.qsize() == 2  # the first item is still in flight
        assert [q.get(timeout=0), q.get(timeout=0)] == [{"id": 2}, {"id": 3}]
        q.task_done(2)
    with LifoQueue("stack", url=url) as q:
        assert [q.get(timeout=0) for _ in range(3)] == ["c", "b", "a"]
        q.task_done(3)
    with PriorityQueue("prio", url=url) as q:
        assert [q.get(timeout=0) for _ in range(4)] == [(1, "a"), (1, "b"), (3, "c"), (5, "e")]
        q.task_done(4)
    with Deque("dq", url=url) as d:
        assert list(d) == [0, 1, 2] and d.maxlen == 5
