"""The queue operations of the SQLite store: one statement per put, get and acknowledgement."""

from __future__ import annotations

import functools
import json
import operator
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from ..._process import current_pid
from ...errors import Full, StoreError
from .._order import kept, read
from .._rows import Row, RowStore, in_order, item_number, options_of
from .._splice import nearer_end, rotation, splice_args
from ..base import Counts, Deduplicated, Item, NewJob, Priority
from ._db import Database, parse_url
from ._deque import (
    NEXT_ID_NEGATED,
    ORDER,
    ORDER_DESC,
    delete_rows,
    insert_payloads,
    ready_count,
    ready_ids,
    ready_rows,
    to_end,
)
from ._junk import (
    RUNNABLE,
    SOUND_ROW,
    SWEEP_EVERY,
    bad_text,
    logged,
    move_rows,
    text,
    unsound_items,
)
from ._workflow import EnqueueTerms, check, drop_links, file_jobs

READY, LEASED, SCHEDULED, WAITING, FINISHED = 0, 1, 2, 3, -1
TIMED = "state>0 AND state<3"
"""Leased or scheduled: the rows whose due time makes them ready (waiting rows share their index,
``state > 0``, and keep the time their delay ends, but nothing makes them ready but a release)."""


def ready_ahead(qid: str, prio: str, seq: str, num: str) -> str:
    """SQL for the number of rows marked ready (state 0) in queue ``qid`` whose line key
    (priority, seq, id) is below (``prio``, ``seq``, ``num``) -- SQL expressions all: the sum of
    the line's stretches (baozi_line) wholly ahead, and a count of the rows ahead in the row's
    own stretch (at most 255). A count of the rows themselves would read every one of them."""
    return (
        f"((SELECT coalesce(sum(n), 0) FROM baozi_line WHERE qid = {qid} "
        f"  AND (priority, seq, blk) < ({prio}, {seq}, {num} >> 8)) + "
        f"(SELECT count(*) FROM baozi_items WHERE qid = {qid} AND state = 0 "
        f"  AND priority = {prio} AND seq = {seq} AND id >= (({num} >> 8) << 8) "
        f"  AND id < {num}))"
    )


def rows_ahead(qid: str, prio: str, seq: str, num: str, now: str) -> str:
    """SQL for a rank: the ready rows of queue ``qid`` ahead of the key (``prio``, ``seq``,
    ``num``) -- those marked ready (:func:`ready_ahead`) and those whose lease or delay ran out
    by ``now``, ready though not yet marked so. SQL expressions all."""
    return (
        f"({ready_ahead(qid, prio, seq, num)} + "
        f"(SELECT count(*) FROM baozi_items WHERE qid = {qid} AND {TIMED} AND due <= {now} "
        f"  AND (priority, seq, id) < ({prio}, {seq}, {num})))"
    )


_CHUNK = 5000  # ids per statement, well below SQLite's variable limit (32,766)
PROMOTE_EVERY = 0.05
"""How often (s) a busy consumer moves expired leases and due delays back to ready."""
READY_COUNT = (  # ready items, counting expired leases and due delays; format in the parameters
    "((SELECT count(*) FROM baozi_items WHERE qid={qid} AND state=0) + "
    f"(SELECT count(*) FROM baozi_items WHERE qid={{qid}} AND {TIMED} AND due<={{now}}))"
)
ROOM_TAKEN = READY_COUNT  # what counts toward a maxsize: ready items (not waiting, scheduled)


def _leasing(which: str, tail: str = "") -> str:
    """SQL that leases the rows of queue ?4 that the condition ``which`` picks (``tail``: an
    ORDER BY and LIMIT of them) to owner ?2 until ?1, ?3 being now -- none while the queue is
    paused -- and returns them. A row that cannot be read (see _junk) is passed over here, and
    moved aside by a sweep."""
    return (
        "UPDATE baozi_items SET state=1, due=?1, owner=?2, deliveries=deliveries+1, started_at=?3 "
        f"WHERE id IN (SELECT id FROM baozi_items WHERE qid=?4 AND {which} AND {RUNNABLE} "
        "AND NOT coalesce((SELECT json_extract(options, '$.paused') FROM baozi_queues "
        f"WHERE id=?4), 0){tail}) RETURNING id, payload, priority, deliveries, CAST(task AS BLOB), failures, seq"
    )


_RESERVE = _leasing("state=0", " ORDER BY priority, seq, id LIMIT ?5")
# The rows named in the JSON array ?5 that are ready (marked so, or due), or leased by another
# owner and named in the JSON array ?6 as well.
_CLAIM = _leasing(
    "id IN (SELECT value FROM json_each(?5)) "
    f"AND (state=0 OR ({TIMED} AND due<=?3) "
    "OR (state=1 AND owner IS NOT ?2 AND id IN (SELECT value FROM json_each(?6))))"
)
# Where junk that a reserve passes over lies: ready rows, and leases and schedules whose due
# time is no number (text and blobs sort after every number; NULL first).
_SHORT_SWEEP = f"qid=?1 AND (state=0 OR ({TIMED} AND (due IS NULL OR due >= '')))"
# The first sweep of a queue in a process reads all its rows, and those of no queue at all.
_FIRST_SWEEP = "qid=?1 OR NOT EXISTS (SELECT 1 FROM baozi_queues q WHERE q.id = qid)"


def _junk_by_reason(
    conn: sqlite3.Connection, where: str, params: Sequence[object]
) -> dict[str, list[int]]:
    """The rows of baozi_items matching ``where`` that cannot be read, by the reason."""
    found = unsound_items(conn, where, params)
    odd = bad_text(conn, where, params)
    if odd:
        found.setdefault("a text column is no UTF-8", []).extend(odd)
    return found


def _junk_in(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> set[int]:
    """The ids of the rows of baozi_items matching ``where`` that cannot be read."""
    return {i for ids in _junk_by_reason(conn, where, params).values() for i in ids}


def _chunks(ids: Sequence[str]) -> Iterator[list[int]]:
    nums = [n for n in map(item_number, ids) if n is not None]
    for start in range(0, len(nums), _CHUNK):
        yield nums[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


@functools.lru_cache(maxsize=512)
def _sql_for(sql: str, n: int) -> str:
    """``sql`` with its ``{marks}`` filled for ``n`` ids (cached: the same few sizes recur)."""
    return sql.format(marks=_marks(n))


def _item(row: Any) -> Item:
    return Item(str(row[0]), row[1], read(row[2]), row[3])


def insert_counted(
    conn: sqlite3.Connection, qid: int, params: Sequence[tuple[Any, ...]], front: bool
) -> list[str]:
    """Insert rows of queue ``qid`` in the caller's write transaction and return their ids:
    ``params`` per row (qid, state, priority as kept, due, payload, task, created_at). Their
    enqueue totals are counted here once per task, not by a trigger per row (their rows say
    so). The ids are consecutive: the transaction is the file's only writer."""
    # A push to the front takes seq = -(its own id): below every seq in the queue, and lower for
    # each later push. Its id is the next AUTOINCREMENT value, read in the same statement.
    columns = f"?1, ?2, ?3, {NEXT_ID_NEGATED if front else 0}, ?4, ?5, ?6, ?7, 1"
    conn.executemany(
        "INSERT INTO baozi_items (qid, state, priority, seq, due, payload, task, created_at, "
        f"counted) VALUES ({columns})",
        params,
    )
    (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
    conn.executemany(
        "INSERT INTO baozi_totals VALUES (?, ?, 'enqueued', ?) "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(qid, task, k) for task, k in Counter(p[5] for p in params if p[5]).items()],
    )
    return [str(i) for i in range(last - len(params) + 1, last + 1)]


def _reset_options(conn: sqlite3.Connection, qid: int, queue: str, reason: str) -> None:
    """Copy the queue's row aside and start its options over (its items stay where they are)."""
    move_rows(conn, "baozi_queues", "id", [qid], reason)
    conn.execute("INSERT INTO baozi_queues (id, name) VALUES (?, ?)", (qid, queue))


class SQLiteQueues(RowStore):
    """The queue half of the SQLite store; :class:`SQLiteStore` adds jobs."""

    scheme: ClassVar[str] = "sqlite"
    shared_across_processes: ClassVar[bool] = True
    durable: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path, self.durability = parse_url(url)
        self._pid = current_pid()
        self._database: Database | None = Database.acquire(self.path, self.durability)

    @classmethod
    def missing(cls, url: str) -> str | None:
        path = parse_url(url)[0]
        return None if os.path.exists(path) else f"there is no SQLite store file {path}"

    @property
    def location(self) -> str:
        return f"SQLite file {self.path}"

    @property
    def _db(self) -> Database:
        db = self._database
        if db is None:
            raise ValueError(f"this handle on SQLite store {self.path!r} is closed")
        if self._pid != current_pid():  # forked: the parent's connections are not ours to use
            self._pid = current_pid()
            db = self._database = Database.acquire(self.path, self.durability)
        return db

    def close(self) -> None:
        db, self._database = self._database, None
        if db is not None and self._pid == current_pid():
            db.release()

    def _rqid(self, queue: str) -> int:
        """The queue's id for a read; 0, which no queue has, when there is no such queue."""
        return self._db.find_qid(queue) or 0

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
        plain = not any(j.unique_key is not None or j.depends_on for j in jobs)
        if plain and (pending is None or not jobs):
            return self._enqueue_rows(queue, jobs, front, delay, maxsize)
        check(jobs)
        db = self._db
        qid = db.qids.get(queue) or db.qid(queue)
        now = time.time()
        terms = EnqueueTerms(qid, front, now + delay if delay > 0 else None, now)
        taken = 0
        with self._write() as conn:
            if maxsize:
                room = ROOM_TAKEN.format(qid="?1", now="?2")
                (taken,) = conn.execute(f"SELECT {room}", (qid, now)).fetchone()
            ids = file_jobs(conn, jobs, terms)
            made = sum(not isinstance(i, Deduplicated) for i in ids)
            if maxsize and taken + made > maxsize:  # the transaction is undone
                raise Full(f"queue {queue!r} holds {taken} of at most {maxsize} ready items")
            if pending is not None:
                conn.executemany(
                    "INSERT OR REPLACE INTO baozi_marks (item, qid, at) VALUES (?, ?, ?)",
                    [(int(i), qid, float(pending)) for i in ids if not isinstance(i, Deduplicated)],
                )
        return ids

    def enqueue_one(self, queue: str, task: str, payload: bytes, priority: Priority = 0) -> str:
        return self._add(queue, [(priority, payload, task)], False, 0.0, 0, None)[0]

    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
    ) -> list[str]:
        """Insert (priority, payload, task) rows; a task makes the row a job with a record."""
        n = len(rows)
        if n == 0:
            return []
        db = self._db
        qid = db.qids.get(queue) or db.qid(queue)
        now = time.time()
        state, due = (SCHEDULED, now + delay) if delay > 0 else (READY, None)
        # A str, bytes or tuple priority is kept as a BLOB in the NUMERIC column: BLOBs sort
        # after every number and among themselves byte by byte, as the encoding needs.
        params = [(qid, state, kept(p), due, b, t, now if t else None) for p, b, t in rows]
        # A push to the front takes seq = -(its own id): below every seq in the queue, and lower for
        # each later push. Its id is the next AUTOINCREMENT value, read in the same statement.
        columns = f"?1, ?2, ?3, {NEXT_ID_NEGATED if front else 0}, ?4, ?5, ?6, ?7"
        insert = (
            "INSERT INTO baozi_items (qid, state, priority, seq, due, payload, task, created_at) "
            f"VALUES ({columns})"
        )
        if n == 1 and maxlen is None:
            one: tuple[Any, ...] = params[0]
            if maxsize:  # the check and the insert in one statement, hence atomic
                room = ROOM_TAKEN.format(qid="?1", now="?8")
                insert = insert.replace(
                    f"VALUES ({columns})", f"SELECT {columns} WHERE {room} < {int(maxsize)}"
                )
                one += (now,)
            try:
                cur = db.conn().execute(insert, one)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            if cur.rowcount == 0:
                raise Full(f"queue {queue!r} holds {maxsize} ready items, its maxsize")
            db.signal.notify()
            return [str(cur.lastrowid)]
        with self._write() as conn:
            if maxsize:
                room = ROOM_TAKEN.format(qid="?1", now="?2")
                (ready,) = conn.execute(f"SELECT {room}", (qid, now)).fetchone()
                if ready + n > maxsize:
                    raise Full(f"queue {queue!r} holds {ready} of at most {maxsize} ready items")
            ids = insert_counted(conn, qid, params, front)
            if maxlen is not None:
                conn.execute(
                    f"DELETE FROM baozi_items WHERE id IN (SELECT id FROM baozi_items "
                    f"WHERE qid=? AND state=0 ORDER BY {ORDER_DESC if front else ORDER} "
                    f"LIMIT max(0, (SELECT count(*) FROM baozi_items WHERE qid=? AND state=0) - ?))",
                    (qid, qid, maxlen),
                )
        return ids

    def _promote(self, conn: sqlite3.Connection, qid: int, now: float) -> int:
        """Mark expired leases and due scheduled items ready; return how many there were."""
        self._db.promoted_at[qid] = now
        cur = conn.execute(
            f"UPDATE baozi_items SET state=0 WHERE qid=? AND {TIMED} AND due<=?", (qid, now)
        )
        return int(cur.rowcount)

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        db = self._db
        qid = db.qids.get(queue) or db.find_qid(queue)
        if qid is None:
            return []
        conn = db.conn()
        now = time.time()
        if qid not in db.swept_at:  # the first reserve of the queue in this process
            self._sweep(qid, _FIRST_SWEEP)
        try:
            # Promoting costs a statement, so a busy consumer does it every PROMOTE_EVERY seconds;
            # one that finds too little always does, before concluding the queue is empty.
            promoted = now - db.promoted_at.get(qid, 0.0) >= PROMOTE_EVERY
            if promoted:
                self._promote(conn, qid, now)
            rows = conn.execute(_RESERVE, (now + lease, owner, now, qid, n)).fetchall()
            if len(rows) < n and not promoted and self._promote(conn, qid, now):
                rows += conn.execute(_RESERVE, (now + lease, owner, now, qid, n - len(rows)))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        if len(rows) < n and now - db.swept_at.get(qid, -SWEEP_EVERY) >= SWEEP_EVERY:
            self._sweep(qid, _SHORT_SWEEP)
        if not rows:
            return []
        db.signal.notify()
        if len(rows) > 1:
            rows.sort(key=lambda r: (r[2], r[6], r[0]))
        return self._items(rows)

    def claim(
        self,
        queue: str,
        owner: str,
        lease: float,
        ids: Sequence[str],
        takeover: Collection[str] = (),
    ) -> list[Item]:
        nums = [n for n in map(item_number, ids) if n is not None]
        qid = self._db.find_qid(queue) if nums else None
        if qid is None:
            return []
        taking = [n for n in map(item_number, takeover) if n is not None]
        now = time.time()
        params = (now + lease, owner, now, qid, json.dumps(nums), json.dumps(taking))
        with self._write() as conn:
            rows = conn.execute(_CLAIM, params).fetchall()
        return in_order(self._items(rows), ids)

    def _items(self, rows: list[Any]) -> list[Item]:
        """Reserved rows as items; one whose task name is no UTF-8 text is moved aside."""
        items, bad = [], []
        for r in rows:
            try:
                items.append(Item(str(r[0]), r[1], read(r[2]), r[3], text(r[4]), r[5]))
            except (UnicodeDecodeError, TypeError):
                bad.append(r[0])
        if bad:  # written after this process's first sweep of the queue: it was leased just now
            self._move("baozi_items", "id", bad, "task is no UTF-8 text (then leased, unread)")
        return items

    def _move(self, table: str, key: str, values: Sequence[object], reason: str) -> None:
        """Move rows that cannot be read aside (see _junk), and say so once each."""
        with self._write() as conn:
            moved = move_rows(conn, table, key, values, reason)
        if moved:
            logged(self.path, table, values, reason)

    def _sweep(self, qid: int, where: str) -> None:
        """Move the rows of queue ``qid`` that match ``where`` and cannot be read aside. They
        are looked for outside any write (a first sweep reads every row of the queue, which
        would hold off every writer meanwhile); those found are looked at again, and moved,
        in one short write."""
        self._db.swept_at[qid] = time.time()
        try:
            suspects = _junk_in(self._conn, where, (qid,))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        if not suspects:
            return
        again = f"id IN ({','.join(str(i) for i in suspects)})"
        with self._write() as conn:
            found = _junk_by_reason(conn, again, ())
            for reason, ids in found.items():
                move_rows(conn, "baozi_items", "id", ids, reason)
        for reason, ids in found.items():
            logged(self.path, "baozi_items", ids, reason)

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        qid = self._db.find_qid(queue)
        if qid is None:
            return []
        with self._write() as conn:
            self._promote(conn, qid, time.time())
            rows = conn.execute(
                f"DELETE FROM baozi_items WHERE id IN (SELECT id FROM baozi_items "
                f"WHERE qid=? AND state=0 AND {SOUND_ROW} "
                f"ORDER BY {ORDER_DESC if back else ORDER} LIMIT ?) "
                f"RETURNING id, payload, priority, deliveries, seq",
                (qid, n),
            ).fetchall()
        rows.sort(key=lambda r: (r[2], r[4], r[0]), reverse=back)
        return [_item(r) for r in rows]

    def _settle(self, sql: str, params: tuple[Any, ...], ids: Sequence[str]) -> int:
        chunks = list(_chunks(ids))
        if not chunks:
            return 0
        db = self._db
        if len(chunks) == 1:  # one statement is atomic by itself
            chunk = chunks[0]
            try:
                done = int(db.conn().execute(_sql_for(sql, len(chunk)), (*params, *chunk)).rowcount)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
            if done:
                db.signal.notify()
            return done
        done = 0
        with self._write() as conn:
            for chunk in chunks:
                done += conn.execute(_sql_for(sql, len(chunk)), (*params, *chunk)).rowcount
        return done

    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        return self._settle(
            "DELETE FROM baozi_items WHERE owner=? AND state IN (0, 1) AND id IN ({marks})",
            (owner,),
            ids,
        )

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        state, due = (SCHEDULED, time.time() + delay) if delay > 0 else (READY, None)
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

    def _read(self, sql: str, params: Any) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def rank(self, queue: str, item_id: str) -> int | None:
        num = item_number(item_id)
        if num is None:
            return None
        qid = self._rqid(queue)
        now = time.time()
        rows = self._read(
            "SELECT priority, seq, state, due FROM baozi_items WHERE id=? AND qid=?", (num, qid)
        )
        if not rows:
            return None
        prio, seq, state, due = rows[0]
        if state < 0 or state == WAITING or (state != READY and due > now):
            return None
        # Items whose lease or delay has run out are ready too, though not yet marked so.
        ((ahead,),) = self._read(
            f"SELECT {rows_ahead('?1', '?2', '?3', '?4', '?5')}", (qid, prio, seq, num, now)
        )
        return int(ahead)

    def counts(self, queue: str) -> Counts:
        qid, now = self._rqid(queue), time.time()
        # The line's stretches hold the count of the rows marked ready: a sum of a few rows.
        ((ready,),) = self._read("SELECT coalesce(sum(n), 0) FROM baozi_line WHERE qid=?", (qid,))
        rows = self._read(
            "SELECT state, count(*), total(due<=?) FROM baozi_items WHERE qid=? AND state>0 "
            "GROUP BY state",
            (now, qid),
        )
        n = {state: (count, int(expired)) for state, count, expired in rows}
        leased, leased_out = n.get(LEASED, (0, 0))
        scheduled, scheduled_due = n.get(SCHEDULED, (0, 0))
        return Counts(
            ready + leased_out + scheduled_due,
            leased - leased_out,
            scheduled - scheduled_due,
            n.get(WAITING, (0, 0))[0],
        )

    def next_due(self, queue: str) -> float | None:
        ((due,),) = self._read(
            f"SELECT min(due) FROM baozi_items WHERE qid=? AND {TIMED} "
            "AND typeof(due) IN ('integer', 'real')",
            (self._rqid(queue),),
        )
        return None if due is None else float(due)

    def peek(self, queue: str, index: int) -> Item:
        order, offset = (ORDER, index) if index >= 0 else (ORDER_DESC, -index - 1)
        rows = self._read(
            f"SELECT id, payload, priority, deliveries FROM baozi_items WHERE qid=? AND state=0 "
            f"AND {SOUND_ROW} ORDER BY {order} LIMIT 1 OFFSET ?",
            (self._rqid(queue), offset),
        )
        if not rows:
            raise IndexError(f"queue {queue!r} has no item at index {index}")
        return _item(rows[0])

    def snapshot(self, queue: str) -> list[Item]:
        rows = self._read(
            f"SELECT id, payload, priority, deliveries FROM baozi_items WHERE qid=? AND state=0 "
            f"AND {SOUND_ROW} ORDER BY {ORDER}",
            (self._rqid(queue),),
        )
        return [_item(r) for r in rows]

    def rotate(self, queue: str, n: int) -> None:
        n = operator.index(n)
        qid = self._db.find_qid(queue)
        if qid is None:
            return
        with self._write() as conn:
            self._promote(conn, qid, time.time())
            steps = rotation(n, lambda limit: ready_count(conn, qid, limit))
            if steps:
                ids = ready_ids(conn, qid, abs(steps), back=steps > 0)
                to_end(conn, ids, front=steps > 0)

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
        new = list(splice_args(index, delete, payloads, clamp, expect, maxlen).payloads)
        index = operator.index(index)
        db = self._db
        qid = db.find_qid(queue)
        if qid is None:  # checked as an empty queue before the queue is made
            if expect:
                return None
            nearer_end(queue, index, delete, clamp, maxlen, len(new), lambda limit: 0)
            if not new:
                return []
            qid = db.qid(queue)
        with self._write() as conn:
            self._promote(conn, qid, time.time())
            if expect is not None:
                held = ready_ids(conn, qid, len(expect))
                if [str(i) for i in held] != list(expect):
                    return None
            front, moving = nearer_end(
                queue,
                index,
                delete,
                clamp,
                maxlen,
                len(new),
                lambda limit: ready_count(conn, qid, limit),
            )
            if front:  # move the items ahead of the splice
                rows = ready_rows(conn, qid, moving + delete)
                moved, removed = rows[:moving], rows[moving:]
            else:  # or those behind it
                rows = ready_rows(conn, qid, moving + delete, back=True)
                removed, moved = rows[:delete], rows[delete:]
            delete_rows(conn, [r[0] for r in removed])
            insert_payloads(conn, qid, new, front=front)
            to_end(conn, [r[0] for r in moved], front=front)
        return [_item(r) for r in removed]

    def clear(self, queue: str) -> int:
        qid = self._db.find_qid(queue)
        if qid is None:
            return 0
        with self._write() as conn:
            drop_links(conn, "qid=?", (qid,))
            return conn.execute("DELETE FROM baozi_items WHERE qid=?", (qid,)).rowcount

    def queue_options(self, queue: str) -> dict[str, Any]:
        qid = self._rqid(queue)
        rows = self._read("SELECT CAST(options AS BLOB) FROM baozi_queues WHERE id=?", (qid,))
        if not rows:
            return {}
        options, junk = options_of(rows[0][0])
        if junk:
            with self._write() as conn:
                _reset_options(conn, qid, queue, junk)
            logged(self.path, "baozi_queues", [qid], junk)
        return options

    def set_queue_options(self, queue: str, **options: Any) -> None:
        qid = self._db.qid(queue)
        with self._write() as conn:
            (current,) = conn.execute(
                "SELECT CAST(options AS BLOB) FROM baozi_queues WHERE id=?", (qid,)
            ).fetchone()
            held, junk = options_of(current)
            if junk:
                _reset_options(conn, qid, queue, junk)
            merged = {**held, **options}
            conn.execute("UPDATE baozi_queues SET options=? WHERE id=?", (json.dumps(merged), qid))
        if junk:
            logged(self.path, "baozi_queues", [qid], junk)

    def change_token(self) -> int:
        return self._db.signal.token()

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        return self._db.signal.listen(callback)

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._db.signal.wait(token, timeout)
