"""The queue operations of the PostgreSQL store: one statement per push, reserve and ack.

Reservations take the head of the queue with ``FOR UPDATE SKIP LOCKED``, so concurrent
consumers never wait on each other's rows. Times are the server's (``{s}.now()``), as leases on
Redis are. Every write calls ``{s}.signal()`` in the same statement (see ``_layout``).
"""

from __future__ import annotations

import contextlib
import decimal
import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar

import psycopg

from ..._outage import shown_url
from ..._process import current_pid
from ...errors import Full, StoreError
from .._order import decode, encode
from .._rows import Row, RowStore, in_order, item_number, options_of
from .._splice import out_of_range, rotate_steps, splice_args
from ..base import Counts, Deduplicated, Item, NewJob, Priority
from ._db import Database, parse_url
from ._deque import ORDER, ORDER_DESC
from ._deque import rotate as rotate_items
from ._deque import splice as splice_items
from ._layout import channel
from ._statements import CLAIM, DROP_MARKS, INSERT, INSERT_ONE, PROMOTE, RANK, READY, RESERVE
from ._tx import check_same_database, driver_connection
from ._workflow import enqueue_jobs

log = logging.getLogger("baozi.store")

PROMOTE_EVERY = 0.05
"""How often (s) a busy consumer moves expired leases and due delays back to ready."""


# A str, bytes or tuple priority is kept in the same numeric column as numbers, so that the
# queue order, its index and the ready counts keyed by priority serve it unchanged: its encoded
# bytes (see baozi.backends._order) b_1..b_L become 1.b_1..b_L in base 256, times 10**309,
# exactly (256**-L has 8L decimal digits). Encodings are prefix-free, so these values order as
# the bytes do, and all lie above every 64-bit int and finite float (below 1.8 * 10**308). The
# digits of the bytes follow the leading 1 at once, so a numeric of about 4 bytes per byte.
_ENCODED = Decimal(10) ** 309
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def prio_params(priority: Priority) -> tuple[Decimal | int, bool]:
    """A priority as the store keeps it: exact (a float as its exact binary value) and whether
    it was a float."""
    if isinstance(priority, float):
        return Decimal(priority), True
    if isinstance(priority, int):
        return int(priority), False
    data = encode(priority)
    digits = 8 * len(data)  # 256**-len is 5**digits / 10**digits
    fraction = Decimal(int.from_bytes(data, "big") * 5**digits).scaleb(-digits, _EXACT)
    return _EXACT.add(fraction, 1).scaleb(309, _EXACT), False


def priority_of(value: Decimal, was_float: bool) -> Priority:
    if was_float:
        return float(value)
    if value.is_finite() and value >= _ENCODED:
        frac = Fraction(_EXACT.subtract(value.scaleb(-309, _EXACT), 1))  # n / 256**k
        bits = frac.denominator.bit_length() - 1
        size = (bits + 7) // 8
        return decode((frac.numerator << (8 * size - bits)).to_bytes(size, "big"), trimmed=True)
    return int(value)


def _bounded(options: dict[str, Any]) -> bool:
    maxsize = options.get("maxsize")
    return isinstance(maxsize, int) and not isinstance(maxsize, bool) and maxsize > 0


def _insert_params(qid: int, rows: Sequence[Row], front: bool, delay: float) -> dict[str, Any]:
    prios = [prio_params(p) for p, _, _ in rows]
    return {
        "qid": qid,
        "state": 2 if delay > 0 else 0,
        "front": front,
        "delay": float(delay),
        "payloads": [bytes(b) for _, b, _ in rows],
        "prios": [Decimal(p) for p, _ in prios],
        "floats": [f for _, f in prios],
        "tasks": [t for _, _, t in rows],
    }


def _item(row: Any) -> Item:
    """An item from (id, payload, priority, pfloat, deliveries, task, failures)."""
    return Item(str(row[0]), row[1], priority_of(row[2], row[3]), row[4], row[5], row[6])


def _plain(jobs: Sequence[NewJob]) -> bool:
    """Whether no job has a unique key or dependencies (one insert files them)."""
    return all(j.unique_key is None and not j.depends_on for j in jobs)


def _nums(ids: Sequence[str]) -> list[int]:
    return [n for n in map(item_number, ids) if n is not None]


class PostgresQueues(RowStore):
    """The queue part of the PostgreSQL store; :class:`PostgresStore` adds jobs."""

    scheme: ClassVar[str] = "postgresql"
    shared_across_processes: ClassVar[bool] = True
    durable: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.conninfo, self.schema, self.retry, self.poll = parse_url(url)
        self._pid = current_pid()
        self._database: Database | None = Database.acquire(
            self.conninfo, self.schema, self.retry, self.poll
        )
        self._sql: dict[str, str] = {}

    @classmethod
    def missing(cls, url: str) -> str | None:
        conninfo, schema, _, _ = parse_url(url)
        try:
            with psycopg.connect(conninfo, connect_timeout=5) as conn:
                row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".meta',)).fetchone()
        except psycopg.Error:
            return None  # opening it says what is wrong
        if row is None or row[0] is None:
            return f"there is no baozi store in schema {schema!r} of {shown_url(conninfo)}"
        return None

    @property
    def location(self) -> str:
        return f"PostgreSQL {shown_url(self.conninfo)} schema {self.schema}"

    @property
    def _db(self) -> Database:
        db = self._database
        if db is None or self._pid != current_pid():
            if db is not None and self._pid == current_pid():
                raise RuntimeError("this store handle is closed")
            self._pid = current_pid()
            db = self._database = Database.acquire(
                self.conninfo, self.schema, self.retry, self.poll
            )
            self._sql = {}
        return db

    def close(self) -> None:
        db, self._database = self._database, None
        if db is not None and self._pid == current_pid():
            db.release()

    def _notify(self) -> None:
        """Wake this process's waiters after a write. A handle closed meanwhile (by another
        thread) has no waiters to wake, and is not opened again for it."""
        db = self._database
        if db is not None:
            db.signal.notify()

    def sql(self, template: str) -> str:
        """``template`` with this store's schema filled in (cached)."""
        text = self._sql.get(template)
        if text is None:
            s = self._db.s
            text = self._sql[template] = template.replace("{signal}", "{s}.signal()").replace(
                "{s}", s
            )
        return text

    # -- running statements -----------------------------------------------------------------

    def _rows(self, what: str, template: str, params: Any = None) -> list[Any]:
        sql = self.sql(template)
        return self._db.run(what, lambda c: c.execute(sql, params).fetchall())

    def _one(self, what: str, template: str, params: Any = None) -> Any:
        rows = self._rows(what, template, params)
        return rows[0] if rows else None

    def _count(self, what: str, template: str, params: Any = None) -> int:
        sql = self.sql(template)
        done = self._db.run(what, lambda c: c.execute(sql, params).rowcount)
        if done:
            self._notify()
        return int(done)

    def _in_transaction(self, what: str, fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """``fn`` in one transaction, retried as a whole while the server is out of reach."""

        def run(conn: psycopg.Connection[Any]) -> Any:
            with conn.transaction():
                return fn(conn)

        result = self._db.run(what, run)
        self._notify()
        return result

    def _qid(self, queue: str) -> int:
        db = self._db
        return db.qids.get(queue) or db.qid(queue)

    def _rqid(self, queue: str) -> int:
        """The queue's id for a read; 0, which no queue has, when there is no such queue."""
        return self._db.find_qid(queue) or 0

    # -- adding -----------------------------------------------------------------------------

    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
    ) -> list[str]:
        if not rows:
            return []
        qid = self._qid(queue)
        params = _insert_params(qid, rows, front, delay)
        insert = self.sql(INSERT.replace("{signal}", "NULL"))
        if not maxsize and maxlen is None:
            row = self._one("add items", INSERT, params)
            self._notify()
            return [str(i) for i in row[0]]

        def bounded(conn: psycopg.Connection[Any]) -> list[Any]:
            self._make_room(conn, queue, params, maxsize)
            ids = conn.execute(insert, params).fetchone()
            if maxlen is not None:
                conn.execute(
                    self.sql(
                        "DELETE FROM {s}.items WHERE id IN (SELECT id FROM {s}.items "
                        f"WHERE qid = %s AND state = 0 ORDER BY {ORDER if front else ORDER_DESC} "
                        "OFFSET %s)"
                    ),
                    (qid, maxlen),
                )
            conn.execute(self.sql("SELECT {s}.signal()"))
            return list(ids[0]) if ids else []

        return [str(i) for i in self._in_transaction("add items", bounded)]

    def _make_room(
        self, conn: psycopg.Connection[Any], queue: str, params: dict[str, Any], maxsize: int
    ) -> None:
        """Take the queue's write lock (to the end of the transaction) and, with ``maxsize``,
        raise Full unless the new items fit."""
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x62616F, params["qid"]))
        if maxsize:
            (ready,) = conn.execute(f"SELECT {self.sql(READY)}", params).fetchone() or (0,)
            if ready + len(params["payloads"]) > maxsize:
                raise Full(f"queue {queue!r} holds {ready} of at most {maxsize} ready items")

    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        pending: float | None = None,
    ) -> list[str]:
        if _plain(jobs) and (pending is None or not jobs):
            return self._enqueue_rows(queue, jobs, front, delay, maxsize)
        rows = [(j.priority, j.payload, j.task) for j in jobs]
        params = _insert_params(self._qid(queue), rows, front, delay)

        def add(conn: psycopg.Connection[Any]) -> list[str]:
            ids = enqueue_jobs(
                conn,
                self.sql,
                params,
                jobs,
                queue=queue,
                maxsize=maxsize,
                lock_queue=True,
                where=self.location,
            )
            if pending is not None:  # the jobs it filed, marked in the same transaction
                made = [int(i) for i in ids if not isinstance(i, Deduplicated)]
                conn.execute(
                    self.sql(
                        "INSERT INTO {s}.marks (item, qid, at) SELECT x, %s, %s "
                        "FROM unnest(%s::bigint[]) AS x "
                        "ON CONFLICT (item) DO UPDATE SET at = excluded.at"
                    ),
                    (params["qid"], float(pending), made),
                )
            conn.execute(self.sql("SELECT {s}.signal()"))
            return ids

        return list(self._in_transaction("enqueue", add))

    def check_connection(self, connection: object) -> None:
        conn = driver_connection(connection, self.location)
        check_same_database(conn, self.conninfo, self.location)

    def enqueue_in(
        self,
        connection: object,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
    ) -> list[str]:
        conn = driver_connection(connection, self.location)
        check_same_database(conn, self.conninfo, self.location)
        if not jobs:
            return []
        rows = [(j.priority, j.payload, j.task) for j in jobs]
        params = _insert_params(self._qid(queue), rows, front, delay)
        # The caller's transaction may stay open a long time: nothing here takes a lock that
        # outlives the statement (no signal() and its shared lock, no queue lock) -- but for
        # jobs with unique keys or dependencies, whose keys and live parents stay locked until
        # it ends -- and the NOTIFY is unconditional: sent at the caller's commit to whoever
        # listens then.
        notify = f"pg_notify('{channel(self.schema)}', '')"
        insert = self.sql(INSERT.replace("{signal}", notify))
        try:
            # Outside autocommit the statements join the caller's transaction (psycopg begins
            # one if none is open), which alone decides: nothing here commits or rolls back.
            with conn.transaction() if conn.autocommit else contextlib.nullcontext():
                if not _plain(jobs):
                    ids = enqueue_jobs(
                        conn,
                        self.sql,
                        params,
                        jobs,
                        queue=queue,
                        maxsize=maxsize,
                        lock_queue=False,
                        where=self.location,
                    )
                    conn.execute(f"SELECT {notify}")
                    return ids
                if maxsize:  # room as committed now; other open transactions' jobs not counted
                    (ready,) = conn.execute(f"SELECT {self.sql(READY)}", params).fetchone() or (0,)
                    if ready + len(rows) > maxsize:
                        raise Full(
                            f"queue {queue!r} holds {ready} of at most {maxsize} ready items"
                        )
                row = conn.execute(insert, params).fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self.location}: enqueue: {exc}") from exc
        assert row is not None
        return [str(i) for i in row[0]]

    def enqueue_one(self, queue: str, task: str, payload: bytes, priority: Priority = 0) -> str:
        qid = self._qid(queue)
        prio, was_float = prio_params(priority)
        row = self._one(
            "enqueue a job", INSERT_ONE, (qid, prio, was_float, payload, task, qid, task)
        )
        self._notify()
        return str(row[0])

    # -- taking -----------------------------------------------------------------------------

    def _promote(self, qid: int) -> int:
        """Mark expired leases and due scheduled items ready; return how many there were."""
        self._db.promoted_at[qid] = time.monotonic()
        return self._count("promote due items", PROMOTE, (qid,))

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        db = self._db
        qid = db.qids.get(queue) or db.find_qid(queue)
        if qid is None:
            return []
        promoted = time.monotonic() - db.promoted_at.get(qid, 0.0) >= PROMOTE_EVERY
        if promoted:
            self._promote(qid)
        params = {"qid": qid, "n": n, "lease": float(lease), "owner": owner}
        rows = self._rows("reserve", RESERVE, params)
        if len(rows) < n and not promoted and self._promote(qid):
            rows += self._rows("reserve", RESERVE, {**params, "n": n - len(rows)})
        if not rows:
            return []
        db.signal.notify()
        return self.items_of(rows)

    def claim(
        self,
        queue: str,
        owner: str,
        lease: float,
        ids: Sequence[str],
        takeover: Collection[str] = (),
    ) -> list[Item]:
        nums = list(dict.fromkeys(_nums(ids)))
        db = self._db
        qid = db.find_qid(queue) if nums else None
        if qid is None:
            return []
        params = {
            "qid": qid,
            "ids": nums,
            "takeover": _nums(list(takeover)),
            "lease": float(lease),
            "owner": owner,
        }
        rows = self._rows("claim", CLAIM, params)
        if not rows:
            return []
        db.signal.notify()
        return in_order(self.items_of(rows), ids)

    def items_of(self, rows: list[Any]) -> list[Item]:
        """Items from rows of :data:`RESERVE` (or :data:`CLAIM`), in queue order. A row whose
        priority is no number baozi writes (NaN, or written as a float) is moved aside (see
        ``_quarantine``)."""
        keyed = []
        for r in rows:
            try:
                keyed.append(((r[2], r[7], r[0]), _item(r)))
            except (ValueError, ArithmeticError) as exc:
                self._quarantine("items", "id", r[0], f"priority {r[2]!r}: {exc}")
        if len(keyed) > 1:
            keyed.sort(key=lambda k: k[0])
        return [item for _, item in keyed]

    def _quarantine(self, table: str, key: str, value: Any, reason: str) -> None:
        """Move a row that cannot be read to ``junk``, as it was, with the reason; log it once."""
        self._rows(
            "quarantine a row",
            f"WITH m AS (DELETE FROM {{s}}.{table} t WHERE {key} = %s RETURNING t) "
            "INSERT INTO {s}.junk SELECT {s}.now(), %s, %s, m.t::text FROM m RETURNING 1",
            (value, table, reason),
        )
        log.error(
            "PostgreSQL store %s: moved a %s row that cannot be read (%s) to %s.junk",
            self._db.where,
            table,
            reason,
            self._db.s,
        )

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        qid = self._db.find_qid(queue)
        if qid is None:
            return []
        self._promote(qid)
        rows = self._rows(
            "pop",
            "WITH d AS (DELETE FROM {s}.items WHERE id IN (SELECT id FROM {s}.items "
            f"WHERE qid = %s AND state = 0 ORDER BY {ORDER_DESC if back else ORDER} LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "RETURNING id, payload, priority, pfloat, deliveries, task, failures, seq), "
            f"{DROP_MARKS} SELECT d.* FROM d, (SELECT {{signal}}) AS s",
            (qid, n),
        )
        rows.sort(key=lambda r: (r[2], r[7], r[0]), reverse=back)
        return [_item(r)._replace(task=None, failures=0) for r in rows]

    def rotate(self, queue: str, n: int) -> None:
        """See :meth:`QueueStore.rotate <baozi.backends.contract.queues.QueueStore.rotate>`."""
        steps, qid = rotate_steps(n), self._db.find_qid(queue)
        if steps and qid is not None:
            self._in_transaction("rotate", lambda c: rotate_items(c, self.sql, qid, steps))

    def splice(
        self,
        queue: str,
        index: int,
        delete: int,
        payloads: Sequence[bytes] = (),
        *,
        clamp: bool = False,
        expect: Sequence[str] | None = None,
        maxlen: int | None = None,
    ) -> list[Item] | None:
        """See :meth:`QueueStore.splice <baozi.backends.contract.queues.QueueStore.splice>`."""
        a = splice_args(index, delete, payloads, clamp, expect, maxlen)
        # Only a splice that inserts, and is not refused, makes a queue that is not there (qid 0
        # reads as empty): on a missing queue the refusals are decided here, as on an empty one.
        qid = self._rqid(queue)
        if not qid:
            if a.expect:
                return None
            if not a.clamp and (a.index != 0 or a.delete):
                raise out_of_range(queue, a.index, a.delete, 0)
            if a.maxlen is not None and len(a.payloads) > a.maxlen:
                raise Full(
                    f"queue {queue!r} holds 0 ready items: adding {len(a.payloads)} would pass "
                    f"its maxlen of {a.maxlen}; nothing was changed"
                )
            if not a.payloads:
                return []
            qid = self._qid(queue)
        removed: list[Item] | None = self._in_transaction(
            "splice", lambda c: splice_items(c, self.sql, qid, queue, a, _item)
        )
        return removed

    # -- settling ---------------------------------------------------------------------------

    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        nums = _nums(ids)
        if not nums:
            return 0
        return self._count(
            "ack",
            "WITH d AS (DELETE FROM {s}.items WHERE id = ANY(%s) AND owner = %s "
            f"AND state IN (0, 1) RETURNING id), {DROP_MARKS} "
            "SELECT 1 FROM d, (SELECT {signal}) AS s",
            (nums, owner),
        )

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        nums = _nums(ids)
        if not nums:
            return 0
        state = 2 if delay > 0 else 0
        return self._count(
            "release",
            "WITH u AS (UPDATE {s}.items SET state = %s, "
            "due = CASE WHEN %s > 0 THEN {s}.now() + %s END, owner = NULL "
            "WHERE id = ANY(%s) AND owner = %s AND state = 1 RETURNING 1) "
            "SELECT 1 FROM u, (SELECT {signal}) AS s",
            (state, float(delay), float(delay), nums, owner),
        )

    def extend(self, queue: str, ids: Sequence[str], owner: str, lease: float) -> int:
        nums = _nums(ids)
        if not nums:
            return 0
        sql = self.sql(
            "UPDATE {s}.items SET state = 1, due = {s}.now() + %s "
            "WHERE id = ANY(%s) AND owner = %s AND state IN (0, 1)"
        )
        return int(
            self._db.run("extend leases", lambda c: c.execute(sql, (lease, nums, owner)).rowcount)
        )

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        nums = _nums(ids)
        if not nums:
            return 0
        return self._count(
            "discard",
            "WITH d AS (DELETE FROM {s}.items WHERE qid = %s AND id = ANY(%s) "
            "AND (state <> 1 OR due <= {s}.now()) RETURNING id), "
            f"x AS (DELETE FROM {{s}}.deps WHERE child IN (SELECT id FROM d)), {DROP_MARKS} "
            "SELECT 1 FROM d, (SELECT {signal}) AS s",
            (self._rqid(queue), nums),
        )

    def clear(self, queue: str) -> int:
        qid = self._db.find_qid(queue)
        if qid is None:
            return 0
        return self._count(
            "clear",
            "WITH d AS (DELETE FROM {s}.items WHERE qid = %(qid)s RETURNING id), "
            "f AS (DELETE FROM {s}.done WHERE qid = %(qid)s RETURNING id), "
            "x AS (SELECT id FROM d UNION ALL SELECT id FROM f), "
            "g AS (DELETE FROM {s}.deps WHERE child IN (SELECT id FROM x)), "
            "k AS (DELETE FROM {s}.marks WHERE qid = %(qid)s) "
            "SELECT 1 FROM x, (SELECT {signal}) AS s",
            {"qid": qid},
        )

    # -- reading ----------------------------------------------------------------------------

    def rank(self, queue: str, item_id: str) -> int | None:
        num = item_number(item_id)
        if num is None:
            return None
        row = self._one("rank", RANK, {"id": num, "qid": self._rqid(queue)})
        if row is None:
            return None
        state, due_now, ahead = row
        if state < 0 or (state != 0 and not due_now):
            return None
        return int(ahead)

    def counts(self, queue: str) -> Counts:
        row = self._one(
            "count",
            "SELECT (SELECT coalesce(sum(n), 0) FROM {s}.ready WHERE qid = %(qid)s), "
            "count(*) FILTER (WHERE due <= {s}.now()), "
            "count(*) FILTER (WHERE state = 1 AND due > {s}.now()), "
            "count(*) FILTER (WHERE state = 2 AND due > {s}.now()), "
            "(SELECT count(*) FROM {s}.items WHERE qid = %(qid)s AND state < 0) "
            "FROM {s}.items WHERE qid = %(qid)s AND state > 0",
            {"qid": self._rqid(queue)},
        )
        ready, due, leased, scheduled, waiting = row
        return Counts(int(ready) + due, leased, scheduled, waiting)

    def next_due(self, queue: str) -> float | None:
        row = self._one(
            "next due",
            "SELECT min(due) FROM {s}.items WHERE qid = %s AND state > 0",
            (self._rqid(queue),),
        )
        return None if row is None or row[0] is None else float(row[0])

    def peek(self, queue: str, index: int) -> Item:
        order, offset = (ORDER, index) if index >= 0 else (ORDER_DESC, -index - 1)
        row = self._one(
            "peek",
            "SELECT id, payload, priority, pfloat, deliveries FROM {s}.items "
            f"WHERE qid = %s AND state = 0 ORDER BY {order} LIMIT 1 OFFSET %s",
            (self._rqid(queue), offset),
        )
        if row is None:
            raise IndexError(f"queue {queue!r} has no item at index {index}")
        return Item(str(row[0]), row[1], priority_of(row[2], row[3]), row[4])

    def snapshot(self, queue: str) -> list[Item]:
        rows = self._rows(
            "snapshot",
            "SELECT id, payload, priority, pfloat, deliveries FROM {s}.items "
            f"WHERE qid = %s AND state = 0 ORDER BY {ORDER}",
            (self._rqid(queue),),
        )
        return [Item(str(r[0]), r[1], priority_of(r[2], r[3]), r[4]) for r in rows]

    # -- options and signals ----------------------------------------------------------------

    def queue_options(self, queue: str) -> dict[str, Any]:
        row = self._one(
            "read queue options",
            "SELECT options FROM {s}.queues WHERE id = %s",
            (self._rqid(queue),),
        )
        if row is None:
            return {}
        return options_of(row[0])[0]

    def set_queue_options(self, queue: str, **options: Any) -> None:
        qid = self._qid(queue)

        def merge(conn: psycopg.Connection[Any]) -> None:
            row = conn.execute(
                self.sql("SELECT options FROM {s}.queues WHERE id = %s FOR UPDATE"), (qid,)
            ).fetchone()
            held = options_of(row[0] if row else None)[0]
            merged = {**held, **options}
            conn.execute(
                self.sql(
                    "UPDATE {s}.queues SET options = %s, paused = %s, bounded = %s WHERE id = %s"
                ),
                (json.dumps(merged), bool(merged.get("paused")), _bounded(merged), qid),
            )
            conn.execute(self.sql("SELECT {s}.signal()"))

        self._in_transaction("set queue options", merge)

    def change_token(self) -> int:
        db = self._db
        if db.listen is not None:
            db.listen.ensure()
        return db.signal.token()

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        db = self._db
        if db.listen is not None:
            db.listen.ensure()
        return db.signal.listen(callback)

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._db.signal.wait(token, timeout)
