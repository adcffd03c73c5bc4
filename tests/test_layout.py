"""A store records the version of its layout and migrates an older one in place: each step once,
however many processes open the store at once, in one transaction (SQLite) or one script (Redis),
and a step that fails leaves the store at its old layout with its data as it was. A layout newer
than this baozi's is refused, naming both versions, and left untouched."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baozi import NotABaoziStore, Queue, StoreError, StoreUnavailable
from baozi.backends import open_store
from baozi.backends.redis import _layout as redis_layout
from baozi.backends.sqlite import _layout as sqlite_layout

from ._oldstores import READ, old_store, read, redis_client, state
from .conftest import REDIS_URL, drop_redis_prefix, fresh_prefix, redis_or_skip

LAYOUT_1 = """
CREATE TABLE baozi_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE baozi_queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE baozi_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    qid INTEGER NOT NULL,
    state INTEGER NOT NULL,
    priority NUMERIC NOT NULL,
    seq INTEGER NOT NULL,
    due REAL,
    owner TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    task TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    result BLOB,
    error TEXT,
    progress TEXT
);
CREATE INDEX baozi_items_ready ON baozi_items (qid, priority, seq) WHERE state = 0;
CREATE INDEX baozi_items_due ON baozi_items (qid, due) WHERE state > 0;
CREATE INDEX baozi_items_done ON baozi_items (qid, outcome, id) WHERE state < 0;
CREATE INDEX baozi_items_expiry ON baozi_items (expires_at) WHERE state < 0;
CREATE TABLE baozi_workers (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    seen REAL NOT NULL,
    expires REAL NOT NULL
);
INSERT INTO baozi_meta VALUES ('schema', '1');
INSERT INTO baozi_queues (name) VALUES ('q');
INSERT INTO baozi_items (qid, state, priority, seq, payload) VALUES (1, 0, 0, 0, X'226b65707422');
"""
"""A file as the first baozi made it (layout 1), holding one item, "kept"."""


def _shape(path: Path) -> list[object]:
    """The file's tables (columns, types, defaults, keys), indexes and triggers."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
        shape: list[object] = []
        for kind, name, sql in rows:
            if kind == "table":
                columns = conn.execute(f"PRAGMA table_xinfo({name})").fetchall()
                shape.append((name, columns, sql.rstrip().endswith("WITHOUT ROWID")))
            else:
                shape.append((kind, name, " ".join(sql.replace("IF NOT EXISTS ", "").split())))
        return shape
    finally:
        conn.close()


def _meta(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        (value,) = conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()
        return str(value)
    finally:
        conn.close()


def _at_once(n: int, fn: Callable[[int], object]) -> list[BaseException]:
    """Run ``fn(0)`` ... ``fn(n - 1)`` in threads released together; return what they raised."""
    start, errors = threading.Barrier(n), []

    def run(i: int) -> None:
        start.wait()
        try:
            fn(i)
        except BaseException as exc:  # noqa: BLE001 -- reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def _read_by_all_before_any_migrates(monkeypatch: pytest.MonkeyPatch, layout: Any, n: int) -> None:
    """Hold each of ``n`` openers, once it has read the old layout, until all of them have: then
    every one of them goes on to migrate, and only the check inside the step can stop them."""
    migrate, all_read = layout._migrate, threading.Barrier(n, timeout=30)

    def held(*args: Any) -> Any:
        all_read.wait()
        return migrate(*args)

    monkeypatch.setattr(layout, "_migrate", held)


def test_the_migrations_of_each_store_go_one_step_at_a_time_from_layout_1() -> None:
    for layout in (sqlite_layout, redis_layout):
        assert sorted(layout.MIGRATIONS) == list(range(1, layout.latest()))


# -- SQLite ---------------------------------------------------------------------------------------


def test_a_new_sqlite_file_starts_at_the_latest_layout(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'new.db'}").close()
    assert _meta(tmp_path / "new.db") == str(sqlite_layout.latest()) == "8"


def test_every_sqlite_migration_together_ends_at_the_tables_of_a_new_file(tmp_path: Path) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(LAYOUT_1)
    conn.close()
    with Queue("q", url=f"sqlite:///{old}") as q:
        assert q.get(timeout=0) == "kept"
        q.task_done()
    open_store(f"sqlite:///{new}").close()
    assert _meta(old) == "8"
    assert _shape(old) == _shape(new)


def test_each_sqlite_migration_step_commits_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LAYOUT_1)
    conn.close()

    def broken(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(sqlite_layout.MIGRATIONS, 2, broken)
    with pytest.raises(StoreUnavailable, match="from layout 2 to 3 .*left at layout 2"):
        open_store(f"sqlite:///{path}")
    assert _meta(path) == "2"  # the step from 1 was done, and kept
    monkeypatch.undo()
    with Queue("q", url=f"sqlite:///{path}") as q:
        assert q.get(timeout=0) == "kept"
        q.task_done()
    assert _meta(path) == str(sqlite_layout.latest())


def test_a_sqlite_step_runs_once_however_many_connections_open_the_file_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    def step(conn: sqlite3.Connection) -> None:
        runs.append(1)
        conn.execute("CREATE TABLE baozi_step (item INTEGER)")
        conn.execute("INSERT INTO baozi_step SELECT id FROM baozi_items")

    last = sqlite_layout.latest()  # the old store's steps run first, each once as well
    monkeypatch.setitem(sqlite_layout.MIGRATIONS, last, step)
    _read_by_all_before_any_migrates(monkeypatch, sqlite_layout, 6)
    with old_store("sqlite", tmp_path) as url:
        path = url.removeprefix("sqlite:///")

        def open_it(i: int) -> None:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                sqlite_layout.open_layout(conn, path)
            finally:
                conn.close()

        assert _at_once(6, open_it) == []
        assert runs == [1] and _meta(Path(path)) == str(last + 1)
        assert read(url, "sqlite") == READ["sqlite"]


def test_a_failing_sqlite_step_is_undone_whole_and_leaves_the_old_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def step(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE baozi_half (x)")
        conn.execute("DELETE FROM baozi_items")
        conn.execute("UPDATE baozi_kv SET value = x'00'")
        conn.execute("SELECT * FROM baozi_no_such_table")

    with old_store("sqlite", tmp_path) as url:
        before = state(url)
        monkeypatch.setitem(sqlite_layout.MIGRATIONS, 3, step)
        with pytest.raises(StoreUnavailable, match="from layout 3 to 4 .*no such table"):
            open_store(url)
        assert state(url) == before
        monkeypatch.undo()
        assert read(url, "sqlite") == READ["sqlite"]


def test_a_sqlite_file_whose_layout_is_no_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE baozi_meta SET value='three' WHERE key='schema'")
    conn.close()
    with pytest.raises(NotABaoziStore, match="'three'"):
        open_store(f"sqlite:///{path}")


# -- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    redis_or_skip()
    prefix = fresh_prefix()
    yield f"{REDIS_URL}?prefix={prefix}"
    drop_redis_prefix(prefix)


def _get(url: str, rest: str) -> bytes | None:
    client = redis_client()
    try:
        value: bytes | None = client.get(f"{url.rsplit('prefix=', 1)[1]}:{rest}")
        return value
    finally:
        client.close()


COUNT_RUNS = "redis.call('INCR', P .. ':steps')"


def test_an_empty_redis_store_records_the_latest_layout_and_runs_no_step(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(redis_url) as store:
        store.queues()
    assert _get(redis_url, "layout") == str(redis_layout.latest()).encode() == b"5"
    drop_redis_prefix(redis_url.rsplit("prefix=", 1)[1])
    monkeypatch.setitem(redis_layout.MIGRATIONS, 1, COUNT_RUNS)
    with open_store(redis_url) as store:
        store.queues()
    assert _get(redis_url, "layout") == b"5" and _get(redis_url, "steps") is None


def test_a_redis_step_runs_once_however_many_processes_open_the_store_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(redis_layout.MIGRATIONS, 1, COUNT_RUNS)
    _read_by_all_before_any_migrates(monkeypatch, redis_layout, 6)
    with old_store("redis", tmp_path) as url:

        def open_it(i: int) -> None:  # each URL its own connections, as in its own process
            with open_store(f"{url}&retry={2 + i / 100}") as store:
                store.queues()

        assert _at_once(6, open_it) == []
        assert _get(url, "steps") == b"1" and _get(url, "layout") == b"5"
        assert read(url, "redis") == READ["redis"]


def test_a_failing_redis_step_leaves_the_store_at_its_old_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A step checks what it will touch before its first write: Redis does not undo a script.
    refuse = "if redis.call('EXISTS', P .. ':queues') == 1 then error('queues in the way') end"
    monkeypatch.setitem(redis_layout.MIGRATIONS, 1, refuse)
    with old_store("redis", tmp_path) as url:
        before = state(url)
        with open_store(url) as store:
            with pytest.raises(StoreError, match="from layout 1 to 2 .*in the way.*still 1"):
                store.queues()
        assert state(url) == before | {"layout": {"type": "string", "value": "1", "expires": -1}}
        monkeypatch.undo()
        assert read(url, "redis") == READ["redis"]


def test_a_batch_block_that_is_the_first_call_checks_the_layout_too(redis_url: str) -> None:
    client = redis_client()
    client.set(f"{redis_url.rsplit('prefix=', 1)[1]}:layout", redis_layout.latest() + 1)
    client.close()
    before = state(redis_url)
    with open_store(redis_url) as store:
        with pytest.raises(StoreError, match="reads layouts up to"):
            with store.batch():
                store.enqueue_one("q", "t", b"[[], {}]")
    assert state(redis_url) == before


def test_a_redis_layout_that_is_no_version_is_refused(redis_url: str) -> None:
    client = redis_client()
    client.set(f"{redis_url.rsplit('prefix=', 1)[1]}:layout", "three")
    client.close()
    with open_store(redis_url) as store:
        with pytest.raises(StoreError, match="'three'.* no layout version"):
            store.queues()


# -- both -----------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    redis_or_skip()
    prefix = fresh_prefix()
    yield f"{REDIS_URL}?prefix={prefix}"
    drop_redis_prefix(prefix)


def _set_layout(url: str, version: int) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE baozi_meta SET value=? WHERE key='schema'", (str(version),))
        conn.close()
        return
    client = redis_client()
    client.set(f"{url.rsplit('prefix=', 1)[1]}:layout", version)
    client.close()


def _digest(url: str) -> str:
    if url.startswith("sqlite"):
        return hashlib.sha256(Path(url.removeprefix("sqlite:///")).read_bytes()).hexdigest()
    return repr(state(url))


def test_a_layout_newer_than_this_baozi_is_refused_naming_both_and_left_untouched(
    any_url: str,
) -> None:
    latest = (sqlite_layout if any_url.startswith("sqlite") else redis_layout).latest()
    with Queue("q", url=any_url) as q:
        q.put("kept")
    _set_layout(any_url, latest + 1)
    before = _digest(any_url)
    message = rf"has layout {latest + 1}, and this baozi reads layouts up to {latest}.*Upgrade"
    with pytest.raises(StoreError, match=message) as refused:
        Queue("q", url=any_url)  # a fresh handle reads the layout again
    assert not isinstance(refused.value, NotABaoziStore)
    assert _digest(any_url) == before
    _set_layout(any_url, latest)
    with Queue("q", url=any_url) as q:
        assert q.get(timeout=0) == "kept"
        q.task_done()
