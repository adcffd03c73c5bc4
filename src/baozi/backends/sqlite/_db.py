"""One SQLite file as this process sees it: URL parsing, schema, connections and the change signal."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from ..._process import current_pid
from ...errors import NotABaoziStore, StoreError, StoreUnavailable
from .._signal import ChangeSignal

SCHEMA_VERSION = 3
_DURABILITY = {"process": "NORMAL", "fsync": "FULL"}
_SCHEMA = (
    """
CREATE TABLE baozi_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE baozi_queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    options TEXT NOT NULL DEFAULT '{}',  -- JSON: maxsize, maxlen ...
    listed INTEGER NOT NULL DEFAULT 1    -- 0 once deleted (it is listed while it holds anything)
);
CREATE TABLE baozi_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, and the last part of the key
    qid INTEGER NOT NULL,
    state INTEGER NOT NULL,                -- 0 ready, 1 leased, 2 scheduled, -1 finished (jobs)
    priority NUMERIC NOT NULL,
    seq INTEGER NOT NULL,                  -- 0 (back) or minus the item's own id (front)
    due REAL,                              -- lease end (leased) or ready time (scheduled)
    owner TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    -- the record a job keeps (NULL for plain queue items)
    task TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,                          -- succeeded, failed or cancelled, once finished
    result BLOB,
    error TEXT,
    progress TEXT,
    counted INTEGER                        -- 1: the batch that added it counted it (see totals)
);
-- Partial indexes, each row in exactly one: a push writes one index, not two.
CREATE INDEX baozi_items_ready ON baozi_items (qid, priority, seq) WHERE state = 0;
CREATE INDEX baozi_items_due ON baozi_items (qid, due) WHERE state > 0;
CREATE INDEX baozi_items_done ON baozi_items (qid, outcome, id) WHERE state < 0;
CREATE INDEX baozi_items_expiry ON baozi_items (expires_at) WHERE state < 0;
CREATE TABLE baozi_workers (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL,                    -- JSON: host, pid, pool, concurrency, queues, busy ...
    seen REAL NOT NULL,
    expires REAL NOT NULL
);
"""
    + """
CREATE TABLE IF NOT EXISTS baozi_kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baozi_slots (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL,                 -- when the holder's time runs out
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baozi_waiters (  -- jobs held back until a slot frees
    slot TEXT NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (slot, item)
) WITHOUT ROWID;
"""
    + """
CREATE TABLE IF NOT EXISTS baozi_totals (  -- events of jobs, by queue and task (see COUNTED)
    qid INTEGER NOT NULL,
    task TEXT NOT NULL,
    event TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (qid, task, event)
) WITHOUT ROWID;
-- Triggers count in the statement that makes the change, so nothing can change uncounted; a
-- batch of jobs is counted once per task, in its own transaction, and marks its rows counted.
CREATE TRIGGER IF NOT EXISTS baozi_count_enqueued AFTER INSERT ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.counted IS NULL BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'enqueued', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS baozi_count_started AFTER UPDATE OF deliveries ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.deliveries > OLD.deliveries BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'started', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS baozi_count_finished AFTER UPDATE OF state ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.state < 0 AND OLD.state >= 0 BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, NEW.outcome, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
"""
)
_SCHEMA_2 = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS baozi_kv") :]
"""What schemas 2 and 3 added to schema 1 (the coordination tables, then the job totals). A file
of an older schema gets them on open."""
_SCHEMA_3 = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS baozi_totals") :]
_COLUMNS_3 = {"listed": "listed INTEGER NOT NULL DEFAULT 1", "counted": "counted INTEGER"}
"""The columns schema 3 added to the tables of schema 2."""


_BUSY = 5  # SQLITE_BUSY: another connection holds the write lock
_BUSY_TIMEOUT = 60.0


_execute = sqlite3.Connection.execute


class _Connection(sqlite3.Connection):
    """A connection that waits for the write lock with short sleeps (50 us, doubling to 2 ms).

    SQLite's own busy handler sleeps at least a millisecond per try, a long time next to a queue
    commit of tens of microseconds; with several processes writing, that sleep would dominate.
    A statement is retried only outside a transaction, where a busy error means nothing was done.
    """

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return _execute(self, sql, parameters)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != _BUSY or self.in_transaction:
                raise
        return self._retry(super().execute, sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self._retry(super().executemany, sql, parameters)

    def _retry(self, run: Any, sql: str, parameters: Any) -> sqlite3.Cursor:
        delay, deadline = 0.00005, 0.0
        while True:
            try:
                cursor: sqlite3.Cursor = run(sql, parameters)
                return cursor
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != _BUSY or self.in_transaction:
                    raise
                now = time.monotonic()
                deadline = deadline or now + _BUSY_TIMEOUT
                if now > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.002)


def parse_url(url: str) -> tuple[str, str]:
    """``sqlite:///path?durable=...`` -> (absolute path, durability)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no file: use sqlite:///baozi.db")
    query = parse_qs(parts.query)
    durable = query.pop("durable", ["process"])[-1]
    if durable not in _DURABILITY:
        raise ValueError(f"durable={durable!r} in {url!r}: use durable=process or durable=fsync")
    if query:
        raise ValueError(f"unknown option(s) {sorted(query)} in {url!r}: only durable= is known")
    return os.path.abspath(path), durable


class _WalWatch:
    """Wakes the change poller when any process writes the database (Linux inotify on its folder).

    In WAL mode every commit appends to ``<file>-wal``, so a write event there is the doorbell;
    the poller then reads ``data_version`` to see whether anything was committed."""

    def __init__(self, path: str) -> None:
        from inotify_simple import INotify, flags

        self._inotify = INotify()
        base = os.path.basename(path)
        self._names = {f"{base}-wal", base}  # other files in the folder are not our business
        self._overflow = int(flags.Q_OVERFLOW)
        try:
            mask = flags.MODIFY | flags.CREATE | flags.MOVED_TO
            self._inotify.add_watch(os.path.dirname(path), mask)
        except OSError:
            self._inotify.close()
            raise

    def wait(self, timeout: float) -> bool:
        """Wait until one of the database's files is written (True) or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            events = self._inotify.read(timeout=max(1, round(left * 1000)))
            if any(e.name in self._names or e.mask & self._overflow for e in events):
                return True
        return False

    def close(self) -> None:
        self._inotify.close()


def _watch(path: str) -> _WalWatch | None:
    try:
        return _WalWatch(path)
    except (ImportError, OSError):  # not Linux, or out of inotify instances: poll instead
        return None


_MAGIC = b"SQLite format 3\x00"
"""How every SQLite file begins."""


def _unreadable(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    """The error for a file SQLite cannot read: a damaged store when the file is (or begins as)
    an SQLite file, else something that is not a baozi store at all."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MAGIC))
    except OSError:
        head = b""
    if head and _MAGIC.startswith(head):
        return StoreError(
            f"the store file is damaged: {path} is an SQLite file that SQLite cannot read "
            f"({exc}), truncated or overwritten in part; baozi left it untouched: restore it "
            f"from a backup, or move it aside to start an empty store"
        )
    return NotABaoziStore(
        f"{path!r} is not a baozi store ({exc}); baozi left it untouched: use another file name"
    )


class Database:
    """What one process shares for one file: its connections, queue ids and the change signal.

    Handles share it through a reference count; the last one to close it closes its connections.
    """

    _registry: ClassVar[dict[tuple[int, str, str], Database]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def acquire(cls, path: str, durable: str) -> Database:
        key = (
            current_pid(),
            path,
            durable,
        )  # a forked child must not reuse its parent's connections
        with cls._registry_lock:
            db = cls._registry.get(key)
            if db is None:
                db = cls._registry[key] = cls(path, durable)
            db.refs += 1
            return db

    def release(self) -> None:
        with self._registry_lock:
            self.refs -= 1
            if self.refs > 0:
                return
            self._registry.pop((current_pid(), self.path, self.durable), None)
        self.signal.close(self._close_connections)

    def __init__(self, path: str, durable: str) -> None:
        self.path = path
        self.durable = durable
        self.synchronous = _DURABILITY[durable]
        self.refs = 0
        self.local = threading.local()
        self.qids: dict[str, int] = {}
        self.promoted_at: dict[int, float] = {}
        self.swept_at: dict[int, float] = {}  # when each queue was last looked over for junk
        # Every connection, by the thread that uses it (or "probe"): a thread that ends leaves its
        # connection behind, so those are closed whenever a new thread connects.
        self._connections: dict[object, sqlite3.Connection] = {}
        self._connections_lock = threading.Lock()
        first = self._connect(threading.current_thread())
        try:
            self._ensure_schema(first)
        except BaseException:
            self._close_connections()
            raise
        self.local.conn = first
        self._probe_conn = self._connect("probe")
        self.signal = ChangeSignal(self._data_version, _watch(path))

    def _close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, {}
        for conn in connections.values():
            conn.close()

    def _connect(self, user: object) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreUnavailable(
                f"cannot open SQLite store {self.path!r}: directory {directory!r} does not exist "
                f"(create it, or point the URL at an existing folder)"
            )
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=0.0,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        with self._connections_lock:
            self._connections[user] = conn
        try:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _unreadable(self.path, exc) from exc
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            raise _unreadable(self.path, exc) from exc
        if "baozi_meta" not in tables:
            tables.discard("sqlite_sequence")
            if tables:
                raise NotABaoziStore(
                    f"{self.path!r} is an SQLite database with tables or views baozi did not create "
                    f"({', '.join(sorted(tables)[:5])}); baozi left it untouched: use another file"
                )
            self._create_schema(conn)
        try:
            version = conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise _unreadable(self.path, exc) from exc
        if version is not None and version[0] in ("1", "2"):
            self._upgrade(conn, version[0])
            version = (str(SCHEMA_VERSION),)
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise NotABaoziStore(
                f"{self.path!r} holds baozi schema {version and version[0]}, this baozi reads "
                f"schema {SCHEMA_VERSION}: open it with the matching baozi version"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        try:
            # Small pages: a commit appends whole pages to the WAL, and a queue commit touches few rows.
            conn.execute("PRAGMA page_size=1024")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name='baozi_meta'").fetchone():
                conn.execute("ROLLBACK")  # another process created it first
                return
            _run_script(conn, _SCHEMA)
            conn.execute("INSERT INTO baozi_meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot create a baozi store in {self.path!r}: {exc}") from exc

    def _upgrade(self, conn: sqlite3.Connection, version: str) -> None:
        """Schema 1 -> 2 adds the coordination tables; 2 -> 3 the job totals, their triggers,
        the queues' ``listed`` and the items' ``counted`` columns (the totals count from the
        upgrade on)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            (now,) = conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()
            if now != version:  # another process upgraded it first
                conn.execute("ROLLBACK")
                return
            for table, column in (("baozi_queues", "listed"), ("baozi_items", "counted")):
                columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {_COLUMNS_3[column]}")
            _run_script(conn, _SCHEMA_2)  # every table and trigger it lacks (IF NOT EXISTS)
            conn.execute("UPDATE baozi_meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot upgrade the baozi store {self.path!r}: {exc}") from exc

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            with self._connections_lock:
                gone = [
                    t
                    for t in self._connections
                    if isinstance(t, threading.Thread) and not t.is_alive()
                ]
                stale = [self._connections.pop(t) for t in gone]
            for old in stale:
                old.close()
            conn = self.local.conn = self._connect(threading.current_thread())
        return conn

    def _data_version(self) -> int:
        return int(self._probe_conn.execute("PRAGMA data_version").fetchone()[0])

    def qid(self, name: str) -> int:
        """The queue's id, for a write: the queue is made (or listed again) if need be."""
        qid = self.qids.get(name)
        if qid is None:
            conn = self.conn()
            try:
                conn.execute(
                    "INSERT INTO baozi_queues (name) VALUES (?) "
                    "ON CONFLICT (name) DO UPDATE SET listed=1 WHERE listed=0",
                    (name,),
                )
                qid = conn.execute("SELECT id FROM baozi_queues WHERE name=?", (name,)).fetchone()[
                    0
                ]
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            self.qids[name] = qid
        return qid

    def find_qid(self, name: str) -> int | None:
        """The queue's id, for a read: None when there is no such queue (nothing is made)."""
        qid = self.qids.get(name)
        if qid is None:
            try:
                row = (
                    self.conn()
                    .execute("SELECT id FROM baozi_queues WHERE name=?", (name,))
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            if row is None:
                return None
            qid = self.qids[name] = row[0]
        return int(qid)


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one by one, in the caller's transaction (a trigger's
    body holds ";" too: a statement ends at a ";" that closes its line, outside BEGIN ... END)."""
    statement: list[str] = []
    inside = False
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("--"):
            continue
        statement.append(line)
        if line.rstrip().endswith("BEGIN"):
            inside = True
        if line.rstrip().endswith(";") and (not inside or line.strip() == "END;"):
            conn.execute("\n".join(statement))
            statement, inside = [], False
    if statement:
        conn.execute("\n".join(statement))
