"""The job part of the PostgreSQL store: a finished job's row moves from ``items`` to ``done``."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from .._across import Group, check_groups, filed_place
from .._heartbeat import heartbeat
from .._rows import item_number
from ..base import (
    COUNTED,
    STATUSES,
    Consumer,
    JobPlace,
    JobRecord,
    Outcome,
    Receiver,
    WorkerInfo,
)
from ._across import file_groups
from ._consumer import PostgresConsumer
from ._health import vacuum_warnings
from ._records import DONE, FAMILY, LIVE, LIVE_FILTERS, PostgresRecords, record_of
from ._settle import FINISH, FINISH_PARENTS, KEPT, finish_params
from ._statements import DROP_MARKS, PLACE_RANK, STATUS
from ._workflow import release
from .store import _insert_params

__all__ = ["PostgresStore"]

log = logging.getLogger("baozi.store")

# Set (add or move) the marks of the named jobs of the queue, wherever their records are.
_MARK = """
INSERT INTO {s}.marks (item, qid, at)
SELECT x.item, %(qid)s, x.at FROM unnest(%(ids)s::bigint[], %(ats)s::float8[]) AS x(item, at)
WHERE EXISTS (SELECT 1 FROM {s}.items WHERE id = x.item AND qid = %(qid)s AND task IS NOT NULL)
   OR EXISTS (SELECT 1 FROM {s}.done WHERE id = x.item AND qid = %(qid)s AND task IS NOT NULL)
ON CONFLICT (item) DO UPDATE SET at = excluded.at
"""
# Remove the named marks of the queue that have the time given (any time, given NULL).
_UNMARK = """
DELETE FROM {s}.marks m USING unnest(%(ids)s::bigint[], %(ats)s::float8[]) AS x(item, at)
WHERE m.item = x.item AND m.qid = %(qid)s AND (x.at IS NULL OR m.at = x.at)
"""

# Runs retried or deferred: back to their place, ready or scheduled.
_AGAIN = """
WITH o AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(delays)s::float8[], %(errors)s::text[],
                         %(retried)s::boolean[]) AS o(id, delay, error, retried)
), u AS (
    UPDATE {s}.items i SET
        state = CASE WHEN o.delay > 0 THEN 2 ELSE 0 END,
        due = CASE WHEN o.delay > 0 THEN {s}.now() + o.delay END,
        failures = i.failures + o.retried::int,
        error = CASE WHEN o.retried THEN o.error ELSE i.error END,
        deliveries = CASE WHEN o.retried THEN i.deliveries ELSE greatest(i.deliveries - 1, 0) END,
        worker = CASE WHEN o.retried THEN i.owner ELSE i.worker END,
        owner = NULL
    FROM o WHERE i.id = o.id AND i.owner = %(owner)s AND i.state IN (0, 1)
    RETURNING i.id
)
SELECT count(*), {signal} FROM u
"""
_HOLDS = (  # whether queue q holds an item or a record
    "(EXISTS (SELECT 1 FROM {s}.items WHERE qid = q.id) "
    "OR EXISTS (SELECT 1 FROM {s}.done WHERE qid = q.id))"
)
_LISTED = f"(q.listed OR q.options <> '{{}}' OR {_HOLDS})"


_CANCEL = """
WITH m AS (
    DELETE FROM {s}.items WHERE id = %(id)s AND task IS NOT NULL
    AND (state <> 1 OR %(running)s OR due <= {s}.now()) RETURNING *
), ins AS (
    INSERT INTO {s}.done (id, qid, task, outcome, priority, pfloat, seq, payload,
        deliveries, failures, created_at, started_at, finished_at, expires_at,
        error, progress, unique_key, unique_while, unique_for, on_dep, worker)
    SELECT id, qid, task, 'cancelled', priority, pfloat, seq, payload, deliveries,
        failures, created_at, started_at, {s}.now(), {s}.now() + KEPT, error,
        progress, unique_key, unique_while, unique_for, on_dep,
        CASE WHEN state = 1 AND due > {s}.now() THEN owner ELSE worker END FROM m
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT qid, task, 'cancelled', pg_backend_pid(), 1 FROM m
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + 1
)
SELECT count(*), coalesce(bool_or(kids), false), {signal} FROM m
""".replace("KEPT", KEPT.format(x="m", ttl="%(ttl)s"))


class PostgresStore(PostgresRecords):
    def warnings(self) -> list[str]:
        db = self._db  # what keeps vacuum from cleaning the store's tables: one round trip
        return db.run("check vacuum", lambda c: vacuum_warnings(c, db.schema, db.where))

    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        finished = [o for o in outcomes if o.status not in ("retry", "deferred")]
        again = [o for o in outcomes if o.status in ("retry", "deferred")]
        waiting = [o for o in again if o.status == "deferred" and o.slot and o.retry_in > 0]
        done = 0
        if finished:
            params = finish_params(owner, finished, ttl, failed_ttl)
            row = self._one("settle", FINISH, params)
            done += int(row[0])
            if row[0] < len(params["ids"]):  # jobs others depend on (or leases lost)
                done += self.finish_parents(params)
        if again:
            done += self._again(owner, again, waiting)
        if done:
            self._notify()
        return done

    def finish_parents(self, params: dict[str, Any]) -> int:
        """End the runs of :func:`finish_params` ``params`` that :data:`FINISH` left for
        having dependents, and release those in the same transaction; how many ended."""

        def finish(conn: psycopg.Connection[Any]) -> int:
            rows = conn.execute(self.sql(FINISH_PARENTS), params).fetchall()
            if rows:
                ended = [(num, status) for num, status, kids in rows if kids]
                release(conn, self.sql, ended, params["ttl"], params["failed_ttl"])
                conn.execute(self.sql("SELECT {s}.signal()"))
            return len(rows)

        return int(self._in_transaction("settle", finish))

    def consumer(
        self, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> Consumer:
        return PostgresConsumer(self, owner, queues, lease, receiver)

    def _again(self, owner: str, again: list[Outcome], waiting: list[Outcome]) -> int:
        keep = [(n, o) for o in again if (n := item_number(o.id)) is not None]
        ids = [n for n, _ in keep]
        delays = [float(o.retry_in) for _, o in keep]
        params = {
            "ids": ids,
            "delays": delays,
            "errors": [o.error for _, o in keep],
            "retried": [o.status == "retry" for _, o in keep],
            "owner": owner,
        }
        if not waiting:
            row = self._one("settle", _AGAIN, params)
            return int(row[0])

        def park(conn: psycopg.Connection[Any]) -> int:
            parked = []
            for o in waiting:  # a slot freed meanwhile: ready at once, else wait for it
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (0x736C74, o.slot))
                (held,) = conn.execute(
                    self.sql(
                        "SELECT count(*) FROM {s}.slots WHERE name = %s AND expires > {s}.now()"
                    ),
                    (o.slot,),
                ).fetchone() or (0,)
                num = item_number(o.id)
                if num is None:
                    continue
                if held < o.slot_limit:
                    delays[ids.index(num)] = 0.0
                else:
                    parked.append((o.slot, num))
            (n, _) = conn.execute(self.sql(_AGAIN), params).fetchone() or (0, None)
            for slot, num in parked:
                conn.execute(
                    self.sql("INSERT INTO {s}.waiters VALUES (%s, %s) ON CONFLICT DO NOTHING"),
                    (slot, num),
                )
            return int(n)

        return int(self._in_transaction("settle", park))

    def cancel(
        self,
        job_id: str,
        ttl: float = 86400.0,
        *,
        running: bool = True,
        failed_ttl: float = math.inf,
    ) -> bool:
        num = item_number(job_id)
        if num is None:
            return False
        sql = self.sql(_CANCEL)
        params = {"id": num, "ttl": float(ttl), "running": bool(running)}

        def cancel(conn: psycopg.Connection[Any]) -> bool:
            n, kids, _ = conn.execute(sql, params).fetchone() or (0, False, None)
            if kids:
                release(conn, self.sql, [(num, "cancelled")], ttl, failed_ttl)
            return bool(n)

        return bool(self._in_transaction("cancel", cancel))

    def forget(self, job_ids: Sequence[str]) -> int:
        nums = [n for n in map(item_number, job_ids) if n is not None]
        if not nums:
            return 0
        return self._forget("forget jobs", "id = ANY(%s) AND task IS NOT NULL", (nums,))

    def _forget(self, what: str, which: str, params: Any = None) -> int:
        """Delete the ``done`` rows ``which`` picks, with the dependencies they waited for (those
        other jobs waited for stay: their parents); how many."""
        row = self._one(
            what,
            f"WITH d AS (DELETE FROM {{s}}.done WHERE {which} RETURNING id), "
            f"x AS (DELETE FROM {{s}}.deps WHERE child IN (SELECT id FROM d)), {DROP_MARKS} "
            "SELECT count(*) FROM d",
            params,
        )
        return int(row[0])

    def mark_pending(self, queue: str, marks: Mapping[str, float]) -> int:
        return self._marks("mark pending", _MARK, self._db.find_qid(queue), marks)

    def clear_pending(self, queue: str, marks: Mapping[str, float | None]) -> int:
        return self._marks("clear pending", _UNMARK, self._db.find_qid(queue), marks)

    def _marks(
        self, what: str, template: str, qid: int | None, marks: Mapping[str, float | None]
    ) -> int:
        """``template`` run on the marks named (%(ids)s, with their times %(ats)s) of queue
        %(qid)s: how many rows it changed."""
        pairs = [(n, at) for i, at in marks.items() if (n := item_number(i)) is not None]
        if qid is None or not pairs:
            return 0
        params = {
            "qid": qid,
            "ids": [n for n, _ in pairs],
            "ats": [None if at is None else float(at) for _, at in pairs],
        }
        sql = self.sql(template)
        return int(self._db.run(what, lambda c: c.execute(sql, params).rowcount))

    def pending(self, queue: str, before: float, limit: int = 100) -> list[tuple[str, float]]:
        if limit <= 0:
            return []
        rows = self._rows(
            "pending",
            "SELECT item, at FROM {s}.marks WHERE qid = %s AND at <= %s ORDER BY at LIMIT %s",
            (self._rqid(queue), float(before), limit),
        )
        return [(str(item), float(at)) for item, at in rows]

    def next_pending(self, queue: str) -> float | None:
        row = self._one(
            "next pending", "SELECT min(at) FROM {s}.marks WHERE qid = %s", (self._rqid(queue),)
        )
        return None if row is None or row[0] is None else float(row[0])

    def requeue(self, job_id: str) -> bool:
        num = item_number(job_id)
        if num is None:
            return False
        row = self._one(
            "requeue",
            """
            WITH m AS (
                DELETE FROM {s}.done WHERE id = %s AND outcome IN ('failed', 'cancelled')
                RETURNING *
            ), ins AS (
                INSERT INTO {s}.items (id, qid, state, priority, pfloat, seq, payload, task,
                    created_at, progress, unique_key, unique_while, unique_for, on_dep)
                SELECT id, qid, 0, priority, pfloat, seq, payload, task, created_at, progress,
                    unique_key, unique_while, unique_for, on_dep
                FROM m
            )
            SELECT count(*), {signal} FROM m
            """,
            (num,),
        )
        self._notify()
        return bool(row[0])

    def record(self, job_id: str) -> JobRecord | None:
        num = item_number(job_id)
        if num is None:
            return None
        records = f"{LIVE} AND i.id = %(id)s UNION ALL {DONE} AND d.id = %(id)s"
        rows = self._rows("read a job", FAMILY.replace("RECORDS", records), {"id": num})
        return record_of(rows[0]) if rows else None

    def job_snapshot(self, job_id: str) -> JobPlace | None:
        num = item_number(job_id)
        if num is None:
            return None
        records = f"{LIVE} AND i.id = %(id)s UNION ALL {DONE} AND d.id = %(id)s"
        # One statement, so one snapshot of the table and one now(): the status and the rank
        # agree.
        family = FAMILY.replace("RECORDS", records)
        row = self._one(
            "read a job's place",
            f"SELECT f.*, k.ahead FROM ({family}) AS f "
            f"LEFT JOIN ({PLACE_RANK}) AS k(state, due_now, ahead) ON true",
            {"id": num},
        )
        if row is None:
            return None
        rec = record_of(row)
        rank = int(row[-1]) if rec.status == "queued" and row[-1] is not None else None
        return JobPlace(rec, rank)

    def enqueue_across(
        self, groups: Sequence[Group], *, pending: float | None = None
    ) -> list[list[tuple[str, JobPlace | None]]]:
        check_groups(groups)
        if not any(jobs for _, jobs, _ in groups):
            return [[] for _ in groups]
        params = []
        for q, jobs, _ in groups:  # a queue named only by empty groups is not made
            rows = [(j.priority, j.payload, j.task) for j in jobs]
            params.append(_insert_params(self._qid(q) if jobs else 0, rows, False, 0))
        filed, created, ranks = self._in_transaction(
            "enqueue", lambda conn: file_groups(conn, self.sql, groups, params, pending)
        )
        return [
            [
                (i, filed_place(i, queue, job, at, ranks.get(int(i))))
                for i, job in zip(ids, jobs, strict=True)
            ]
            for (queue, jobs, _), ids, at in zip(groups, filed, created, strict=True)
        ]

    def records_of(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        nums = list(dict.fromkeys(n for n in map(item_number, job_ids) if n is not None))
        if not nums:
            return {}
        records = f"{LIVE} AND i.id = ANY(%(ids)s) UNION ALL {DONE} AND d.id = ANY(%(ids)s)"
        rows = self._rows("read jobs", FAMILY.replace("RECORDS", records), {"ids": nums})
        return {rec.id: rec for rec in map(record_of, rows)}

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        nums = [n for n in map(item_number, job_ids) if n is not None]
        if not nums:
            return {}
        rows = self._rows(
            "read statuses",
            f"SELECT id, {STATUS} FROM {{s}}.items WHERE id = ANY(%(ids)s) AND task IS NOT NULL "
            "UNION ALL SELECT id, outcome FROM {s}.done WHERE id = ANY(%(ids)s) "
            "AND task IS NOT NULL",
            {"ids": nums},
        )
        return {str(i): status for i, status in rows}

    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        live, done = [LIVE], [DONE]
        if queue is not None:
            params["qid"] = self._rqid(queue)
            live.append("i.qid = %(qid)s")
            done.append("d.qid = %(qid)s")
        if status in LIVE_FILTERS:
            sql = f"{' AND '.join(live)} AND {LIVE_FILTERS[status]}"
        elif status is not None:
            params["outcome"] = status
            sql = f"{' AND '.join(done)} AND d.outcome = %(outcome)s"
        else:
            sql = f"{' AND '.join(live)} UNION ALL {' AND '.join(done)}"
        page = f"SELECT * FROM ({sql}) AS p ORDER BY 1 DESC LIMIT %(limit)s OFFSET %(offset)s"
        rows = self._rows("list jobs", FAMILY.replace("RECORDS", page), params)
        return [record_of(r) for r in rows]

    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        num = item_number(job_id)
        if num is None:
            return False
        return bool(
            self._count(
                "set progress",
                "UPDATE {s}.items SET progress = %s WHERE id = %s AND owner = %s "
                "AND state IN (0, 1)",
                (progress, num, owner),
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
        for outcome, n in self._rows(
            "count jobs",
            "SELECT outcome, count(*) FROM {s}.done WHERE qid = %s AND task IS NOT NULL "
            "GROUP BY outcome",
            (self._rqid(queue),),
        ):
            if outcome in out:
                out[outcome] = n
        return out

    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for task, event, n in self._rows(
            "read totals",
            "SELECT task, event, sum(n) FROM {s}.totals WHERE qid = %s GROUP BY task, event",
            (self._rqid(queue),),
        ):
            if event in COUNTED:
                out.setdefault(task, dict.fromkeys(COUNTED, 0))[event] = int(n)
        return out

    def queues(self) -> list[str]:
        rows = self._rows(
            "list queues", f"SELECT name FROM {{s}}.queues q WHERE {_LISTED} ORDER BY name"
        )
        return [r[0] for r in rows]

    def has_queue(self, queue: str) -> bool:
        return bool(
            self._rows(
                "find a queue",
                f"SELECT 1 FROM {{s}}.queues q WHERE name = %s AND {_LISTED}",
                (queue,),
            )
        )

    def delete_queue(self, queue: str) -> bool:
        # The row stays, unlisted and its options gone: other processes may keep its id, and
        # what they write to the queue lists it again (see _LISTED).
        def delete(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                self.sql(
                    f"SELECT id, {_HOLDS} FROM {{s}}.queues q WHERE name = %s AND {_LISTED} "
                    "FOR UPDATE"
                ),
                (queue,),
            ).fetchone()
            if row is None or row[1]:
                return False
            conn.execute(
                self.sql(
                    "UPDATE {s}.queues SET listed = false, options = '{}', paused = false, "
                    "bounded = false "
                    "WHERE id = %s"
                ),
                (row[0],),
            )
            conn.execute(self.sql("DELETE FROM {s}.totals WHERE qid = %s"), (row[0],))
            return True

        return bool(self._in_transaction("delete a queue", delete))

    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        qids = [q for q in map(self._db.find_qid, set(queues)) if q is not None]
        if not qids:
            return {}
        rows = self._rows(
            "read leases",
            "SELECT owner, count(*) FROM {s}.items WHERE qid = ANY(%s) AND state = 1 "
            "AND due > {s}.now() GROUP BY owner",
            (qids,),
        )
        return {owner: n for owner, n in rows if owner is not None}

    def purge_expired(self) -> int:
        purged = 0
        while True:
            n = self._forget(
                "purge expired jobs",
                "id IN (SELECT id FROM {s}.done WHERE expires_at <= {s}.now() LIMIT 5000)",
            )
            purged += n
            if n < 5000:
                break
        self._fold()
        return purged

    def _fold(self) -> None:
        """Fold counter rows into shard 0: those of connections that have gone, and, for the
        ready counts, every shard's rows of a bucket that holds no ready item any more (so the
        rows grow with the queue's depth, not its history). Rows are moved as deleted -- the
        version each DELETE removed, after any write it waited for -- so no count is lost."""
        key = "qid, task, event"
        gone = "NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = t.shard)"
        self._rows(
            "fold counters",
            f"WITH gone AS (DELETE FROM {{s}}.totals t WHERE shard <> 0 AND {gone} "
            f"RETURNING {key}, n) "
            f"INSERT INTO {{s}}.totals AS x SELECT {key}, 0, sum(n) FROM gone "
            f"GROUP BY {key} ON CONFLICT ({key}, shard) DO UPDATE SET n = x.n + excluded.n "
            "RETURNING 1",
        )
        key = "qid, priority, sb, ib"
        self._rows(
            "fold counters",
            f"WITH empty AS (SELECT {key} FROM {{s}}.ready GROUP BY {key} HAVING sum(n) = 0), "
            f"gone AS (DELETE FROM {{s}}.ready t WHERE shard <> 0 AND ({gone} OR ({key}) IN "
            f"(SELECT {key} FROM empty)) RETURNING {key}, n) "
            f"INSERT INTO {{s}}.ready AS x SELECT {key}, 0, sum(n) FROM gone "
            f"GROUP BY {key} ON CONFLICT ({key}, shard) DO UPDATE SET n = x.n + excluded.n "
            "RETURNING 1",
        )
        self._count("fold counters", "DELETE FROM {s}.ready WHERE shard = 0 AND n = 0")

    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        info = json.dumps(dataclasses.asdict(worker))
        self._count(
            "heartbeat",
            "INSERT INTO {s}.workers VALUES (%s, %s, {s}.now(), {s}.now() + %s) "
            "ON CONFLICT (id) DO UPDATE SET info = excluded.info, seen = excluded.seen, "
            "expires = excluded.expires",
            (worker.id, info, float(ttl)),
        )

    def workers(self) -> list[WorkerInfo]:
        out = []
        for worker_id, info, seen in self._rows(
            "list workers",
            "SELECT id, info, seen FROM {s}.workers WHERE expires > {s}.now() ORDER BY id",
        ):
            try:
                out.append(heartbeat(info, seen))
            except (ValueError, TypeError, KeyError) as exc:
                self._quarantine("workers", "id", worker_id, f"{type(exc).__name__}: {exc}")
        return out

    def forget_worker(self, worker_id: str) -> None:
        self._count("forget a worker", "DELETE FROM {s}.workers WHERE id = %s", (worker_id,))
