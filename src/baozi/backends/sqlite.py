"""``sqlite:///path.db``: the embedded default store, one SQLite file shared by every process.

The file runs in WAL mode. By default (``durable=process``) a commit survives the death of the
process that made it -- kill -9 included -- but not a power cut; ``?durable=fsync`` syncs every
commit to disk as well. Other processes' changes are noticed through ``PRAGMA data_version``, read
by one poller thread per process while something waits.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import Full, NotABaoziStore, StoreError, StoreUnavailable
from ._signal import ChangeSignal
from .base import Counts, Item, Priority, Store

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
_READY, _LEASED, _SCHEDULED = 0, 1, 2
_DURABILITY = {"process": "NORMAL", "fsync": "FULL"}
_SCHEMA = """
CREATE TABLE baozi_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE baozi_queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE baozi_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, and the last part of the key
    qid INTEGER NOT NULL,
    state INTEGER NOT NULL,                -- 0 ready, 1 leased, 2 scheduled
    priority NUMERIC NOT NULL,
    seq INTEGER NOT NULL,                  -- 0 (back) or minus the item's own id (front)
    due REAL,                              -- lease end (leased) or ready time (scheduled)
    owner TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL
);
-- Two partial indexes, each row in exactly one: a push writes one index, not two.
CREATE INDEX baozi_items_ready ON baozi_items (qid, priority, seq) WHERE state = 0;
CREATE INDEX baozi_items_due ON baozi_items (qid, due) WHERE state > 0;
"""
_ORDER = "priority, seq, id"
_ORDER_DESC = "priority DESC, seq DESC, id DESC"
_CHUNK = 500  # ids per statement, well below SQLite's variable limit
PROMOTE_EVERY = 0.05
"""How often (s) a busy consumer moves expired leases and due delays back to ready."""
_NEXT_ID_NEGATED = (
    "-(SELECT coalesce(max(seq), 0) + 1 FROM sqlite_sequence WHERE name='baozi_items')"
)
_READY_COUNT = (  # parameters: ?1 qid ... ?6 now
    "((SELECT count(*) FROM baozi_items WHERE qid=?1 AND state=0) + "
    "(SELECT count(*) FROM baozi_items WHERE qid=?1 AND state>0 AND due<=?6))"
)
_RESERVE = (
    "UPDATE baozi_items SET state=1, due=?, owner=?, deliveries=deliveries+1 "
    "WHERE id IN (SELECT id FROM baozi_items WHERE qid=? AND state=0 "
    "ORDER BY priority, seq, id LIMIT ?) "
    "RETURNING id, payload, priority, deliveries, seq"
)


def _parse(url: str) -> tuple[str, str]:
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
        try:
            mask = flags.MODIFY | flags.CREATE | flags.MOVED_TO
            self._inotify.add_watch(os.path.dirname(path), mask)
        except OSError:
            self._inotify.close()
            raise

    def wait(self, timeout: float) -> None:
        self._inotify.read(timeout=int(timeout * 1000))

    def close(self) -> None:
        self._inotify.close()


def _watch(path: str) -> _WalWatch | None:
    try:
        return _WalWatch(path)
    except (ImportError, OSError):  # not Linux, or out of inotify instances: poll instead
        return None


class _Database:
    """What one process shares for one file: its connections, queue ids and the change signal.

    Handles share it through a reference count; the last one to close it closes its connections.
    """

    _registry: ClassVar[dict[tuple[int, str, str], _Database]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def acquire(cls, path: str, durable: str) -> _Database:
        key = (os.getpid(), path, durable)  # a forked child must not reuse its parent's connections
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
            self._registry.pop((os.getpid(), self.path, self.durable), None)
        self.signal.close(self._close_connections)

    def __init__(self, path: str, durable: str) -> None:
        self.path = path
        self.durable = durable
        self.synchronous = _DURABILITY[durable]
        self.refs = 0
        self.local = threading.local()
        self.qids: dict[str, int] = {}
        self.promoted_at: dict[int, float] = {}
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        first = self._connect()
        try:
            self._ensure_schema(first)
        except BaseException:
            self._close_connections()
            raise
        self.local.conn = first
        self._probe_conn = self._connect()
        self.signal = ChangeSignal(self._data_version, _watch(path))

    def _close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreUnavailable(
                f"cannot open SQLite store {self.path!r}: directory {directory!r} does not exist "
                f"(create it, or point the URL at an existing folder)"
            )
        try:
            conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        with self._connections_lock:
            self._connections.append(conn)
        try:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreUnavailable(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise NotABaoziStore(
                f"{self.path!r} is not a baozi store ({exc}); baozi left it untouched: "
                f"use another file name"
            ) from exc
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise NotABaoziStore(
                f"{self.path!r} is not a baozi store ({exc}); baozi left it untouched: "
                f"use another file name"
            ) from exc
        if "baozi_meta" not in tables:
            tables.discard("sqlite_sequence")
            if tables:
                raise NotABaoziStore(
                    f"{self.path!r} is an SQLite database with tables baozi did not create "
                    f"({', '.join(sorted(tables)[:5])}); baozi left it untouched: use another file"
                )
            self._create_schema(conn)
        version = conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()
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
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO baozi_meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot create a baozi store in {self.path!r}: {exc}") from exc

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self._connect()
        return conn

    def _data_version(self) -> int:
        return int(self._probe_conn.execute("PRAGMA data_version").fetchone()[0])

    def qid(self, name: str) -> int:
        qid = self.qids.get(name)
        if qid is None:
            conn = self.conn()
            conn.execute("INSERT OR IGNORE INTO baozi_queues (name) VALUES (?)", (name,))
            qid = conn.execute("SELECT id FROM baozi_queues WHERE name=?", (name,)).fetchone()[0]
            self.qids[name] = qid
        return qid


def _chunks(ids: Sequence[str]) -> Iterator[list[int]]:
    nums = []
    for i in ids:
        try:
            nums.append(int(i))
        except (TypeError, ValueError):
            continue  # an id this store never issued: nothing to settle
    for start in range(0, len(nums), _CHUNK):
        yield nums[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _item(row: Any) -> Item:
    return Item(str(row[0]), row[1], row[2], row[3])


class SQLiteStore(Store):
    scheme: ClassVar[str] = "sqlite"
    shared_across_processes: ClassVar[bool] = True
    durable: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path, self.durability = _parse(url)
        self._pid = os.getpid()
        self._database: _Database | None = _Database.acquire(self.path, self.durability)

    @property
    def _db(self) -> _Database:
        db = self._database
        if db is None:
            raise ValueError(f"this handle on SQLite store {self.path!r} is closed")
        if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
            self._pid = os.getpid()
            db = self._database = _Database.acquire(self.path, self.durability)
        return db

    def close(self) -> None:
        db, self._database = self._database, None
        if db is not None and self._pid == os.getpid():
            db.release()

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._db.conn()
        changes = conn.total_changes
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        if conn.total_changes != changes:  # waking waiters for nothing would make them spin
            self._db.signal.notify()

    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priorities: Sequence[Priority] | Priority = 0,
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        maxlen: int | None = None,
    ) -> list[str]:
        n = len(payloads)
        if n == 0:
            return []
        prios = [priorities] * n if isinstance(priorities, (int, float)) else priorities
        qid = self._db.qid(queue)
        now = time.time()
        state, due = (_SCHEDULED, now + delay) if delay > 0 else (_READY, None)
        rows = [(qid, state, p, due, b) for p, b in zip(prios, payloads, strict=True)]
        # A push to the front takes seq = -(its own id): below every seq in the queue, and lower for
        # each later push. Its id is the next AUTOINCREMENT value, read in the same statement.
        columns = f"?1, ?2, ?3, {_NEXT_ID_NEGATED if front else 0}, ?4, ?5"
        insert = (
            f"INSERT INTO baozi_items (qid, state, priority, seq, due, payload) VALUES ({columns})"
        )
        if n == 1 and maxlen is None:
            params: tuple[Any, ...] = rows[0]
            if maxsize:  # the check and the insert in one statement, hence atomic
                insert = insert.replace(
                    f"VALUES ({columns})", f"SELECT {columns} WHERE {_READY_COUNT} < {int(maxsize)}"
                )
                params += (now,)
            try:
                cur = self._conn.execute(insert, params)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            if cur.rowcount == 0:
                raise Full(f"queue {queue!r} holds {maxsize} ready items, its maxsize")
            self._db.signal.notify()
            return [str(cur.lastrowid)]
        with self._write() as conn:
            if maxsize:
                (ready,) = conn.execute(f"SELECT {_READY_COUNT}", (qid, 0, 0, 0, 0, now)).fetchone()
                if ready + n > maxsize:
                    raise Full(f"queue {queue!r} holds {ready} of at most {maxsize} ready items")
            conn.executemany(insert, rows)
            (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
            if maxlen is not None:
                conn.execute(
                    f"DELETE FROM baozi_items WHERE id IN (SELECT id FROM baozi_items "
                    f"WHERE qid=? AND state=0 ORDER BY {_ORDER_DESC if front else _ORDER} "
                    f"LIMIT max(0, (SELECT count(*) FROM baozi_items WHERE qid=? AND state=0) - ?))",
                    (qid, qid, maxlen),
                )
        return [str(i) for i in range(last - n + 1, last + 1)]

    def _promote(self, qid: int, now: float) -> int:
        """Mark expired leases and due scheduled items ready; return how many there were."""
        self._db.promoted_at[qid] = now
        cur = self._conn.execute(
            "UPDATE baozi_items SET state=0 WHERE qid=? AND state>0 AND due<=?", (qid, now)
        )
        return int(cur.rowcount)

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        qid = self._db.qid(queue)
        now = time.time()
        try:
            # Promoting costs a statement, so a busy consumer does it every PROMOTE_EVERY seconds;
            # one that finds too little always does, before concluding the queue is empty.
            promoted = now - self._db.promoted_at.get(qid, 0.0) >= PROMOTE_EVERY
            if promoted:
                self._promote(qid, now)
            rows = self._conn.execute(_RESERVE, (now + lease, owner, qid, n)).fetchall()
            if len(rows) < n and not promoted and self._promote(qid, now):
                rows += self._conn.execute(_RESERVE, (now + lease, owner, qid, n - len(rows)))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        if not rows:
            return []
        self._db.signal.notify()
        if len(rows) > 1:
            rows.sort(key=lambda r: (r[2], r[4], r[0]))
        return [_item(r) for r in rows]

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        qid = self._db.qid(queue)
        with self._write() as conn:
            self._promote(qid, time.time())
            rows = conn.execute(
                f"DELETE FROM baozi_items WHERE id IN (SELECT id FROM baozi_items "
                f"WHERE qid=? AND state=0 ORDER BY {_ORDER_DESC if back else _ORDER} LIMIT ?) "
                f"RETURNING id, payload, priority, deliveries, seq",
                (qid, n),
            ).fetchall()
        rows.sort(key=lambda r: (r[2], r[4], r[0]), reverse=back)
        return [_item(r) for r in rows]

    def _settle(self, sql: str, params: tuple[Any, ...], ids: Sequence[str]) -> int:
        chunks = list(_chunks(ids))
        if len(chunks) == 1:  # one statement is atomic by itself
            marks = _marks(len(chunks[0]))
            try:
                done = int(
                    self._conn.execute(sql.format(marks=marks), (*params, *chunks[0])).rowcount
                )
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            if done:
                self._db.signal.notify()
            return done
        done = 0
        with self._write() as conn:
            for chunk in chunks:
                done += conn.execute(
                    sql.format(marks=_marks(len(chunk))), (*params, *chunk)
                ).rowcount
        return done

    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        return self._settle(
            "DELETE FROM baozi_items WHERE owner=? AND state IN (0, 1) AND id IN ({marks})",
            (owner,),
            ids,
        )

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        state, due = (_SCHEDULED, time.time() + delay) if delay > 0 else (_READY, None)
        return self._settle(
            "UPDATE baozi_items SET state=?, due=?, owner=NULL "
            "WHERE owner=? AND state=1 AND id IN ({marks})",
            (state, due, owner),
            ids,
        )

    def extend(self, queue: str, ids: Sequence[str], owner: str, lease: float) -> int:
        return self._settle(
            "UPDATE baozi_items SET state=1, due=? WHERE owner=? AND state IN (0, 1) "
            "AND id IN ({marks})",
            (time.time() + lease, owner),
            ids,
        )

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def rank(self, queue: str, item_id: str) -> int | None:
        try:
            num = int(item_id)
        except (TypeError, ValueError):
            return None
        qid = self._db.qid(queue)
        now = time.time()
        rows = self._read(
            "SELECT priority, seq, state, due FROM baozi_items WHERE id=? AND qid=?", (num, qid)
        )
        if not rows:
            return None
        prio, seq, state, due = rows[0]
        if state != _READY and due > now:
            return None
        # Items whose lease or delay has run out are ready too, though not yet marked so.
        ((ahead,),) = self._read(
            "SELECT (SELECT count(*) FROM baozi_items WHERE qid=?1 AND state=0 "
            "        AND (priority, seq, id) < (?2, ?3, ?4)) + "
            "       (SELECT count(*) FROM baozi_items WHERE qid=?1 AND state>0 "
            "        AND due<=?5 AND (priority, seq, id) < (?2, ?3, ?4))",
            (qid, prio, seq, num, now),
        )
        return int(ahead)

    def counts(self, queue: str) -> Counts:
        qid, now = self._db.qid(queue), time.time()
        ((ready,),) = self._read("SELECT count(*) FROM baozi_items WHERE qid=? AND state=0", (qid,))
        rows = self._read(
            "SELECT state, count(*), total(due<=?) FROM baozi_items WHERE qid=? AND state>0 "
            "GROUP BY state",
            (now, qid),
        )
        n = {state: (count, int(expired)) for state, count, expired in rows}
        leased, leased_out = n.get(_LEASED, (0, 0))
        scheduled, scheduled_due = n.get(_SCHEDULED, (0, 0))
        return Counts(
            ready + leased_out + scheduled_due, leased - leased_out, scheduled - scheduled_due
        )

    def next_due(self, queue: str) -> float | None:
        ((due,),) = self._read(
            "SELECT min(due) FROM baozi_items WHERE qid=? AND state>0", (self._db.qid(queue),)
        )
        return None if due is None else float(due)

    def peek(self, queue: str, index: int) -> Item:
        order, offset = (_ORDER, index) if index >= 0 else (_ORDER_DESC, -index - 1)
        rows = self._read(
            f"SELECT id, payload, priority, deliveries FROM baozi_items WHERE qid=? AND state=0 "
            f"ORDER BY {order} LIMIT 1 OFFSET ?",
            (self._db.qid(queue), offset),
        )
        if not rows:
            raise IndexError(f"queue {queue!r} has no item at index {index}")
        return _item(rows[0])

    def snapshot(self, queue: str) -> list[Item]:
        rows = self._read(
            f"SELECT id, payload, priority, deliveries FROM baozi_items WHERE qid=? AND state=0 "
            f"ORDER BY {_ORDER}",
            (self._db.qid(queue),),
        )
        return [_item(r) for r in rows]

    def clear(self, queue: str) -> int:
        qid = self._db.qid(queue)
        with self._write() as conn:
            return conn.execute("DELETE FROM baozi_items WHERE qid=?", (qid,)).rowcount

    def change_token(self) -> int:
        return self._db.signal.token()

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._db.signal.wait(token, timeout)
