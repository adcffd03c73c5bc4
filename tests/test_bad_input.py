"""Bad input gets a clear error at the call site and leaves what is stored untouched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from baozi import App, Deque, NotABaoziStore, Queue, StoreUnavailable
from baozi.backends import open_store
from baozi.backends.sqlite._layout import latest


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_unknown_url_scheme_names_the_supported_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown store URL scheme mongodb://.*sqlite://.*memory://|"
        r"unknown store URL scheme mongodb://.*memory://.*sqlite://",
    ):
        Queue(url="mongodb://localhost/db")
    with pytest.raises(ValueError, match="scheme"):
        open_store("just-a-path.db")


@pytest.mark.parametrize(
    "url, match",
    [
        ("sqlite://somehost/x.db", "sqlite:///relative"),
        ("sqlite://", "names no file"),
        ("sqlite:///x.db?durable=maybe", "durable=fsync"),
        ("sqlite:///x.db?mode=ro", "unknown option"),
    ],
)
def test_malformed_sqlite_urls(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        open_store(url)


def test_a_path_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        Queue(url=f"sqlite:///{tmp_path}/no/such/dir/q.db")
    assert not (tmp_path / "no").exists()


def test_a_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreUnavailable, match="cannot open SQLite store"):
        Queue(url=f"sqlite:///{tmp_path}/adir")


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    before = digest(path)
    with pytest.raises(NotABaoziStore, match="not a baozi store"):
        Queue(url=f"sqlite:///{path}")
    assert digest(path) == before


def test_someone_elses_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('alice')")
    conn.close()
    before = digest(path)
    with pytest.raises(NotABaoziStore, match="customers"):
        Queue(url=f"sqlite:///{path}")
    assert digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with Queue(url=f"sqlite:///{path}") as q:
        q.put(1)
        assert q.get() == 1


def test_relative_sqlite_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Queue(url="sqlite:///rel.db") as q:
        q.put("x")
    assert (tmp_path / "rel.db").exists()


def test_the_default_store_comes_from_baozi_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAOZI_URL", f"sqlite:///{tmp_path}/from-env.db")
    with Queue("q") as q:
        q.put(1)
    assert (tmp_path / "from-env.db").exists()
    monkeypatch.delenv("BAOZI_URL")
    monkeypatch.chdir(tmp_path)
    with Queue("q") as q:
        assert q.url == "sqlite:///baozi.db"
    assert (tmp_path / "baozi.db").exists()


def test_memory_stores_are_shared_by_url_within_a_process() -> None:
    with Queue("q", url="memory://shared-test") as a, Queue("q", url="memory://shared-test") as b:
        a.put("x")
        assert b.get() == "x"
    with Queue("q", url="memory://other-test") as c:
        assert c.qsize() == 0


def test_durable_fsync_syncs_every_commit_and_default_does_not(tmp_path: Path) -> None:
    from baozi.backends.sqlite import SQLiteStore

    for query, expected in (("", 1), ("?durable=fsync", 2)):  # NORMAL = 1, FULL = 2
        store = open_store(f"sqlite:///{tmp_path}/d.db{query}")
        assert isinstance(store, SQLiteStore)
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.close()
    with Queue("q", url=f"sqlite:///{tmp_path}/d.db?durable=fsync") as q:
        q.put("synced")
        assert q.get() == "synced"


def test_a_closed_queue_handle_refuses_puts_and_gets(url: str) -> None:
    q = Queue("q", url=url)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.put(1)
    with pytest.raises(ValueError, match="closed"):
        q.get(timeout=0)


def test_a_schema_1_store_gains_the_coordination_tables_and_keeps_its_items(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with Queue(url=f"sqlite:///{path}") as q:
        q.put("kept")
    with sqlite3.connect(path) as conn:  # as baozi with schema 1 left it
        for table in ("baozi_kv", "baozi_slots", "baozi_waiters"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE baozi_meta SET value='1' WHERE key='schema'")
    conn.close()
    store = open_store(f"sqlite:///{path}?durable=fsync")  # a fresh handle: upgraded on open
    store.kv_set("ns", "k", b"v")
    assert store.acquire_slot("s", "h", 1, 30) is None
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone() == (
            str(latest()),
        )
    conn.close()
    with Queue(url=f"sqlite:///{path}?durable=fsync") as q:
        assert q.get() == "kept"


def test_a_schema_2_store_gains_job_totals_that_count_from_then_on(tmp_path: Path) -> None:
    from baozi.backends.base import NewJob

    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    store.enqueue("q", [NewJob("t", b"old")])
    store.close()
    with sqlite3.connect(path) as conn:  # as baozi with schema 2 left it
        for trigger in ("enqueued", "started", "finished"):
            conn.execute(f"DROP TRIGGER baozi_count_{trigger}")
        conn.execute("DROP TABLE baozi_totals")
        conn.execute(  # the queues as schema 2 made them, with no "listed" column
            "CREATE TABLE old_queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
            "options TEXT NOT NULL DEFAULT '{}'   -- JSON: maxsize, maxlen ...\n)"
        )
        conn.execute("INSERT INTO old_queues SELECT id, name, options FROM baozi_queues")
        conn.execute("DROP TABLE baozi_queues")
        conn.execute("ALTER TABLE old_queues RENAME TO baozi_queues")
        conn.execute("UPDATE baozi_items SET counted = NULL")  # (a column schema 2 lacked)
        conn.execute("UPDATE baozi_meta SET value='2' WHERE key='schema'")
    conn.close()
    store = open_store(f"sqlite:///{path}?durable=fsync")  # a fresh handle: upgraded on open
    assert store.queues() == ["q"] and store.counts("q").ready == 1
    store.enqueue("q", [NewJob("t", b"new")])
    assert store.job_totals("q")["t"]["enqueued"] == 1  # counted from the upgrade on
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone() == (
            str(latest()),
        )
    conn.close()


def test_job_ids_and_priorities_beyond_64_bits_are_refused_cleanly(url: str) -> None:
    from baozi import App, JobNotFound

    app = App(url)
    task = app.task(name="t")(lambda: None)
    with pytest.raises(JobNotFound):
        app.job(str(2**70))
    assert not app.store.cancel(str(2**70)) and app.store.rank("default", str(2**64)) is None
    with pytest.raises(ValueError, match="64 bits"):
        task.apply_async(priority=2**63)
    with pytest.raises(ValueError, match="NaN"):
        task.apply_async(priority=float("nan"))
    with pytest.raises(ValueError, match="non-empty"):
        app.task(name="u", queue="")(lambda: None)
    assert app.store.counts("default").total == 0


@pytest.mark.parametrize(
    "name", ["a\nb", "evil\u202egnp", "zero\u200bwidth", "nel\x85", "line\u2028sep", "tab\t"]
)
def test_a_queue_name_with_a_control_format_or_separator_character_is_refused(
    name: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = App(url)
    task = app.task(name="t")(lambda: None)
    with pytest.raises(ValueError, match=r"U\+[0-9A-F]{4}"):
        task.apply_async(queue=name)
    with pytest.raises(ValueError, match="refused"):
        app.queue(name)
    with pytest.raises(ValueError, match="refused"):
        Queue(name, url=url)
    with pytest.raises(ValueError, match="refused"):
        Deque(name, url=url)
    assert app.store.queues() == []
