"""Stores written by the baozi of before layouts carried a version open with this one with nothing
lost: every job keeps its status, arguments, place and record, a worker runs the queued ones, the
locks, slots, events, conditions, dicts, rate limits and queues read back, and the store records
its layout (tests/fixtures/make_old_stores.py wrote them, with that baozi)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi import App, Deque, Dict, LifoQueue, PriorityQueue, Queue, Worker
from baozi.backends import open_store
from baozi.backends.base import NewJob
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


def test_opening_an_old_store_changes_nothing_but_its_layout_and_its_dicts_records(
    kind: str, url: str
) -> None:
    if kind == "sqlite":
        path = url.removeprefix("sqlite:///")
        columns = _columns(path)
        before = _rows(path, columns)
    else:
        before = state(url)
    with open_store(url) as store:
        store.queues()  # a read: the first call that reaches a Redis server
    # The step to layout 5 (SQLite; 6 adds the line's stretches, 7 the publish-pending marks,
    # 8 the items' worker column and an index), 3 (Redis; 4 and 5 write nothing but the
    # version) puts each Dict entry's key at the start of its value; str keys keep their text.
    if kind == "sqlite":  # its layout was recorded already, as 3; the step to 4 only adds
        assert sqlite_layout.latest() == 8
        after = _rows(path, columns)
        assert before.pop("baozi_meta") == [("schema", "3")]
        assert after.pop("baozi_meta") == [("schema", "8")]
        before["baozi_kv"] = [
            (ns, key, f"{key}\n".encode() + value if ns.startswith("dict:") else value)
            for ns, key, value in before["baozi_kv"]
        ]
        assert after == before
        added = {"baozi_items": _ADDED, "baozi_deps": ["child"], "baozi_ended": ["parent"]}
        assert _rows(path, added) == {
            "baozi_items": [(None, None, None, None, 0, None)] * len(before["baozi_items"]),
            "baozi_deps": [],
            "baozi_ended": [],
        }
    else:
        assert redis_layout.latest() == 5  # steps 1 -> 2, 3 -> 4, 4 -> 5 write only the version
        stats = before["kv:dict:stats"]
        stats["value"] = [[key, f"{key}\n{value}"] for key, value in stats["value"]]
        assert state(url) == before | {"layout": {"type": "string", "value": "5", "expires": -1}}


_ADDED = ["unique_key", "unique_while", "unique_for", "on_dep_failure", "has_children", "worker"]
"""The columns layouts 4 and 8 added to baozi_items (beside layout 4's two tables)."""


def _columns(path: str) -> dict[str, list[str]]:
    """Each table of the file, and its columns."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def _rows(path: str, columns: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """The rows of each of these tables, in these columns only, in order."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY {', '.join(cols)}"
            ).fetchall()
            for table, cols in columns.items()
        }
    finally:
        conn.close()


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


def test_an_upgraded_sqlite_store_takes_unique_and_dependent_jobs(tmp_path: Path) -> None:
    with old_store("sqlite", tmp_path) as url:
        ids = IDS["sqlite"]
        app = _app(url)
        store = app.store
        new = NewJob("old.add", b"[[30,1],{}]", depends_on=(ids["queued"], ids["succeeded"]))
        (after,) = store.enqueue("default", [new])
        unique = NewJob("old.add", b"[[40,2],{}]", unique_key="once")
        (once,) = store.enqueue("default", [unique])
        assert store.enqueue("default", [unique]) == [once]
        (never,) = store.enqueue(
            "default", [NewJob("old.add", b"[[0,0],{}]", depends_on=(ids["failed"],))]
        )
        assert app.job(after).status == "waiting" and app.job(never).status == "cancelled"
        queued = store.record(ids["queued"])
        assert queued is not None and queued.children == (after,)
        Worker(app, queues=["default"], concurrency=1).run(burst=True)
        assert app.job(after).result(timeout=0) == 31 and app.job(once).result(timeout=0) == 42
        assert (app.job(after).started_at or 0) > (app.job(ids["queued"]).started_at or 0)
        assert store.job_counts("default")["waiting"] == 0
