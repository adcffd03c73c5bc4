"""The PostgreSQL store alone: what it reports about vacuum's health (``Store.warnings()``, shown
by ``baozi queues`` and ``/healthz``), and ``position()`` counted exactly from its bucketed ready
counts, against a brute-force count of the items ahead.

Every test works in a schema of its own on the test server (BAOZI_TEST_POSTGRES), dropped after.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from baozi import App
from baozi.backends import open_store
from baozi.backends.base import Store
from baozi.backends.postgres import _health

from .conftest import POSTGRES_URL, drop_postgres_schema, fresh_schema, postgres_or_skip

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL in a schema of its own, dropped after the test."""
    postgres_or_skip()
    schema = fresh_schema()
    yield f"{POSTGRES_URL}?schema={schema}"
    drop_postgres_schema(schema)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    yield store
    store.close()


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def _shown(url: str) -> tuple[str, dict[str, Any]]:
    """``baozi queues`` on the store (wide, so no sentence wraps) and ``/healthz`` of an app on it."""
    from click.testing import CliRunner

    from baozi.cli import main

    from ._web import served

    table = CliRunner().invoke(main, ["queues", "--url", url], env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    app = App(url)
    try:
        with served(app) as base:
            health = httpx.get(f"{base}/healthz", timeout=30).json()
    finally:
        app.store.close()
    return " ".join(table.output.split()), health


# -- vacuum's health -------------------------------------------------------------------------


def test_a_long_open_transaction_is_named_by_warnings_queues_and_healthz(
    pg: Store, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_health, "LONG_TRANSACTION", 0.5)  # the default is a minute
    name = f"pgh-holder-{uuid.uuid4().hex[:8]}"
    holder = psycopg.connect(POSTGRES_URL, application_name=name)
    try:
        holder.execute("SELECT txid_current()")  # BEGIN (psycopg's default) and take an xid
        pid = holder.info.backend_pid
        time.sleep(1.0)
        reported = pg.warnings()
        named = [w for w in reported if f"pid {pid} " in w]
        assert len(named) == 1, reported
        assert name in named[0] and "idle in transaction" in named[0]
        assert "idle_in_transaction_session_timeout" in named[0]
        table, health = _shown(pg_url)
        assert f"pid {pid} " in table and name in table
        assert health["status"] == "ok"
        assert any(f"pid {pid} " in w and name in w for w in health["warnings"])
    finally:
        holder.close()
    # The server ends the closed session a moment after the client lets go of it.
    deadline = time.monotonic() + 10
    while any(f"pid {pid} " in w for w in pg.warnings()):
        assert time.monotonic() < deadline, "a closed session is still named"
        time.sleep(0.05)


def test_a_short_transaction_is_not_named(pg: Store) -> None:
    with psycopg.connect(POSTGRES_URL) as holder:
        holder.execute("SELECT txid_current()")
        pid = holder.info.backend_pid
        assert not any(f"pid {pid} " in w for w in pg.warnings())  # a minute by default


def test_dead_rows_in_the_store_tables_are_reported(
    pg: Store, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600 dead rows stay under the items table's own autovacuum threshold (2,000), so a server
    # with autovacuum on does not clean them before the report is read.
    monkeypatch.setattr(_health, "DEAD_ROWS", 300)
    schema = _schema(pg_url)
    for _ in range(3):
        pg.push("q", [b"x"] * 200)
    taken = pg.reserve("q", "w", 30.0, n=600)
    assert pg.ack("q", [i.id for i in taken], "w") == 600
    deadline = time.monotonic() + 15  # the server's statistics trail by a second or so
    while True:
        found = [w for w in pg.warnings() if f"{schema}.items holds" in w]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(found) == 1, pg.warnings()
    assert "dead rows beside 0 live ones" in found[0]
    assert f"VACUUM (ANALYZE) {schema}.items" in found[0]
    table, health = _shown(pg_url)
    assert f"{schema}.items holds" in table
    assert any(f"{schema}.items holds" in w for w in health["warnings"])


def test_autovacuum_disabled_on_a_store_table_is_reported(pg: Store, pg_url: str) -> None:
    schema = _schema(pg_url)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".done SET (autovacuum_enabled = false)')
    found = [w for w in pg.warnings() if f"disabled for {schema}.done" in w]
    assert len(found) == 1 and "RESET (autovacuum_enabled)" in found[0]


def test_autovacuum_off_on_the_server_is_reported_with_the_fix(pg: Store) -> None:
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
    found = [w for w in pg.warnings() if "has autovacuum off" in w]
    if row is not None and row[0] == "off":  # this machine's server: off
        assert len(found) == 1 and "ALTER SYSTEM SET autovacuum = on" in found[0]
    else:
        assert found == []


# -- position(): exact at every bucket ---------------------------------------------------------


def _brute_ranks(url: str, queue: str) -> dict[str, int]:
    """Every ready item's place (leased ones whose lease ran out and scheduled ones now due
    count as ready), by sorting the whole queue in Python: (priority, order, id)."""
    schema = _schema(url)
    with psycopg.connect(POSTGRES_URL) as conn:
        rows = conn.execute(
            f'SELECT i.id, i.priority, i.seq FROM "{schema}".items i '
            f'JOIN "{schema}".queues q ON q.id = i.qid WHERE q.name = %s '
            "AND (i.state = 0 OR i.due <= extract(epoch FROM statement_timestamp()))",
            (queue,),
        ).fetchall()
    ordered = sorted(rows, key=lambda r: (Decimal(r[1]), r[2], r[0]))
    return {str(r[0]): n for n, r in enumerate(ordered)}


def test_position_is_exact_across_buckets_priorities_front_pushes_and_leases(
    pg: Store, pg_url: str
) -> None:
    rng = random.Random(15)
    q = "deep"
    prios: list[Any] = [0, 1, -2, 2.5, 0.1, 10**30, -(2**70)]  # 0.1: its exact binary value
    ids: list[str] = []
    for _ in range(6):  # > 1,024 items: several buckets of ids per priority
        batch = [rng.choice(prios) for _ in range(400)]
        ids += pg.push(q, [b"i"] * len(batch), batch)
    ids += pg.push(q, [b"f"] * 30, 0, front=True)  # ahead of everything of priority 0
    ids += pg.push(q, [b"g"] * 1100, 1, front=True)  # more than a bucket of front pushes
    scheduled = pg.push(q, [b"s"] * 20, 0, delay=3600)  # no place yet
    soon = pg.push(q, [b"d"] * 15, -2, delay=0.3)  # due soon: then in line
    head = _brute_ranks(pg_url, q)
    before = {i: pg.rank(q, i) for i in sorted(head, key=head.__getitem__)[:25]}
    released = pg.reserve(q, "r", 60.0, n=25)  # the head, then put back in place
    assert pg.release(q, [i.id for i in released], "r") == 25
    assert {i: pg.rank(q, i) for i in before} == before
    held = pg.reserve(q, "a", 60.0, n=40)  # leased: not in line
    expired = pg.reserve(q, "b", 0.3, n=30)  # their leases run out: back in line, in place
    done = pg.reserve(q, "c", 60.0, n=10)
    assert pg.ack(q, [i.id for i in done], "c") == 10
    time.sleep(0.6)
    want = _brute_ranks(pg_url, q)
    assert len(want) > 3000
    assert all(i.id in want for i in expired) and all(i in want for i in soon)
    got = {i: pg.rank(q, i) for i in want}
    wrong = {i: (got[i], n) for i, n in want.items() if got[i] != n}
    assert not wrong, f"{len(wrong)} places wrong (got, true), such as {list(wrong.items())[:5]}"
    for item_id in [i.id for i in held + done] + scheduled:
        assert pg.rank(q, item_id) is None
    assert pg.counts(q).ready == len(want)
