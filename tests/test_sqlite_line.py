"""The SQLite store's line stretches (``baozi_line``): kept by triggers through every kind of
write, filled by the step to layout 6, and what makes a rank cost the same at any place."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from baozi import Deque
from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome
from baozi.backends.sqlite import _layout as sqlite_layout

TRUTH = (
    "SELECT qid, priority, seq, id >> 8, count(*) FROM baozi_items WHERE state = 0 "
    "GROUP BY qid, priority, seq, id >> 8 ORDER BY 1, 2, 3, 4"
)
KEPT = "SELECT qid, priority, seq, blk, n FROM baozi_line ORDER BY 1, 2, 3, 4"


def _check(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute(KEPT).fetchall() == conn.execute(TRUTH).fetchall()


def test_the_stretches_follow_every_kind_of_write(tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    rng = random.Random(7)
    deque = Deque("d", url=url)
    try:
        for step in range(600):
            queue = rng.choice(["a", "b"])
            kind = rng.randrange(10)
            if kind < 3:
                store.enqueue(
                    queue,
                    [
                        NewJob("t", b"x", rng.choice([0, 0, 1, -2]))
                        for _ in range(rng.randint(1, 300))
                    ],
                    front=rng.random() < 0.2,
                    delay=0.01 if rng.random() < 0.1 else 0.0,
                )
            elif kind == 3:
                store.push(queue, [b"p"] * rng.randint(1, 20))
            elif kind == 4:
                jobs = store.reserve(queue, "w", rng.choice([0.01, 30]), rng.randint(1, 40))
                done = [Outcome(j.id, "succeeded", result=b"1") for j in jobs if rng.random() < 0.5]
                if done:
                    store.settle(queue, "w", done, ttl=60)
            elif kind == 5:
                queued = store.records(queue, "queued", 20)
                for rec in queued[:3]:
                    store.cancel(rec.id, ttl=60, failed_ttl=60)
            elif kind == 6:
                failed = store.records(queue, "cancelled", 5)
                for rec in failed:
                    store.requeue(rec.id)
            elif kind == 7:
                deque.extend(range(rng.randint(1, 30)))
                deque.rotate(rng.randint(-50, 50))
                if len(deque) > 3:
                    deque.insert(2, "x")
                    del deque[1]
            elif kind == 8:
                time.sleep(0.02)  # leases and delays run out; a rank counts those rows too
            else:
                store.forget([r.id for r in store.records(queue, "succeeded", 10)])
            if step % 50 == 0:
                _check(path)
        _check(path)
        # Each queued job's rank equals a count of the ready rows ahead of it, at any place.
        for queue in ("a", "b"):
            for rec in store.records(queue, "queued", 60):
                place = store.job_snapshot(rec.id)
                assert place is not None
                with sqlite3.connect(path) as conn:
                    ((prio, seq, num, qid),) = conn.execute(
                        "SELECT priority, seq, id, qid FROM baozi_items WHERE id = ?",
                        (int(rec.id),),
                    ).fetchall()
                    now = time.time()
                    ((expected,),) = conn.execute(
                        "SELECT count(*) FROM baozi_items WHERE qid = ? AND (state = 0 OR "
                        "(state IN (1, 2) AND due <= ?)) AND (priority, seq, id) < (?, ?, ?)",
                        (qid, now, prio, seq, num),
                    ).fetchall()
                assert place.rank == expected
    finally:
        store.close()


def test_the_step_to_layout_6_fills_the_stretches_from_the_ready_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    ids = store.enqueue("q", [NewJob("t", b"x", i % 2) for i in range(700)])
    store.reserve("q", "w", 30, 10)
    store.close()
    with sqlite3.connect(path) as conn:  # back to layout 5, as an older baozi left it
        for trigger in ("baozi_line_in", "baozi_line_out", "baozi_line_move"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE baozi_line")
        conn.execute("UPDATE baozi_meta SET value = '5' WHERE key = 'schema'")
    assert sqlite_layout.latest() == 8
    store = open_store(f"sqlite:///{path}")
    try:
        _check(path)
        assert store.job_snapshot(ids[-1]).rank == 689  # type: ignore[union-attr]
        store.enqueue("q", [NewJob("t", b"y")])
        _check(path)
    finally:
        store.close()


def _plans(store: object, call: Callable[[], object]) -> list[str]:
    """The query plan of every SELECT that ``call`` runs on the store's connection."""
    conn = store._conn  # type: ignore[attr-defined]
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    plans = []
    for sql in seen:
        if sql.lstrip().upper().startswith("SELECT"):
            plans += [
                f"{row[3]}  <- {sql[:80]}" for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
            ]
    assert seen, "nothing ran"
    return plans


def test_what_a_server_reads_each_second_reads_no_finished_job(tmp_path: Path) -> None:
    """A server reads lease counts, queue counts and places all the time: none of them may read
    the whole table, whose finished records can be millions."""
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    try:
        ids = store.enqueue("q", [NewJob("t", b"x") for _ in range(300)])
        jobs = store.reserve("q", "w", 30, 200)
        store.settle(
            "q", "w", [Outcome(j.id, "succeeded", result=b"1") for j in jobs[:150]], ttl=60
        )
        calls = {
            "lease_holders": lambda: store.lease_holders(["q"]),
            "counts": lambda: store.counts("q"),
            "job_snapshot": lambda: store.job_snapshot(ids[-1]),
            "job_snapshots": lambda: store.job_snapshots(ids[-50:]),
            "rank": lambda: store.rank("q", ids[-1]),
        }
        for name, call in calls.items():
            full = [p for p in _plans(store, call) if p.startswith("SCAN baozi_items")]
            assert not full, (name, full)
    finally:
        store.close()


def test_a_dashboards_reads_of_one_queue_read_no_other_row(tmp_path: Path) -> None:
    """A page of one queue's jobs (layout 8's index of queue and id), its oldest ready job (a
    stretch of the line per priority) and its running jobs are read through indexes: none
    reads the table through, with the other queues' rows and every finished record."""
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    try:
        store.enqueue("other", [NewJob("t", b"x") for _ in range(300)])
        store.enqueue("q", [NewJob("t", b"x", i % 3) for i in range(300)])
        store.enqueue("q", [NewJob("t", b"front")], front=True)
        jobs = store.reserve("q", "w", 30, 200)
        store.settle("q", "w", [Outcome(j.id, "failed", error="{}") for j in jobs[:150]], ttl=60)
        page, cursor = store.records_page(queue="q", limit=20)
        assert cursor is not None and [r.id for r in page] == [
            r.id for r in store.records("q", limit=20)
        ]
        calls = {
            "records_page": lambda: store.records_page(queue="q", cursor=cursor),
            "records_page failed": lambda: store.records_page(queue="q", status="failed"),
            "oldest_ready": lambda: store.oldest_ready(["q", "other"]),
            "running_jobs": lambda: store.running_jobs(["q"]),
        }
        for name, call in calls.items():
            full = [p for p in _plans(store, call) if p.startswith(("SCAN baozi_items", "SCAN i"))]
            assert not full, (name, full)
        assert set(store.oldest_ready(["q", "other", "none"])) == {"q", "other"}
    finally:
        store.close()
