"""The PostgreSQL store's own URL options and schema: what the conformance suite cannot say."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

import baozi
from baozi.backends import open_store, store_class
from baozi.backends.base import NewJob
from baozi.backends.postgres import _layout as pg_layout

from .conftest import POSTGRES_URL, drop_postgres_schema, fresh_schema, postgres_or_skip


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    postgres_or_skip()
    made: list[str] = []
    yield made
    for schema in made:
        drop_postgres_schema(schema)


def test_each_schema_is_a_store_of_its_own(schemas: list[str]) -> None:
    schemas += [fresh_schema(), fresh_schema()]
    a, b = (open_store(f"{POSTGRES_URL}?schema={s}") for s in schemas)
    a.push("q", [b"in a"])
    b.enqueue("q", [NewJob("t", b"in b")])
    assert [i.payload for i in a.snapshot("q")] == [b"in a"]
    assert [i.payload for i in b.snapshot("q")] == [b"in b"]
    a.close()
    b.close()


def test_a_read_only_command_learns_the_schema_is_missing_and_makes_nothing(
    schemas: list[str],
) -> None:
    schema = fresh_schema()
    url = f"{POSTGRES_URL}?schema={schema}"
    said = store_class(url).missing(url)
    assert said is not None and schema in said
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert row is None
    schemas.append(schema)
    open_store(url).close()  # opening makes it
    assert store_class(url).missing(url) is None


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("schema=Bad-Name", "invalid schema='Bad-Name'"),
        ("schema=1abc", "invalid schema='1abc'"),
        ("retry=-1", "invalid retry='-1'"),
        ("poll=soon", "invalid poll='soon'"),
    ],
)
def test_bad_options_are_refused_naming_them(query: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(")):
        open_store(f"{POSTGRES_URL}?{query}")


def test_a_schema_holding_other_tables_or_a_newer_layout_is_refused(schemas: list[str]) -> None:
    foreign, newer = fresh_schema(), fresh_schema()
    schemas += [foreign, newer]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{foreign}"')
        conn.execute(f'CREATE TABLE "{foreign}".customers (id int)')
    with pytest.raises(baozi.errors.NotABaoziStore, match="not a baozi store"):
        open_store(f"{POSTGRES_URL}?schema={foreign}")
    open_store(f"{POSTGRES_URL}?schema={newer}").close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{newer}\".meta SET value = '99' WHERE key = 'layout'")
    reads = f"layout 99, and this baozi reads layouts up to {pg_layout.latest()}"
    with pytest.raises(baozi.StoreError, match=reads):
        open_store(f"{POSTGRES_URL}?schema={newer}")
    with psycopg.connect(POSTGRES_URL) as conn:  # nothing was touched
        assert conn.execute(f'SELECT count(*) FROM "{foreign}".customers').fetchone() == (0,)
        layout = conn.execute(f"SELECT value FROM \"{newer}\".meta WHERE key = 'layout'")
        assert layout.fetchone() == ("99",)


def test_a_schema_whose_layout_is_no_version_is_refused(schemas: list[str]) -> None:
    schemas.append(schema := fresh_schema())
    open_store(f"{POSTGRES_URL}?schema={schema}").close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{schema}\".meta SET value = 'three' WHERE key = 'layout'")
    with pytest.raises(baozi.errors.NotABaoziStore, match="'three'"):
        open_store(f"{POSTGRES_URL}?schema={schema}")


def _layout_of(schema: str) -> str:
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute(f"SELECT value FROM \"{schema}\".meta WHERE key = 'layout'")
        return str((row.fetchone() or ("",))[0])


def test_an_older_layout_is_migrated_once_however_many_open_it_at_once(
    schemas: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas.append(schema := fresh_schema())
    store = open_store(f"{POSTGRES_URL}?schema={schema}")
    ids = store.enqueue("q", [NewJob("t", b"x")] * 5)
    store.close()
    # A step from this layout that would fail if it ran twice (the table exists by then).
    layout = pg_layout.latest()
    step = "CREATE TABLE {s}.step AS SELECT id FROM {s}.items; SELECT 1"
    monkeypatch.setitem(pg_layout.MIGRATIONS, layout, step)
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_it() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            start.wait()
            try:
                pg_layout.create(conn, schema, POSTGRES_URL)
            except BaseException as exc:  # noqa: BLE001 -- collected for the assertion
                failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == [] and _layout_of(schema) == str(layout + 1)
    with psycopg.connect(POSTGRES_URL) as conn:
        (copied,) = conn.execute(f'SELECT count(*) FROM "{schema}".step').fetchone() or (0,)
    assert copied == 5
    monkeypatch.undo()  # this baozi again: the next layout is newer than it reads
    with pytest.raises(baozi.StoreError, match=f"layout {layout + 1}"):
        open_store(f"{POSTGRES_URL}?schema={schema}")
    assert len(ids) == 5


def test_a_failing_step_is_undone_whole_and_leaves_the_old_layout(
    schemas: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas.append(schema := fresh_schema())
    url = f"{POSTGRES_URL}?schema={schema}"
    store = open_store(url)
    store.enqueue("q", [NewJob("t", b"x")] * 3)
    store.close()
    step = "DELETE FROM {s}.items; CREATE TABLE {s}.half (x int); SELECT * FROM {s}.no_such"
    layout = pg_layout.latest()
    monkeypatch.setitem(pg_layout.MIGRATIONS, layout, step)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            pg_layout.create(conn, schema, POSTGRES_URL)
    monkeypatch.undo()
    assert _layout_of(schema) == str(layout)
    again = open_store(url)
    assert again.counts("q").ready == 3  # every item is still there
    again.close()


def test_polling_instead_of_listen_still_wakes_a_waiting_get(schemas: list[str]) -> None:
    import threading

    schema = fresh_schema()
    schemas.append(schema)
    url = f"{POSTGRES_URL}?schema={schema}&poll=0.05"
    q = baozi.Queue("jobs", url=url)
    threading.Timer(0.2, lambda: baozi.Queue("jobs", url=url).put("hello")).start()
    assert q.get(timeout=10) == "hello"
    q.close()


def test_a_row_whose_priority_is_no_number_is_moved_aside_and_the_rest_flow(
    schemas: list[str],
) -> None:
    schema = fresh_schema()
    schemas.append(schema)
    store = open_store(f"{POSTGRES_URL}?schema={schema}")
    good = store.enqueue("q", [NewJob("t", b"a"), NewJob("t", b"b")])
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            f"UPDATE \"{schema}\".items SET priority = 'NaN' WHERE id = %s", (int(good[0]),)
        )
    got = store.reserve("q", "w", 30, 5)
    assert [i.id for i in got] == [good[1]]  # the other job still runs
    assert store.record(good[0]) is None
    with psycopg.connect(POSTGRES_URL) as conn:
        (reason,) = conn.execute(f'SELECT reason FROM "{schema}".junk').fetchone() or ("",)
    assert "NaN" in reason
    store.close()


def test_ready_counts_grow_with_the_queue_not_its_history(schemas: list[str]) -> None:
    schema = fresh_schema()
    schemas.append(schema)
    url = f"{POSTGRES_URL}?schema={schema}"
    producer = open_store(url)
    worker = open_store(f"{url}&retry=2.5")  # another Database: connections of its own
    for _ in range(3):
        producer.enqueue("q", [NewJob("t", b"x")] * 2500)
        while got := worker.reserve("q", "w", 30, 500):
            worker.ack("q", [i.id for i in got], "w")
    last = producer.enqueue("q", [NewJob("t", b"y")] * 3)
    with psycopg.connect(POSTGRES_URL) as conn:
        before = conn.execute(f'SELECT count(*) FROM "{schema}".ready').fetchone()
    worker.purge_expired()  # both connections still live
    with psycopg.connect(POSTGRES_URL) as conn:
        rows, buckets, total = conn.execute(
            f"SELECT count(*), count(DISTINCT (qid, priority, sb, ib)), sum(n) "
            f'FROM "{schema}".ready'
        ).fetchone()
    assert before is not None and before[0] > rows
    # The drained buckets' rows are gone; the one bucket still holding items keeps a row per
    # connection that wrote to it (which of a store's connections served a call varies).
    assert buckets == 1 and total == 3
    assert producer.counts("q").ready == 3 and producer.rank("q", last[2]) == 2
    producer.close()
    worker.close()
