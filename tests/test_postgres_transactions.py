"""Enqueueing inside the caller's own PostgreSQL transaction: the job exists if, and only if,
that transaction commits."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import baozi
import baozi.backends
import baozi.backends.base
from baozi import App

from . import jobtasks
from ._helpers import working
from .conftest import POSTGRES_URL, drop_postgres_schema, fresh_schema, postgres_or_skip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_app() -> Iterator[App]:
    postgres_or_skip()
    schema = fresh_schema()
    app = App(f"{POSTGRES_URL}?schema={schema}")
    app.task(jobtasks.add)
    yield app
    app.store.close()
    drop_postgres_schema(schema)


def _engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))


def test_a_rollback_leaves_no_job(pg_app: App) -> None:
    add = pg_app.task(jobtasks.add)
    with psycopg.connect(POSTGRES_URL) as conn:
        job = add.apply_async((1, 2), connection=conn)
        with pg_app.transaction(conn):
            more = add.map([(3, 4), (5, 6)])
        assert pg_app.store.record(job.id) is None  # not visible before the commit
        conn.rollback()
    assert [pg_app.store.record(j.id) for j in [job, *more]] == [None, None, None]
    assert pg_app.store.counts("default").total == 0


def test_a_commit_makes_the_job_visible_to_a_waiting_worker_at_once(pg_app: App) -> None:
    add = pg_app.task(jobtasks.add)
    with working(pg_app, concurrency=2):
        with psycopg.connect(POSTGRES_URL) as conn:
            with pg_app.transaction(conn):
                job = add.delay(2, 3)
            conn.execute("SELECT pg_sleep(0.3)")
            assert pg_app.store.record(job.id) is None  # still uncommitted: no worker has it
        # leaving the with block committed
        assert job.result(timeout=10) == 5


def test_sqlalchemy_connections_and_sessions_enqueue_in_their_transaction(pg_app: App) -> None:
    add = pg_app.task(jobtasks.add)
    engine = _engine()
    try:
        with engine.connect() as conn:
            with pg_app.transaction(conn):
                dropped = add.delay(1, 1)
            conn.rollback()
            with pg_app.transaction(conn):
                kept = add.delay(2, 2)
            conn.commit()
        with Session(engine) as session:
            with session.begin(), pg_app.transaction(session):
                in_session = add.delay(3, 3)
    finally:
        engine.dispose()
    assert pg_app.store.record(dropped.id) is None
    assert pg_app.store.record(kept.id) is not None
    assert pg_app.store.record(in_session.id) is not None


def test_an_autocommit_connection_files_the_job_at_once(pg_app: App) -> None:
    add = pg_app.task(jobtasks.add)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        job = add.apply_async((1, 2), connection=conn)
        assert pg_app.store.record(job.id) is not None


def test_a_connection_of_another_kind_or_database_is_refused_at_the_call(pg_app: App) -> None:
    import sqlite3

    add = pg_app.task(jobtasks.add)
    with pytest.raises(baozi.NotSupported, match="psycopg 3 connection"):
        add.apply_async((1, 2), connection=sqlite3.connect(":memory:"))
    with pytest.raises(baozi.NotSupported, match="psycopg2 cannot be used"):
        with pg_app.transaction(object()):
            pass
    with psycopg.connect(POSTGRES_URL.rsplit("/", 1)[0] + "/postgres") as other:
        with pytest.raises(ValueError, match="database 'postgres'"):
            add.apply_async((1, 2), connection=other)
    assert pg_app.store.counts("default").total == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_other_stores_refuse_connection_with_not_supported(kind: str, tmp_path: Path) -> None:
    from .conftest import make_url

    app = App(make_url(kind, tmp_path))
    add = app.task(jobtasks.add)
    with pytest.raises(baozi.NotSupported, match="PostgreSQL"):
        add.apply_async((1, 2), connection=object())
    with pytest.raises(baozi.NotSupported, match="inside a database transaction"):
        with app.transaction(object()):
            pass
    app.store.close()


def test_the_transactional_example_mails_the_saved_order_only(tmp_path: Path) -> None:
    postgres_or_skip()
    jobs_schema, shop_schema = fresh_schema(), f"shop_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "BAOZI_URL": f"{POSTGRES_URL}?schema={jobs_schema}",
        "SHOP_SCHEMA": shop_schema,
    }
    try:
        out = subprocess.run(
            [sys.executable, "shop.py", "--burst"],
            cwd=ROOT / "examples" / "transactional",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            "order for bob@example.com refused (total -1): rolled back, no e-mail enqueued",
            "mailed ada@example.com about order 1",
        ]
    finally:
        drop_postgres_schema(jobs_schema)
        drop_postgres_schema(shop_schema)


def test_an_open_transaction_that_enqueued_holds_up_no_one_else(pg_app: App) -> None:
    import threading

    add = pg_app.task(jobtasks.add)
    other = baozi.backends.open_store(pg_app.url + "&retry=2.5")  # connections of its own
    with psycopg.connect(POSTGRES_URL) as conn:
        held = add.apply_async((1, 1), connection=conn)  # its transaction stays open below
        done = threading.Event()

        def elsewhere() -> None:
            other.change_token()  # a process that starts waiting registers...
            other.enqueue("default", [baozi.backends.base.NewJob(add.name, b"[[2, 2], {}]")])
            done.set()  # ...and writes go on, while the transaction above is still open

        threading.Thread(target=elsewhere, daemon=True).start()
        assert done.wait(10), "a write waited for another session's open transaction"
        conn.commit()
    assert pg_app.store.record(held.id) is not None
    other.close()
