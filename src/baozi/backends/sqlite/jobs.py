"""The job half of the SQLite store: records kept in the item's own row once it is done."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ...errors import StoreError
from .._across import Group, bounded, check_groups, filed_place, over
from .._heartbeat import heartbeat
from .._order import kept
from .._rows import item_number
from ..base import COUNTED, STATUSES, JobPlace, JobRecord, Outcome, WorkerInfo
from ._records import FILTERS, RECORD, STATUS, SQLiteRecords
from ._workflow import KEPT_FOR, drop_links, release
from .store import READY, ROOM_TAKEN, _chunks, insert_counted, rows_ahead

__all__ = ["SQLiteStore"]

_AHEAD = rows_ahead("i.qid", "i.priority", "i.seq", "i.id", ":now")
"""The ready rows ahead of row i in its queue."""
_WITH_QUEUE = RECORD.replace(" FROM baozi_items i", ", i.qid FROM baozi_items i", 1)
_PLACE = (  # a record, then its rank when it is queued, in one statement: one moment
    RECORD.replace(
        " FROM baozi_items i",
        f", CASE WHEN {STATUS} = 'queued' THEN {_AHEAD} END FROM baozi_items i",
        1,
    )
)
_FINISH = (
    "UPDATE baozi_items SET state=-1, outcome=?1, result=?2, error=?3, finished_at=?4, "
    f"expires_at=?4 + {KEPT_FOR.format(ttl='?5')}, failures=failures+?6, worker=?8, "
    "owner=NULL, due=NULL "
    "WHERE id=?7 AND owner=?8 AND state IN (0, 1)"
)
_RETRY = (
    "UPDATE baozi_items SET state=?, due=?, failures=failures+1, error=?, worker=owner, "
    "owner=NULL "
    "WHERE id=? AND owner=? AND state IN (0, 1)"
)


_DEFER = (
    "UPDATE baozi_items SET state=?, due=?, deliveries=max(deliveries-1, 0), owner=NULL "
    "WHERE id=? AND owner=? AND state IN (0, 1)"
)


_HOLDS = (  # whether queue q holds an item or a record (one probe of each partial index)
    "(EXISTS (SELECT 1 FROM baozi_items WHERE qid=q.id AND state=0) "
    "OR EXISTS (SELECT 1 FROM baozi_items WHERE qid=q.id AND state>0) "
    "OR EXISTS (SELECT 1 FROM baozi_items WHERE qid=q.id AND state<0))"
)
_LISTED = f"(q.listed OR q.options != '{{}}' OR {_HOLDS})"
"""Whether queue q is listed: not deleted, or written to since (through an id kept from before)."""


def _batches(finished: list[Any], retried: list[Any], deferred: list[Any]) -> list[Any]:
    return [(_FINISH, finished), (_RETRY, retried), (_DEFER, deferred)]


_num = item_number


def _id_batches(nums: list[int]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Row ids in batches of 5,000 for ``i.id IN (...)``: the named marks and their parameters,
    with ``now`` (the status expression reads it)."""
    for start in range(0, len(nums), 5000):
        chunk = nums[start : start + 5000]
        params: dict[str, Any] = {"now": time.time()}
        params.update({f"i{k}": n for k, n in enumerate(chunk)})
        yield ",".join(f":i{k}" for k in range(len(chunk))), params


_READY_KEYS = (  # the ready rows of a queue from one key to another, in line order
    "SELECT id FROM ({marked} "
    "  UNION ALL SELECT priority, seq, id FROM baozi_items WHERE qid = :qid AND state > 0 "
    "    AND state < 3 AND due <= :now "
    "    AND (priority, seq, id) >= (:p0, :s0, :i0) AND (priority, seq, id) <= (:p1, :s1, :i1)) "
    "ORDER BY priority, seq, id"
)


_MARKED = "SELECT priority, seq, id FROM baozi_items WHERE qid = :qid AND state = 0"


_AHEAD_OF_KEY = f"SELECT {rows_ahead(':qid', ':p0', ':s0', ':i0', ':now')}"


def _ahead(conn: sqlite3.Connection, qid: int, key: Any, now: float) -> int:
    p0, s0, i0 = key
    params = {"qid": qid, "now": now, "p0": p0, "s0": s0, "i0": i0}
    ((ahead,),) = conn.execute(_AHEAD_OF_KEY, params).fetchall()
    return int(ahead)


def _ranks_in_line(
    conn: sqlite3.Connection, qid: int, members: list[int], now: float
) -> dict[int, int]:
    """The ranks of queued rows of one queue, in the caller's read transaction. The ranks of
    the first and the last of them tell how long the stretch of line between them is; a short
    one (jobs filed together) is walked, each rank counted on from the first's, and otherwise
    each row's rank is read on its own (a sum over the line's stretches, see ready_ahead)."""
    out: dict[int, int] = {}
    for start in range(0, len(members), 5000):
        chunk = members[start : start + 5000]
        marks = ",".join("?" * len(chunk))
        keys = conn.execute(
            f"SELECT priority, seq, id FROM baozi_items WHERE id IN ({marks}) "
            f"ORDER BY priority, seq, id",
            chunk,
        ).fetchall()
        if not keys:
            continue
        first, last = keys[0], keys[-1]
        ahead = _ahead(conn, qid, first, now)
        if len(keys) == 1:
            out[first[2]] = ahead
            continue
        stretch = _ahead(conn, qid, last, now) - ahead + 1
        if stretch > 4 * len(keys) + 64:
            out[first[2]] = ahead
            out.update((key[2], _ahead(conn, qid, key, now)) for key in keys[1:])
            continue
        (p0, s0, i0), (p1, s1, i1) = first, last
        params = {
            "qid": qid,
            "now": now,
            "p0": p0,
            "s0": s0,
            "i0": i0,
            "p1": p1,
            "s1": s1,
            "i1": i1,
        }
        if (p0, s0) == (p1, s1):  # one tie (the usual case): a range of ids
            marked = f"{_MARKED} AND priority = :p0 AND seq = :s0 AND id BETWEEN :i0 AND :i1"
        else:  # the first tie from i0, the ties between, the last tie up to i1
            marked = (
                f"{_MARKED} AND priority = :p0 AND seq = :s0 AND id >= :i0 UNION ALL "
                f"{_MARKED} AND (priority, seq) > (:p0, :s0) AND (priority, seq) < (:p1, :s1) "
                f"UNION ALL {_MARKED} AND priority = :p1 AND seq = :s1 AND id <= :i1"
            )
        wanted = set(chunk)
        for k, (num,) in enumerate(conn.execute(_READY_KEYS.format(marked=marked), params)):
            if num in wanted:
                out[num] = ahead + k
    return out


class SQLiteStore(SQLiteRecords):
    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        now = time.time()
        finished, retried, deferred = [], [], []
        waiting: list[tuple[str, int, int, int]] = []  # slot, its limit, job, its deferred row
        for o in outcomes:
            num = _num(o.id)
            if num is None:
                continue
            if o.status == "deferred":
                state, due = (2, now + o.retry_in) if o.retry_in > 0 else (0, None)
                deferred.append((state, due, num, owner))
                if o.slot is not None and state == 2:
                    waiting.append((o.slot, o.slot_limit, num, len(deferred) - 1))
            elif o.status == "retry":
                state, due = (2, now + o.retry_in) if o.retry_in > 0 else (0, None)
                retried.append((state, due, o.error, num, owner))
            else:
                failed = o.status == "failed"
                kept = failed_ttl if failed else ttl
                finished.append((o.status, o.result, o.error, now, kept, int(failed), num, owner))
        batches = [(sql, rows) for sql, rows in _batches(finished, retried, deferred) if rows]
        if len(batches) == 1 and len(batches[0][1]) == 1 and not waiting:  # atomic by itself
            if finished:
                return self._end_one(_FINISH, finished[0], now, ttl, failed_ttl)
            return self._run(batches[0][0], batches[0][1][0])
        done = 0
        with self._write() as conn:
            parked = []
            for slot, limit, num, row in waiting:
                (held,) = conn.execute(
                    "SELECT count(*) FROM baozi_slots WHERE name=? AND expires>?", (slot, now)
                ).fetchone()
                if held < limit:  # the slot freed meanwhile: ready at once
                    deferred[row] = (0, None, *deferred[row][2:])
                else:
                    parked.append((slot, num))
            for sql, rows in batches:
                done += conn.executemany(sql, rows).rowcount
            if parked:
                conn.executemany("INSERT OR IGNORE INTO baozi_waiters VALUES (?, ?)", parked)
            if finished:
                release(conn, now, ttl, failed_ttl)
        return done

    def _run(self, sql: str, params: Sequence[Any]) -> int:
        """One write statement in its own transaction; wakes waiters if it changed anything."""
        with self._write() as conn:
            return int(conn.execute(sql, params).rowcount)

    def _end_one(
        self, sql: str, params: Sequence[Any], now: float, ttl: float, failed_ttl: float
    ) -> int:
        """One statement that may end a job, in its own transaction with the release of the
        job's dependents when it has any (``sql`` returns nothing: its RETURNING says so)."""
        with self._write() as conn:
            ended = conn.execute(f"{sql} RETURNING has_children", params).fetchall()
            if ended and ended[0][0]:
                release(conn, now, ttl, failed_ttl)
        return len(ended)

    def cancel(
        self,
        job_id: str,
        ttl: float = 86400.0,
        *,
        running: bool = True,
        failed_ttl: float = math.inf,
    ) -> bool:
        now = time.time()
        # A lease that ran out is a job waiting for its turn; a live one ends with the job.
        cancel = (
            "UPDATE baozi_items SET state=-1, outcome='cancelled', finished_at=?1, "
            f"expires_at=?1 + {KEPT_FOR.format(ttl='?2')}, due=NULL, owner=NULL, "
            "worker=CASE WHEN state = 1 AND due > ?1 THEN owner ELSE worker END "
            "WHERE id=?3 AND task IS NOT NULL "
            "AND (state IN (0, 2, 3) OR (state = 1 AND (?4 OR due <= ?1)))"
        )
        return bool(self._end_one(cancel, (now, ttl, _num(job_id), running), now, ttl, failed_ttl))

    def forget(self, job_ids: Sequence[str]) -> int:
        done = 0
        with self._write() as conn:
            for chunk in _chunks(job_ids):
                finished = f"state<0 AND task IS NOT NULL AND id IN ({','.join('?' * len(chunk))})"
                drop_links(conn, finished, chunk)
                done += conn.execute(f"DELETE FROM baozi_items WHERE {finished}", chunk).rowcount
        return done

    def mark_pending(self, queue: str, marks: Mapping[str, float]) -> int:
        qid = self._db.find_qid(queue)
        rows = [(n, qid, float(at)) for i, at in marks.items() if (n := item_number(i)) is not None]
        if qid is None or not rows:
            return 0
        with self._write() as conn:
            return conn.executemany(
                "INSERT INTO baozi_marks (item, qid, at) SELECT id, qid, ?3 FROM baozi_items "
                "WHERE id=?1 AND qid=?2 AND task IS NOT NULL "
                "ON CONFLICT (item) DO UPDATE SET at=excluded.at",
                rows,
            ).rowcount

    def clear_pending(self, queue: str, marks: Mapping[str, float | None]) -> int:
        qid = self._db.find_qid(queue)
        rows = [
            (n, qid, None if at is None else float(at))
            for i, at in marks.items()
            if (n := item_number(i)) is not None
        ]
        if qid is None or not rows:
            return 0
        with self._write() as conn:
            return conn.executemany(
                "DELETE FROM baozi_marks WHERE item=?1 AND qid=?2 AND (?3 IS NULL OR at=?3)", rows
            ).rowcount

    def pending(self, queue: str, before: float, limit: int = 100) -> list[tuple[str, float]]:
        if limit <= 0:
            return []
        rows = self._read(
            "SELECT item, at FROM baozi_marks WHERE qid=? AND at<=? ORDER BY at LIMIT ?",
            (self._rqid(queue), float(before), limit),
        )
        return [(str(item), float(at)) for item, at in rows]

    def next_pending(self, queue: str) -> float | None:
        rows = self._read("SELECT min(at) FROM baozi_marks WHERE qid=?", (self._rqid(queue),))
        return None if rows[0][0] is None else float(rows[0][0])

    def requeue(self, job_id: str) -> bool:
        return bool(
            self._run(
                "UPDATE baozi_items SET state=0, outcome=NULL, result=NULL, error=NULL, "
                "finished_at=NULL, expires_at=NULL, failures=0, deliveries=0, owner=NULL, "
                "worker=NULL "
                "WHERE id=? AND state<0 AND outcome IN ('failed', 'cancelled')",
                (_num(job_id),),
            )
        )

    def record(self, job_id: str) -> JobRecord | None:
        rows = self._read(
            f"{RECORD} WHERE i.id=:id AND i.task IS NOT NULL",
            {"id": _num(job_id), "now": time.time()},
        )
        found = self._records(rows)
        return found[0] if found else None

    def job_snapshot(self, job_id: str) -> JobPlace | None:
        rows = self._read(
            f"{_PLACE} WHERE i.id=:id AND i.task IS NOT NULL",
            {"id": _num(job_id), "now": time.time()},
        )
        found = self._records(rows)
        if not found:
            return None
        return JobPlace(found[0], rows[0][-1])

    def job_snapshots(self, job_ids: Sequence[str]) -> dict[str, JobPlace]:
        nums = list(dict.fromkeys(n for n in map(_num, job_ids) if n is not None))
        if not nums:
            return {}
        if len(nums) == 1:  # one statement reads it at one moment
            place = self.job_snapshot(str(nums[0]))
            return {} if place is None else {place.record.id: place}
        now = time.time()
        conn = self._conn
        rows: list[Any] = []
        ranks: dict[int, int] = {}
        try:
            # One read transaction: every record and rank below is of one moment.
            conn.execute("BEGIN")
            try:
                for marks, params in _id_batches(nums):
                    params["now"] = now
                    rows += conn.execute(
                        f"{_WITH_QUEUE} WHERE i.id IN ({marks}) AND i.task IS NOT NULL", params
                    ).fetchall()
                queued: dict[int, list[int]] = {}
                for row in rows:
                    if row[3] == "queued":
                        queued.setdefault(row[-1], []).append(row[0])
                for qid, members in queued.items():
                    ranks.update(_ranks_in_line(conn, qid, members, now))
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        # Read after the transaction: a row that cannot be read is moved aside by a write.
        return {
            rec.id: JobPlace(rec, ranks.get(int(rec.id)))
            for rec in self._records([row[:-1] for row in rows])
        }

    def enqueue_across(
        self, groups: Sequence[Group], *, pending: float | None = None
    ) -> list[list[tuple[str, JobPlace | None]]]:
        check_groups(groups)
        if not any(jobs for _, jobs, _ in groups):
            return [[] for _ in groups]
        db = self._db
        # (A queue named only by empty groups is not made.)
        qids = [(db.qids.get(q) or db.qid(q)) if jobs else 0 for q, jobs, _ in groups]
        now = time.time()
        params = [
            [(qid, READY, kept(j.priority), None, j.payload, j.task, now) for j in jobs]
            for qid, (_, jobs, _) in zip(qids, groups, strict=True)
        ]
        ranks: dict[int, int] = {}
        with self._write() as conn:  # the check, every group, the marks and the ranks
            held = {}
            qid_of = {q: qid for (q, jobs, _), qid in zip(groups, qids, strict=True) if jobs}
            room = ROOM_TAKEN.format(qid="?1", now="?2")
            for queue in bounded(groups):
                (held[queue],) = conn.execute(f"SELECT {room}", (qid_of[queue], now)).fetchone()
            error = over(groups, held)
            if error is not None:
                raise error  # nothing written yet
            filed = [
                insert_counted(conn, qid, rows, False) if rows else []
                for qid, rows in zip(qids, params, strict=True)
            ]
            members: dict[int, list[int]] = {}
            for qid, ids in zip(qids, filed, strict=True):
                if ids:
                    members.setdefault(qid, []).extend(map(int, ids))
            if pending is not None:
                conn.executemany(
                    "INSERT OR REPLACE INTO baozi_marks (item, qid, at) VALUES (?, ?, ?)",
                    [(num, qid, float(pending)) for qid, nums in members.items() for num in nums],
                )
            for qid, nums in members.items():  # after every group: ranks at the commit
                ranks.update(_ranks_in_line(conn, qid, nums, now))
        return [
            [
                (job_id, filed_place(job_id, queue, job, now, ranks.get(int(job_id))))
                for job_id, job in zip(ids, jobs, strict=True)
            ]
            for (queue, jobs, _), ids in zip(groups, filed, strict=True)
        ]

    def records_of(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        nums = list(dict.fromkeys(n for n in map(_num, job_ids) if n is not None))
        out: dict[str, JobRecord] = {}
        for marks, params in _id_batches(nums):
            rows = self._read(f"{RECORD} WHERE i.id IN ({marks}) AND i.task IS NOT NULL", params)
            out.update((rec.id, rec) for rec in self._records(rows))
        return out

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        nums = [n for n in map(_num, job_ids) if n is not None]
        out: dict[str, str] = {}
        for marks, params in _id_batches(nums):
            rows = self._read(
                f"SELECT i.id, {STATUS} FROM baozi_items i "
                f"WHERE i.id IN ({marks}) AND i.task IS NOT NULL",
                params,
            )
            out.update((str(i), status) for i, status in rows)
        return out

    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        where = ["i.task IS NOT NULL"]
        params: dict[str, Any] = {"now": time.time(), "limit": limit, "offset": offset}
        if queue is not None:
            where.append("i.qid = :qid")
            params["qid"] = self._rqid(queue)
        if status is not None:
            where.append(FILTERS[status])
        sql = f"{RECORD} WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT :limit OFFSET :offset"
        return self._records(self._read(sql, params))

    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        return bool(
            self._run(
                "UPDATE baozi_items SET progress=? WHERE id=? AND owner=? AND state IN (0, 1)",
                (progress, _num(job_id), owner),
            )
        )

    def job_counts(self, queue: str) -> dict[str, int]:
        counts = self.counts(queue)
        out = dict.fromkeys(STATUSES, 0)
        out.update(
            waiting=counts.waiting,
            scheduled=counts.scheduled,
            queued=counts.ready,
            running=counts.leased,
        )
        for outcome, n in self._read(
            "SELECT outcome, count(*) FROM baozi_items WHERE qid=? AND state<0 "
            "AND outcome IN ('succeeded', 'failed', 'cancelled') GROUP BY outcome",
            (self._rqid(queue),),
        ):
            out[outcome] = n
        return out

    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for task, event, n in self._read(
            "SELECT task, event, n FROM baozi_totals WHERE qid=?", (self._rqid(queue),)
        ):
            out.setdefault(task, dict.fromkeys(COUNTED, 0))[event] = n
        return out

    def queues(self) -> list[str]:
        names, bad = [], []
        for qid, name in self._read(
            f"SELECT id, CAST(name AS BLOB) FROM baozi_queues q WHERE {_LISTED} ORDER BY name", ()
        ):
            try:
                names.append(name.decode())
            except (UnicodeDecodeError, AttributeError):
                bad.append(qid)
        if bad:  # a name no one can type: its queue's items are moved aside by the next sweep
            self._move("baozi_queues", "id", bad, "the name is no UTF-8 text")
        return names

    def has_queue(self, queue: str) -> bool:
        return bool(
            self._read(f"SELECT 1 FROM baozi_queues q WHERE name=? AND {_LISTED}", (queue,))
        )

    def delete_queue(self, queue: str) -> bool:
        # The row stays, unlisted and its options gone: other processes may keep its id, and
        # what they write to the queue lists it again (see _LISTED).
        with self._write() as conn:
            row = conn.execute(
                f"SELECT id, {_HOLDS} FROM baozi_queues q WHERE name=? AND {_LISTED}", (queue,)
            ).fetchone()
            if row is None or row[1]:
                return False
            conn.execute("UPDATE baozi_queues SET listed=0, options='{}' WHERE id=?", (row[0],))
            conn.execute("DELETE FROM baozi_totals WHERE qid=?", (row[0],))
        return True

    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        qids = [q for q in map(self._db.find_qid, set(queues)) if q is not None]
        if not qids:
            return {}
        rows = self._read(
            f"SELECT owner, count(*) FROM baozi_items WHERE qid IN ({','.join('?' * len(qids))}) "
            # state>0 too: it lets SQLite use the index of leased and scheduled rows (state=1
            # alone would read every row of the table, the finished ones included).
            "AND state>0 AND state=1 AND due>? GROUP BY owner",
            (*qids, time.time()),
        )
        return {owner: n for owner, n in rows if owner is not None}

    def purge_expired(self) -> int:
        with self._write() as conn:
            now = time.time()
            drop_links(conn, "state<0 AND expires_at<=?", (now,))
            return int(
                conn.execute(
                    "DELETE FROM baozi_items WHERE state<0 AND expires_at<=?", (now,)
                ).rowcount
            )

    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        now = time.time()
        info = json.dumps(dataclasses.asdict(worker))
        self._run(
            "INSERT OR REPLACE INTO baozi_workers (id, info, seen, expires) VALUES (?, ?, ?, ?)",
            (worker.id, info, now, now + ttl),
        )

    def workers(self) -> list[WorkerInfo]:
        out, bad = [], []
        for worker_id, info, seen in self._read(
            "SELECT id, CAST(info AS BLOB), seen FROM baozi_workers WHERE expires > ? ORDER BY id",
            (time.time(),),
        ):
            try:
                out.append(heartbeat(info, seen))
            except (ValueError, TypeError, KeyError) as exc:
                bad.append((worker_id, f"{type(exc).__name__}: {exc}"))
        for worker_id, reason in bad:
            self._move("baozi_workers", "id", [worker_id], reason)
        return out

    def forget_worker(self, worker_id: str) -> None:
        self._run("DELETE FROM baozi_workers WHERE id=?", (worker_id,))
