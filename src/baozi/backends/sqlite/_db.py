"""One SQLite file as this process sees it: URL parsing, connections and the change signal."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...errors import StoreError, StoreUnavailable
from .._registry import Registry
from .._signal import ChangeSignal
from ._layout import open_layout, unreadable

_DURABILITY = {"process": "NORMAL", "fsync": "FULL"}


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


class Database:
    """What one process shares for one file: its connections, queue ids and the change signal.

    Handles share it through a reference count; the last one to close it closes its connections.
    """

    @classmethod
    def acquire(cls, path: str, durable: str) -> Database:
        """This process's database for the file, opened by the first handle that asks."""
        return _DATABASES.acquire((path, durable))

    def release(self) -> None:
        """One handle fewer; the last one closes the connections."""
        _DATABASES.release((self.path, self.durable))

    def _close(self) -> None:
        self.signal.close(self._close_connections)

    def __init__(self, path: str, durable: str) -> None:
        self.path = path
        self.durable = durable
        self.synchronous = _DURABILITY[durable]
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
            open_layout(first, path)
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
            raise unreadable(self.path, exc) from exc
        return conn

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


_DATABASES: Registry[tuple[str, str], Database] = Registry(
    lambda key: Database(*key), Database._close
)
