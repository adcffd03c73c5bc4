"""How the PostgreSQL store reads job records -- from ``items`` while they live, from ``done``
once they have ended -- and the listings a dashboard reads: pages of records, the oldest ready
job of each queue, the jobs each owner runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._pages import check_page, cursor_of, fold, key_of
from .._rows import item_number
from ..base import ON_DEPENDENCY_FAILURE, JobRecord
from ._statements import STATUS
from .coord import PostgresCoordination
from .store import priority_of

# The worker is the lease's owner while the job runs, else the owner of its last run that ended
# (the ``worker`` columns, since layout 5).
LIVE = (
    f"SELECT i.id, q.name, i.task, {STATUS}, i.priority, i.pfloat, i.payload, i.deliveries, "
    "i.failures, i.created_at, i.started_at, NULL::float8, NULL::bytea, i.error, i.progress, "
    "i.unique_key, i.on_dep, i.due, "
    "CASE WHEN i.state = 1 AND i.due > {s}.now() THEN i.owner ELSE i.worker END "
    "FROM {s}.items i JOIN {s}.queues q ON q.id = i.qid WHERE i.task IS NOT NULL"
)
DONE = (
    "SELECT d.id, q.name, d.task, d.outcome, d.priority, d.pfloat, d.payload, d.deliveries, "
    "d.failures, d.created_at, d.started_at, d.finished_at, d.result, d.error, d.progress, "
    "d.unique_key, d.on_dep, NULL::float8, d.worker "
    "FROM {s}.done d JOIN {s}.queues q ON q.id = d.qid WHERE d.task IS NOT NULL"
)
# Records ``r`` with their parents (in order) and children (those the store holds, oldest first).
FAMILY = (
    "SELECT r.*, ARRAY(SELECT parent FROM {s}.deps WHERE child = r.id ORDER BY pos), "
    "ARRAY(SELECT child FROM {s}.deps x WHERE parent = r.id AND (EXISTS (SELECT 1 FROM "
    "{s}.items WHERE id = x.child) OR EXISTS (SELECT 1 FROM {s}.done WHERE id = x.child)) "
    "ORDER BY child) FROM (RECORDS) AS r ORDER BY 1 DESC"
)
LIVE_FILTERS = {
    "waiting": "i.state < 0",
    "queued": "(i.state = 0 OR (i.state > 0 AND i.due <= {s}.now()))",
    "running": "(i.state = 1 AND i.due > {s}.now())",
    "scheduled": "(i.state = 2 AND i.due > {s}.now())",
}

_FOLD = "translate({x}.task, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
"""A task name with its ASCII capitals made small, as :func:`~baozi.backends._pages.fold`
does (lower() would follow the database's locale)."""

# The oldest ready job of each queue: ids grow as jobs are added, so it is the oldest of the
# first in each priority's line. The ``ready`` buckets tell where those are: the back pushes'
# first bucket (seq 0, ids from ib << 10), and the front pushes' last (seq = -id: the earliest
# push has the highest); a lease or schedule that has run out is read through items_due.
_OLDEST_READY = """
WITH b AS (
    SELECT qid, priority, sb, ib FROM {s}.ready WHERE qid = ANY(%(qids)s)
    GROUP BY qid, priority, sb, ib HAVING sum(n) > 0
), back AS (
    SELECT qid, priority, min(ib) AS ib FROM b WHERE sb = 0 GROUP BY qid, priority
), front AS (
    SELECT qid, priority, max(sb) AS sb FROM b WHERE sb <> 0 GROUP BY qid, priority
)
SELECT h.qid, (SELECT min(i.created_at) FROM {s}.items i WHERE i.qid = h.qid AND i.state = 0
    AND i.priority = h.priority AND i.seq = 0 AND i.id >= (h.ib << 10)
    AND i.id < ((h.ib + 1) << 10) AND i.task IS NOT NULL) FROM back h
UNION ALL
SELECT h.qid, (SELECT min(i.created_at) FROM {s}.items i WHERE i.qid = h.qid AND i.state = 0
    AND i.priority = h.priority AND i.seq >= (h.sb << 10) AND i.seq < ((h.sb + 1) << 10)
    AND i.task IS NOT NULL) FROM front h
UNION ALL
SELECT qid, min(created_at) FROM {s}.items WHERE qid = ANY(%(qids)s) AND state > 0
    AND due <= {s}.now() AND task IS NOT NULL GROUP BY qid
"""


def record_of(row: Any) -> JobRecord:
    """A record from a row of FAMILY over LIVE or DONE."""
    return JobRecord(
        id=str(row[0]),
        queue=row[1],
        task=row[2],
        status=row[3],
        priority=priority_of(row[4], row[5]),
        payload=row[6],
        attempts=row[7],
        failures=row[8],
        created_at=row[9],
        started_at=row[10],
        finished_at=row[11],
        result=row[12],
        error=row[13],
        progress=row[14],
        unique_key=row[15],
        # A policy baozi does not write is read as the one it acts on: "cancel".
        on_dependency_failure=row[16] if row[16] in ON_DEPENDENCY_FAILURE else "cancel",
        parents=tuple(str(p) for p in row[19]),
        children=tuple(str(c) for c in row[20]),
        due_at=float(row[17]) if row[3] == "scheduled" else None,
        worker=row[18],
    )


def _page_sql(
    params: dict[str, Any],
    status: str | None,
    task: str | None,
    since: float | None,
    until: float | None,
    search: str | None,
    cursor: str | None,
) -> str:
    """The records of a page (before the FAMILY and the order): LIVE and DONE rows that pass
    the filters, each part keyed on its primary key below the cursor."""
    live, done = [LIVE], [DONE]
    conditions: list[tuple[str, str, Any]] = []  # (name, condition on {x}, value)
    below = key_of(cursor)
    if below is not None:
        conditions.append(("below", "{x}.id < %(below)s", below))
    if "qid" in params:
        conditions.append(("qid", "{x}.qid = %(qid)s", params["qid"]))
    if task is not None:
        conditions.append(("task", "{x}.task = %(task)s", task))
    if since is not None:
        conditions.append(("since", "{x}.created_at >= %(since)s", float(since)))
    if until is not None:
        conditions.append(("until", "{x}.created_at < %(until)s", float(until)))
    if search is not None:
        found = f"({{x}}.id = %(sid)s OR strpos({_FOLD}, %(needle)s) > 0)"
        conditions.append(("needle", found, fold(search)))
        params["sid"] = item_number(search)
    for name, condition, value in conditions:
        params[name] = value
        live.append(condition.replace("{x}", "i"))
        done.append(condition.replace("{x}", "d"))
    # Each part is read down an index in id order, at most a page of it (an order and a limit
    # on the union as a whole would read every row of both and sort them): ``items`` down its
    # primary key, ``done`` down its primary key or, for one queue, done_queue (qid, outcome,
    # id) once per outcome.
    first = " ORDER BY {x}.id DESC LIMIT %(limit)s"
    live_part = f"({' AND '.join(live)}{first.format(x='i')})"
    if status in LIVE_FILTERS:
        return f"{' AND '.join(live)} AND {LIVE_FILTERS[status]}{first.format(x='i')}"
    if status is not None:
        params["outcome"] = status
        return f"{' AND '.join(done)} AND d.outcome = %(outcome)s{first.format(x='d')}"
    if "qid" not in params:
        return f"{live_part} UNION ALL ({' AND '.join(done)}{first.format(x='d')})"
    by_outcome = [
        f"({' AND '.join(done)} AND d.outcome = '{outcome}'{first.format(x='d')})"
        for outcome in ("succeeded", "failed", "cancelled")
    ]
    return " UNION ALL ".join([live_part, *by_outcome])


class PostgresRecords(PostgresCoordination):
    """The listings of job records a dashboard reads."""

    def records_page(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        task: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[JobRecord], str | None]:
        check_page(status, limit)
        params: dict[str, Any] = {"limit": limit + 1}
        if queue is not None:
            params["qid"] = self._rqid(queue)
        sql = _page_sql(params, status, task, since, until, search, cursor)
        # The order key is the id, in both tables: each part is read down its primary key.
        page = f"SELECT * FROM ({sql}) AS p ORDER BY 1 DESC LIMIT %(limit)s"
        rows = self._rows("list jobs", FAMILY.replace("RECORDS", page), params)
        records = [record_of(r) for r in rows[:limit]]
        return records, cursor_of(rows[limit - 1][0]) if len(rows) > limit else None

    def oldest_ready(self, queues: Sequence[str]) -> dict[str, float]:
        qids = {qid: q for q in dict.fromkeys(queues) if (qid := self._db.find_qid(q))}
        if not qids:
            return {}
        out: dict[str, float] = {}
        for qid, oldest in self._rows("read the oldest", _OLDEST_READY, {"qids": list(qids)}):
            if oldest is not None:
                name = qids[qid]
                out[name] = min(float(oldest), out.get(name, float(oldest)))
        return out

    def running_jobs(self, queues: Sequence[str]) -> dict[str, list[str]]:
        qids = [q for q in map(self._db.find_qid, set(queues)) if q is not None]
        if not qids:
            return {}
        held: dict[str, list[str]] = {}
        for owner, num in self._rows(
            "read leases",
            "SELECT owner, id FROM {s}.items WHERE qid = ANY(%s) AND state = 1 AND due > {s}.now()",
            (qids,),
        ):
            if owner is not None:
                held.setdefault(owner, []).append(str(num))
        return held
