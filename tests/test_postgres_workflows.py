"""Unique keys and dependencies on the PostgreSQL store: what the conformance suite cannot say --
a layout 1 schema upgraded in place, junk in the new columns, and races between transactions."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from baozi.backends import open_store
from baozi.backends.base import Deduplicated, NewJob, Outcome, Store
from baozi.backends.postgres import _layout as pg_layout

from .conftest import POSTGRES_URL, drop_postgres_schema, fresh_schema, postgres_or_skip

LAYOUT_1 = Path(__file__).parent / "fixtures" / "postgres_layout_1.sql"


@pytest.fixture
def schema() -> Iterator[str]:
    postgres_or_skip()
    name = fresh_schema()
    yield name
    drop_postgres_schema(name)


def _sql(schema: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        cur = conn.execute(statement.replace("{s}", f'"{schema}"'), params)
        return cur.fetchall() if cur.description else []


def _shape(schema: str) -> list[Any]:
    """The schema's columns (in order, with types and defaults) and indexes."""
    columns = _sql(
        schema,
        "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
        "replace(column_default, %s, 'S') FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY 1, 2",
        (schema, schema),
    )
    indexes = _sql(
        schema,
        "SELECT indexname, replace(indexdef, %s, 'S') FROM pg_indexes WHERE schemaname = %s "
        "ORDER BY 1",
        (schema, schema),
    )
    return [*columns, *indexes]


def _make_layout_1(schema: str) -> None:
    ddl = (
        LAYOUT_1.read_text()
        .replace("{s}", f'"{schema}"')
        .replace("{lock}", str(pg_layout.lock_key(schema)))
        .replace("{channel}", f"'{pg_layout.channel(schema)}'")
    )
    _sql(schema, 'CREATE SCHEMA "' + schema + '"')
    _sql(schema, ddl)
    _sql(
        schema,
        "INSERT INTO {s}.meta VALUES ('layout', '1'); "
        "INSERT INTO {s}.queues (name) VALUES ('q'); "
        "INSERT INTO {s}.items (id, qid, state, priority, payload, task, created_at) "
        "VALUES (nextval('{s}.ids'), 1, 0, 0, 'queued', 't', {s}.now()); "
        "INSERT INTO {s}.done (id, qid, task, outcome, priority, payload, created_at, "
        "finished_at, expires_at, result) VALUES (nextval('{s}.ids'), 1, 't', 'succeeded', 0, "
        "'done', {s}.now(), {s}.now(), {s}.now() + 3600, '1')",
    )


def test_a_layout_1_store_is_upgraded_in_place_and_keeps_working(schema: str) -> None:
    _make_layout_1(schema)
    store = open_store(f"{POSTGRES_URL}?schema={schema}")
    try:
        layout = _sql(schema, "SELECT value FROM {s}.meta WHERE key = 'layout'")
        assert layout == [(str(pg_layout.latest()),)]
        queued, done = "1", "2"
        rec = store.record(queued)
        assert rec is not None and rec.status == "queued" and rec.parents == rec.children == ()
        assert store.mark_pending("q", {queued: 1.5, done: 2.5}) == 2  # marks came with layout 4
        assert store.pending("q", 3.0) == [(queued, 1.5), (done, 2.5)]
        assert store.clear_pending("q", {done: 2.5}) == 1
        after_done, after_queued = store.enqueue(
            "q",
            [NewJob("t", b"a", depends_on=(done,)), NewJob("t", b"b", depends_on=(queued,))],
        )
        assert store.statuses([after_done, after_queued]) == {
            after_done: "queued",
            after_queued: "waiting",
        }
        (item,) = store.reserve("q", "w", 30, 1)
        assert item.id == queued
        store.settle("q", "w", [Outcome(queued, "succeeded", result=b"1")], ttl=60)
        assert store.statuses([after_queued]) == {after_queued: "queued"}
        # The worker columns came with layout 5: a run that ended before reads no worker.
        ran_before, ran_after = store.record(done), store.record(queued)
        assert ran_before is not None and ran_before.worker is None
        assert ran_after is not None and ran_after.worker == "w"
        (key,) = store.enqueue("q", [NewJob("t", b"k", unique_key="k")])
        assert store.enqueue("q", [NewJob("t", b"k", unique_key="k")]) == [key]
    finally:
        store.close()
    fresh = fresh_schema()
    try:
        open_store(f"{POSTGRES_URL}?schema={fresh}").close()
        assert [r for r in _shape(schema) if r[0] != "step"] == _shape(fresh)
    finally:
        drop_postgres_schema(fresh)


def test_junk_in_the_new_columns_is_read_as_the_defaults(schema: str) -> None:
    store = open_store(f"{POSTGRES_URL}?schema={schema}")
    try:
        (a,) = store.enqueue("q", [NewJob("t", b"a", unique_key="k", unique_while="running")])
        (c,) = store.enqueue("q", [NewJob("t", b"c", depends_on=(a,))])
        _sql(
            schema,
            "UPDATE {s}.items SET unique_while = 'sometimes', unique_for = 'NaN', "
            "on_dep = 'explode' WHERE id IN (%s, %s)",
            (int(a), int(c)),
        )
        rec = store.record(c)
        assert rec is not None and rec.on_dependency_failure == "cancel"
        # "queued_or_running" in place of the junk: the queued job holds its key.
        assert store.enqueue("q", [NewJob("t", b"again", unique_key="k")]) == [a]
        assert store.cancel(a) is True  # the junk policy acts as "cancel"
        assert store.statuses([a, c]) == {a: "cancelled", c: "cancelled"}
        (b,) = store.enqueue("q", [NewJob("t", b"b", unique_key="k")])  # NaN holds no key
        assert b != a and not isinstance(b, Deduplicated)
    finally:
        store.close()


def _store(schema: str) -> Store:
    return open_store(f"{POSTGRES_URL}?schema={schema}")


def _at_once(schema: str, *calls: Callable[[Store], object]) -> list[object]:
    """Each call on a store handle of its own, all started together; what each returned."""
    handles = [_store(schema) for _ in calls]
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i](handles[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in handles:
        h.close()
    return results


def _settles(owner: str, job: str) -> Callable[[Store], object]:
    return lambda h: h.settle("q", owner, [Outcome(job, "succeeded", result=b"1")], ttl=60)


def _files_child_of(job: str) -> Callable[[Store], object]:
    return lambda h: h.enqueue("r", [NewJob("t", b"c", depends_on=(job,))])


def test_two_parents_settled_at_once_release_their_child_exactly_once(schema: str) -> None:
    store = _store(schema)
    try:
        for _ in range(10):
            a, b = store.enqueue("q", [NewJob("t", b"a"), NewJob("t", b"b")])
            (c,) = store.enqueue("r", [NewJob("t", b"c", depends_on=(a, b))])
            store.reserve("q", "w1", 30, 1)
            store.reserve("q", "w2", 30, 1)
            assert _at_once(schema, _settles("w1", a), _settles("w2", b)) == [1, 1]
            assert store.statuses([c]) == {c: "queued"}
            assert [i.id for i in store.reserve("r", "w", 30, 5)] == [c]
            store.ack("r", [c], "w")
    finally:
        store.close()


def test_a_dependent_filed_as_its_parent_ends_is_released_either_way(schema: str) -> None:
    store = _store(schema)
    try:
        for _ in range(10):
            (a,) = store.enqueue("q", [NewJob("t", b"a")])
            store.reserve("q", "w", 30, 1)
            _, got = _at_once(schema, _settles("w", a), _files_child_of(a))
            assert isinstance(got, list)
            (c,) = got
            assert store.statuses([a, c]) == {a: "succeeded", c: "queued"}
            assert [i.id for i in store.reserve("r", "w", 30, 5)] == [c]
            store.ack("r", [c], "w")
    finally:
        store.close()


def test_a_failed_record_kept_without_end_expires_never(schema: str) -> None:
    store = _store(schema)
    try:
        (a,) = store.enqueue("q", [NewJob("t", b"a")])
        store.reserve("q", "w", 30, 1)
        error = json.dumps({"type": "ValueError", "message": "x", "traceback": ""})
        store.settle("q", "w", [Outcome(a, "failed", error=error)], ttl=0, failed_ttl=math.inf)
        assert _sql(schema, "SELECT expires_at FROM {s}.done") == [(math.inf,)]
        assert store.purge_expired() == 0 and store.forget([a]) == 1
    finally:
        store.close()


def test_a_settle_waits_for_a_dependent_filed_in_an_open_transaction_then_releases_it(
    schema: str,
) -> None:
    store = _store(schema)
    try:
        (a,) = store.enqueue("q", [NewJob("t", b"a")])
        store.reserve("q", "w", 30, 1)
        settled: list[int] = []
        with psycopg.connect(POSTGRES_URL) as conn:
            (c,) = store.enqueue_in(conn, "r", [NewJob("t", b"c", depends_on=(a,))])
            outcome = Outcome(a, "succeeded", result=b"1")
            worker = threading.Thread(
                target=lambda: settled.append(store.settle("q", "w", [outcome], ttl=60))
            )
            worker.start()
            worker.join(0.5)
            assert worker.is_alive()  # the parent's row is the transaction's until it ends
            conn.commit()
        worker.join(10)
        assert settled == [1]
        assert store.statuses([a, c]) == {a: "succeeded", c: "queued"}
    finally:
        store.close()


def test_a_unique_key_taken_in_an_open_transaction_holds_until_it_ends(schema: str) -> None:
    store = _store(schema)
    try:
        got: list[str] = []
        with psycopg.connect(POSTGRES_URL) as conn:
            (a,) = store.enqueue_in(conn, "q", [NewJob("t", b"a", unique_key="k")])
            other = threading.Thread(
                target=lambda: got.extend(store.enqueue("q", [NewJob("t", b"b", unique_key="k")]))
            )
            other.start()
            other.join(0.5)
            assert other.is_alive()
            conn.commit()
        other.join(10)
        assert got == [a] and isinstance(got[0], Deduplicated)
    finally:
        store.close()
