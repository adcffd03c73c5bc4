"""One PostgreSQL store as this process sees it: URL, connections, retries and the change signal."""

from __future__ import annotations

import collections
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..._outage import shown_url
from ...errors import StoreError, StoreUnavailable
from .._registry import Registry
from .._signal import ChangeSignal
from ._layout import channel, check_schema, create, lock_key

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL store needs psycopg 3: pip install 'baozi[postgres]'"
    ) from exc

T = TypeVar("T")
log = logging.getLogger("baozi.store")

_IDLE_KEPT = 3
"""Idle connections kept per process, over all its stores: the least recently used goes first,
so a process that leaves store handles open holds no more than this (and its listeners)."""
_IDLE: collections.deque[tuple[Database, psycopg.Connection[Any]]] = collections.deque()
_IDLE_LOCK = threading.Lock()
_IN_USE = 5
"""Connections a process uses at once, over all its stores (more callers wait their turn), so
that many worker processes stay well inside the server's ``max_connections``."""
_TURNS = threading.BoundedSemaphore(_IN_USE)


def _forked() -> None:
    """A forked child starts with no idle connections: those it inherited are its parent's."""
    global _IDLE_LOCK, _TURNS
    _IDLE_LOCK = threading.Lock()
    _TURNS = threading.BoundedSemaphore(_IN_USE)
    _IDLE.clear()


os.register_at_fork(after_in_child=_forked)
_WAITING_TTL = 15.0  # a waiting process's registration lasts this long unless renewed


def parse_url(url: str) -> tuple[str, str, float, float]:
    """``postgresql://...?schema=&retry=&poll=`` -> (libpq URL, schema, retry s, poll s or 0)."""
    parts = urlsplit(url)
    schema, retry, poll = "baozi", 2.0, 0.0
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = check_schema(value, shown_url(url))
        elif key in ("retry", "poll"):
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(
                    f"invalid {key}={value!r} in {shown_url(url)!r}: give seconds, such as "
                    f"?{key}={'2' if key == 'retry' else '0.5'}"
                )
            retry, poll = (seconds, poll) if key == "retry" else (retry, seconds)
        else:
            rest.append((key, value))
    scheme = "postgresql"
    conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return conninfo, schema, retry, poll


def _lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the server could not be reached (or went away), not a refusal."""
    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled
    )


class _Listen:
    """The watch of the change signal: LISTEN on the store's channel on a connection of its own,
    with this process registered in ``waiting`` while anyone in it waits."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.count = 0  # notifications received (and reconnections), the signal's probe
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._renewed = 0.0  # monotonic time of the last registration

    def ensure(self) -> bool:
        """Listen and be registered, so that every write from now on notifies this process.
        True when it is; False when the server could not be reached, and then the signal's
        watch keeps trying, and wakes every waiter once it has (they look again)."""
        if time.monotonic() - self._renewed < _WAITING_TTL / 3 and self._conn is not None:
            return True
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._connect()
                self._register()
            except (psycopg.Error, StoreError) as exc:
                log.debug("PostgreSQL store %s: cannot listen for changes: %s", self.db.where, exc)
                self._renewed = 0.0
                return False
        return True

    def _connect(self) -> None:
        conn = self.db.connect()
        conn.execute(f'LISTEN "{channel(self.db.schema)}"')
        self._conn = conn

    def _register(self) -> None:
        db = self.db
        s = db.s

        def register(conn: psycopg.Connection[Any]) -> None:
            renewed = conn.execute(
                f"UPDATE {s}.waiting SET expires = {s}.now() + %s "
                f"WHERE listener = %s AND expires > {s}.now() + 2",
                (_WAITING_TTL, self.name),
            ).rowcount
            if renewed:
                return
            with conn.transaction():  # first registration: wait out writes in flight
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(db.schema),))
                conn.execute(f"DELETE FROM {s}.waiting WHERE expires < {s}.now() - 60")
                conn.execute(
                    f"INSERT INTO {s}.waiting VALUES (%s, {s}.now() + %s) "
                    "ON CONFLICT (listener) DO UPDATE SET expires = excluded.expires",
                    (self.name, _WAITING_TTL),
                )

        db.run("register a waiter", register)
        self._renewed = time.monotonic()

    def wait(self, timeout: float) -> bool:
        conn = self._conn
        if conn is None or conn.closed or time.monotonic() - self._renewed >= _WAITING_TTL / 3:
            was = self._renewed
            if not self.ensure():
                time.sleep(min(timeout, 0.2))
                return False
            if was == 0.0 or conn is None or conn.closed:
                self.count += 1  # changes made while no one listened: look again
                return True
            conn = self._conn
        assert conn is not None
        try:
            got = sum(1 for _ in conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error:
            with self._lock:
                old, self._conn = self._conn, None
                self._renewed = 0.0
            if old is not None:
                old.close()
            return False
        self.count += got
        return got > 0

    def idle(self) -> None:
        """Nobody in this process has waited for a while: stop listening, and unregister, so
        that writes stop notifying; the next waiter starts over (:meth:`ensure`)."""
        self.close()

    def close(self) -> None:
        # Under the lock, so that an ensure() that registers again cannot come in between.
        with self._lock:
            conn, self._conn = self._conn, None
            self._renewed = 0.0
            if conn is not None:
                try:
                    conn.execute(
                        f"DELETE FROM {self.db.s}.waiting WHERE listener = %s", (self.name,)
                    )
                except psycopg.Error:
                    pass
                conn.close()


class Database:
    """What one process shares for one store (URL and schema): its idle connections, queue ids
    and the change signal. Handles share it through a reference count."""

    @classmethod
    def acquire(cls, conninfo: str, schema: str, retry: float, poll: float) -> Database:
        return _DATABASES.acquire((conninfo, schema, retry, poll))

    def release(self) -> None:
        _DATABASES.release((self.conninfo, self.schema, self.retry, self.poll))

    def __init__(self, conninfo: str, schema: str, retry: float, poll: float) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.s = f'"{schema}"'
        self.retry = retry
        self.poll = poll
        self.where = shown_url(conninfo)
        self._idle: list[psycopg.Connection[Any]] = []  # guarded by _IDLE_LOCK
        self.qids: dict[str, int] = {}
        self.promoted_at: dict[int, float] = {}
        self.run("open the store", lambda conn: create(conn, schema, self.where))
        self.listen: _Listen | None = None
        if poll > 0:  # no LISTEN (a pooler in transaction mode drops it): everyone looks again
            self.signal = ChangeSignal(lambda: int(time.monotonic() / poll), None, poll, poll)
        else:
            self.listen = _Listen(self)
            self.signal = ChangeSignal(lambda: self.listen.count if self.listen else 0, self.listen)

    def _close(self) -> None:
        self.signal.close(self._close_connections)

    def _close_connections(self) -> None:
        with _IDLE_LOCK:
            idle, self._idle = self._idle, []
            for conn in idle:
                _IDLE.remove((self, conn))
        for conn in idle:
            conn.close()

    def connect(self) -> psycopg.Connection[Any]:
        try:
            # Behind a pooler in transaction mode (?poll=) a prepared statement may be gone on
            # the next transaction's server connection: none are made then.
            return psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=5,
                prepare_threshold=None if self.poll > 0 else 5,
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {self.where}: {exc}".strip()
            ) from exc

    def _take(self) -> psycopg.Connection[Any]:
        with _IDLE_LOCK:
            if self._idle:
                conn = self._idle.pop()
                _IDLE.remove((self, conn))
                return conn
        return self.connect()

    def _give(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken or conn.info.transaction_status != 0:  # 0: idle
            conn.close()
            return
        with _IDLE_LOCK:
            self._idle.append(conn)
            _IDLE.append((self, conn))
            gone = []
            while len(_IDLE) > _IDLE_KEPT:  # the least recently used goes
                db, old = _IDLE.popleft()
                db._idle.remove(old)
                gone.append(old)
        for old in gone:
            old.close()

    def run(self, what: str, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``fn`` on a connection of the store's; retried on a fresh connection while the server
        is out of reach, for at most the URL's ``retry`` seconds, then StoreUnavailable. An error
        the server answers with raises StoreError at once."""
        deadline = time.monotonic() + self.retry
        pause = 0.0
        while True:
            conn = None
            turns = _TURNS
            turns.acquire()
            try:
                conn = self._take()
                result = fn(conn)
            except StoreUnavailable as exc:
                if conn is not None:
                    self._give(conn)
                cause: BaseException = exc
            except psycopg.Error as exc:
                if conn is not None:
                    self._give(conn)
                if not _lost(exc):
                    raise StoreError(f"PostgreSQL store {self.where}: {what}: {exc}") from exc
                cause = exc
            except BaseException:
                if conn is not None:
                    self._give(conn)
                raise
            else:
                self._give(conn)
                return result
            finally:
                turns.release()
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreUnavailable(
                    f"PostgreSQL at {self.where} is unreachable ({what}): {cause}; retried for "
                    f"{self.retry:g}s (the window is the URL's ?retry=SECONDS). Check that the "
                    "server is running and reachable."
                ) from cause
            time.sleep(min(pause, left))
            pause = min(max(pause * 2, 0.05), 0.5)

    def qid(self, name: str) -> int:
        """The queue's id, for a write: the queue is made (or listed again) if need be."""
        qid = self.qids.get(name)
        if qid is None:
            row = self.run(
                "name a queue",
                lambda c: c.execute(
                    f"INSERT INTO {self.s}.queues (name) VALUES (%s) ON CONFLICT (name) "
                    "DO UPDATE SET listed = true RETURNING id",
                    (name,),
                ).fetchone(),
            )
            assert row is not None
            qid = self.qids[name] = int(row[0])
        return qid

    def find_qid(self, name: str) -> int | None:
        """The queue's id, for a read: None when there is no such queue (nothing is made)."""
        qid = self.qids.get(name)
        if qid is None:
            row = self.run(
                "find a queue",
                lambda c: c.execute(
                    f"SELECT id FROM {self.s}.queues WHERE name = %s", (name,)
                ).fetchone(),
            )
            if row is None:
                return None
            qid = self.qids[name] = int(row[0])
        return qid


_DATABASES: Registry[tuple[str, str, float, float], Database] = Registry(
    lambda key: Database(*key), Database._close
)
