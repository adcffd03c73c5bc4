"""How an SQLite store keeps dependencies: a waiting row keeps the time its delay ends but only a
release makes it ready, and the note of jobs that ended with
dependents is empty once each write commits."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome, Store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{path}") as s:
        yield s


def _noted(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM baozi_ended").fetchall()
    finally:
        conn.close()


def test_a_waiting_job_whose_delay_has_passed_waits_still(store: Store) -> None:
    (a,) = store.enqueue("q", [NewJob("t", b"a")])
    (c,) = store.enqueue("q", [NewJob("t", b"c", depends_on=(a,))], delay=0.05)
    time.sleep(0.1)
    assert [i.id for i in store.reserve("q", "w", 30, 5)] == [a]
    assert store.counts("q").waiting == 1 and store.statuses([c]) == {c: "waiting"}
    assert store.next_due("q") is not None  # a's lease, not c's delay
    assert store.rank("q", c) is None
    store.settle("q", "w", [Outcome(a, "succeeded", result=b"1")], ttl=60)
    assert store.statuses([c]) == {c: "queued"} and store.next_due("q") is None


def test_the_note_of_ended_jobs_is_empty_after_each_write(store: Store, path: Path) -> None:
    parents = store.enqueue("q", [NewJob("t", b"%d" % i) for i in range(3)])
    store.enqueue("q", [NewJob("t", b"c", depends_on=(p,)) for p in parents])
    store.reserve("q", "w", 30, 2)
    store.settle("q", "w", [Outcome(parents[0], "succeeded", result=b"1")], ttl=60)
    assert _noted(path) == []
    store.settle("q", "w", [Outcome(parents[1], "failed", error="{}")], ttl=60)
    assert _noted(path) == []
    store.cancel(parents[2])
    assert _noted(path) == []


def test_a_job_enqueued_after_its_dependency_ended_is_listed_among_its_dependents(
    store: Store,
) -> None:
    (a,) = store.enqueue("q", [NewJob("t", b"a")])
    store.reserve("q", "w", 30, 1)
    store.settle("q", "w", [Outcome(a, "succeeded", result=b"1")], ttl=60)
    (c,) = store.enqueue("q", [NewJob("t", b"c", depends_on=(a, a))])
    rec = store.record(a)
    assert rec is not None and rec.children == (c,)
    child = store.record(c)
    assert child is not None and child.parents == (a, a) and child.status == "queued"
    assert store.requeue(a) is False  # it succeeded


def test_a_failed_dependency_run_again_changes_nothing_for_its_dependents(store: Store) -> None:
    a, b = store.enqueue("q", [NewJob("t", b"a"), NewJob("t", b"b")])
    (c,) = store.enqueue("q", [NewJob("t", b"c", depends_on=(a, b), on_dependency_failure="run")])
    store.reserve("q", "w", 30, 1)
    store.settle("q", "w", [Outcome(a, "failed", error="{}")], ttl=60)
    assert store.requeue(a) is True
    store.reserve("q", "w", 30, 1)
    store.settle("q", "w", [Outcome(a, "failed", error="{}")], ttl=60)
    assert store.statuses([c]) == {c: "waiting"}  # a counted once: c waits for b still
    (item,) = store.reserve("q", "w", 30, 1)
    assert item.id == b
    store.settle("q", "w", [Outcome(b, "succeeded", result=b"1")], ttl=60)
    assert store.statuses([c]) == {c: "queued"}
