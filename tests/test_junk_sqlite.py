"""Junk written straight into an SQLite store's rows never loses or stops a good job: a row baozi
cannot read is moved, intact, to a quarantine table beside its own, logged once at ERROR naming
the table and the row, and every other job runs exactly once."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi import App, Worker
from baozi.backends.base import NewJob

from . import jobtasks
from ._helpers import lines


class Store:
    """A baozi app on a fresh SQLite file, with a raw connection to write junk with."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.db"
        self.app = App(f"sqlite:///{self.path}", lease=5.0)
        self.ran = tmp_path / "ran.txt"
        self.note = self.app.task(jobtasks.note)
        self.raw = sqlite3.connect(self.path, isolation_level=None)

    def enqueue(self, tags: range) -> list[str]:
        return [self.note.delay(str(self.ran), tag).id for tag in tags]

    def exact(self, table: str, row_id: object) -> list[tuple[str, object]]:
        """The row's columns as (type, quoted value): equal only for an identical row."""
        cols = [r[1] for r in self.raw.execute(f"PRAGMA table_info({table})")]
        cols = [c for c in cols if c not in ("reason", "moved_at")]
        exact = "CASE typeof({c}) WHEN 'text' THEN hex({c}) ELSE quote({c}) END"
        sql = "SELECT " + ", ".join(f"typeof({c}), {exact.format(c=c)}" for c in cols)
        row = self.raw.execute(f"{sql} FROM {table} WHERE id=?", (int(row_id),)).fetchone()
        return list(zip(row[::2], row[1::2], strict=True)) if row else []

    def work(self) -> None:
        Worker(self.app, concurrency=2).run(burst=True)

    def runs(self) -> Counter[str]:
        return Counter(lines(self.ran))


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path)
    yield store
    store.raw.close()
    store.app.store.close()


def errors_naming(caplog: pytest.LogCaptureFixture, table: str, row_id: object) -> list[str]:
    said = f"{table} row {row_id} could not be read"
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and said in r.getMessage()
    ]


# What is written into one job's row: a column and an SQL expression for its new value.
ROW_JUNK = [
    ("deliveries", "'abc'"),
    ("priority", "'zzz'"),
    ("failures", "-1"),
    ("failures", "99"),  # more failures than deliveries: max_deliveries would never end it
    ("state", "9"),
    ("state", "'zero'"),
    ("payload", "'text, not a blob'"),
    ("seq", "1.5"),
    ("task", "CAST(X'FFFE' AS TEXT)"),
    ("task", "X'00'"),
    ("qid", "999"),
    ("outcome", "'odd'"),
    ("created_at", "'yesterday'"),
    ("unique_key", "X'6b'"),
    ("unique_key", "'k'"),  # with no unique_while or unique_for
    ("unique_while", "'sometimes'"),
    ("on_dep_failure", "'explode'"),
    ("has_children", "'yes'"),
]


@pytest.mark.parametrize(("column", "value"), ROW_JUNK)
def test_a_junk_column_moves_its_job_aside_and_the_others_run_once(
    s: Store, caplog: pytest.LogCaptureFixture, column: str, value: str
) -> None:
    ids = s.enqueue(range(4))
    bad = ids[1]
    s.raw.execute(f"UPDATE baozi_items SET {column}={value} WHERE id=?", (bad,))
    held = s.exact("baozi_items", bad)
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        s.work()
    assert s.runs() == Counter(["0", "2", "3"])
    assert s.exact("baozi_junk_items", bad) == held  # intact
    assert s.exact("baozi_items", bad) == []
    assert len(errors_naming(caplog, "baozi_items", bad)) == 1
    assert [r.id for r in s.app.store.records()] == [i for i in reversed(ids) if i != bad]


def test_a_lease_whose_end_is_no_number_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = s.enqueue(range(3))
    s.raw.execute("UPDATE baozi_items SET state=1, due='soon', owner='x' WHERE id=?", (ids[0],))
    held = s.exact("baozi_items", ids[0])
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        s.work()
    assert s.runs() == Counter(["1", "2"])
    assert s.exact("baozi_junk_items", ids[0]) == held
    assert len(errors_naming(caplog, "baozi_items", ids[0])) == 1


def test_a_non_json_payload_fails_only_its_own_job(s: Store) -> None:
    ids = s.enqueue(range(3))
    s.raw.execute("UPDATE baozi_items SET payload=X'FF00' WHERE id=?", (ids[1],))
    s.work()
    assert s.runs() == Counter(["0", "2"])
    assert [s.app.job(i).status for i in ids] == ["succeeded", "failed", "succeeded"]


@pytest.mark.parametrize(
    ("column", "value"), [("created_at", "'yesterday'"), ("error", "X'FF'"), ("outcome", "NULL")]
)
def test_a_finished_record_that_cannot_be_read_goes_aside_and_the_listing_goes_on(
    s: Store, caplog: pytest.LogCaptureFixture, column: str, value: str
) -> None:
    ids = s.enqueue(range(3))
    s.work()
    s.raw.execute(f"UPDATE baozi_items SET {column}={value} WHERE id=?", (ids[1],))
    held = s.exact("baozi_items", ids[1])
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        assert [r.id for r in s.app.store.records()] == [ids[2], ids[0]]
        assert s.app.store.record(ids[1]) is None
    assert s.exact("baozi_junk_items", ids[1]) == held
    assert len(errors_naming(caplog, "baozi_items", ids[1])) == 1
    assert s.app.store.job_counts("default")["succeeded"] == 2


def test_queue_options_that_are_no_json_go_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    s.app.store.set_queue_options("default", maxsize=5)
    s.raw.execute("UPDATE baozi_queues SET options='{not json' WHERE name='default'")
    (qid,) = s.raw.execute("SELECT id FROM baozi_queues WHERE name='default'").fetchone()
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        assert s.app.store.queue_options("default") == {}
        assert s.app.store.queue_options("default") == {}
    junk = s.raw.execute("SELECT name, options FROM baozi_junk_queues").fetchall()
    assert junk == [("default", "{not json")]
    assert len(errors_naming(caplog, "baozi_queues", qid)) == 1
    s.app.store.set_queue_options("default", maxsize=3)
    assert s.app.store.queue_options("default") == {"maxsize": 3}


def test_a_queue_name_that_is_no_text_goes_aside(s: Store) -> None:
    s.enqueue(range(1))
    s.raw.execute("INSERT INTO baozi_queues (name) VALUES (CAST(X'FFFE' AS TEXT))")
    assert s.app.store.queues() == ["default"]
    assert s.raw.execute("SELECT hex(name) FROM baozi_junk_queues").fetchall() == [("FFFE",)]


@pytest.mark.parametrize("info", ["not json", "[1, 2]", '{"id": "w9", "host": 5}', '{"id": 1}'])
def test_a_heartbeat_that_cannot_be_read_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture, info: str
) -> None:
    from baozi.backends.base import WorkerInfo

    store = s.app.store
    store.heartbeat(WorkerInfo("w1", "here", 1, "thread", 1, ("default",)), 60)
    store.heartbeat(WorkerInfo("w9", "here", 2, "thread", 1, ("default",)), 60)
    s.raw.execute("UPDATE baozi_workers SET info=? WHERE id='w9'", (info,))
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        assert [w.id for w in store.workers()] == ["w1"]
        assert [w.id for w in store.workers()] == ["w1"]
    assert s.raw.execute("SELECT id, info FROM baozi_junk_workers").fetchall() == [("w9", info)]
    assert len(errors_naming(caplog, "baozi_workers", "'w9'")) == 1
    assert json.loads(s.raw.execute("SELECT info FROM baozi_workers").fetchone()[0])["id"] == "w1"


def test_a_key_that_is_no_text_goes_aside_and_the_others_are_listed(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store = s.app.store
    store.kv_set("ns", "a", b"1")
    s.raw.execute("INSERT INTO baozi_kv VALUES ('ns', CAST(X'FFFE' AS TEXT), X'02')")
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        assert store.kv_items("ns") == {"a": b"1"}
        assert store.kv_items("ns") == {"a": b"1"}
    junk = s.raw.execute("SELECT ns, hex(key), value FROM baozi_junk_kv").fetchall()
    assert junk == [("ns", "FFFE", b"\x02")]
    assert len([r for r in caplog.records if "baozi_kv row" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("due", "'soon'"),
        ("state", "3"),  # waiting with no task
        ("on_dep_failure", "'explode'"),
        ("unique_for", "'long'"),
        ("has_children", "2"),
    ],
)
def test_a_waiting_job_that_cannot_be_read_goes_aside_and_what_it_waits_for_runs(
    s: Store, caplog: pytest.LogCaptureFixture, column: str, value: str
) -> None:
    (parent,) = s.enqueue(range(1))
    payload = s.app.codec.dumps([[str(s.ran), "child"], {}])
    new = NewJob(s.note.name, payload, unique_key="k", depends_on=(parent,))
    (child,) = s.app.store.enqueue("default", [new])
    task = "NULL" if column == "state" else "task"
    s.raw.execute(f"UPDATE baozi_items SET {column}={value}, task={task} WHERE id=?", (child,))
    s.raw.execute(
        "INSERT INTO baozi_deps VALUES ('junk', ?, 0, 0), (?, X'00', 1, 0)", (parent, child)
    )
    held = s.exact("baozi_items", child)
    with caplog.at_level(logging.ERROR, logger="baozi.sqlite"):
        assert [r.id for r in s.app.store.records()] == [parent]
        assert s.app.store.record(child) is None
        s.work()
    assert s.runs() == Counter(["0"])
    record = s.app.store.record(parent)
    assert record is not None and record.status == "succeeded" and record.children == ()
    assert s.exact("baozi_junk_items", child) == held
    assert len(errors_naming(caplog, "baozi_items", child)) == 1
