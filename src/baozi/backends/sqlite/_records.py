"""How the SQLite store reads job records: the statement that reads them, the record made
from a row, and the listings a dashboard reads (pages of records, oldest ready jobs, running
jobs)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ...errors import StoreError
from .._pages import check_page, cursor_of, fold, key_of
from .._rows import item_number
from ..base import JobRecord
from ._junk import SOUND_ROW, text
from ._workflow import LINKS, links
from .coord import SQLiteCoordination

STATUS = (  # the job's status from its state; ?now is the current time
    "CASE WHEN i.state < 0 THEN i.outcome WHEN i.state = 3 THEN 'waiting' "
    "WHEN i.state = 0 OR i.due <= :now THEN 'queued' "
    "WHEN i.state = 1 THEN 'running' ELSE 'scheduled' END"
)
# Text columns are read as blobs and decoded per row, so that one row of bytes that are no UTF-8
# does not fail the whole read; the last column says whether the row can be read (see _junk).
# The worker is the lease's owner while it runs, else the owner of its last run (the worker
# column, since layout 8).
RECORD = (
    f"SELECT i.id, CAST(q.name AS BLOB), CAST(i.task AS BLOB), {STATUS}, i.priority, i.payload, "
    "i.deliveries, i.failures, i.created_at, i.started_at, i.finished_at, i.result, "
    "CAST(i.error AS BLOB), CAST(i.progress AS BLOB), "
    f"({SOUND_ROW}), "  # its columns are baozi_items' alone: none is named as one of q's
    f"CAST(i.unique_key AS BLOB), i.on_dep_failure, {LINKS}, i.due, "
    "CAST(CASE WHEN i.state = 1 AND i.due > :now THEN i.owner ELSE i.worker END AS BLOB) "
    "FROM baozi_items i JOIN baozi_queues q ON q.id = i.qid"
)
FILTERS = {  # status -> condition on the row, for listing
    "waiting": "(i.state = 3)",
    "queued": "(i.state = 0 OR (i.state > 0 AND i.state < 3 AND i.due <= :now))",
    "running": "(i.state = 1 AND i.due > :now)",
    "scheduled": "(i.state = 2 AND i.due > :now)",
    "succeeded": "(i.state < 0 AND i.outcome = 'succeeded')",
    "failed": "(i.state < 0 AND i.outcome = 'failed')",
    "cancelled": "(i.state < 0 AND i.outcome = 'cancelled')",
}


def record_of(row: Any) -> JobRecord:
    """A record from a row of RECORD; raises ValueError or TypeError for a row of junk."""
    if not row[14]:
        raise TypeError("a column holds a value of the wrong type")
    name, task, error, progress, unique_key = (text(row[i]) for i in (1, 2, 12, 13, 15))
    if name is None or task is None:
        raise TypeError("no queue or task name")
    parents, children = links(row[17], row[18])
    return JobRecord(
        id=str(row[0]),
        queue=name,
        task=task,
        status=row[3],
        priority=row[4],
        payload=row[5],
        attempts=row[6],
        failures=row[7],
        created_at=row[8],
        started_at=row[9],
        finished_at=row[10],
        result=row[11],
        error=error,
        progress=progress,
        unique_key=unique_key,
        parents=parents,
        children=children,
        on_dependency_failure=row[16] or "cancel",
        due_at=float(row[19]) if row[3] == "scheduled" else None,
        worker=text(row[20]),
    )


def page_where(
    params: dict[str, Any],
    status: str | None,
    task: str | None,
    since: float | None,
    until: float | None,
    search: str | None,
    cursor: str | None,
) -> list[str]:
    """The conditions of a page of ``records_page`` on a row i (the queue's aside), with their
    parameters put in ``params``. The order key is the row's id: a keyset on the primary key."""
    where = ["i.task IS NOT NULL"]
    below = key_of(cursor)
    if below is not None:
        where.append("i.id < :below")
        params["below"] = below
    if status is not None:
        where.append(FILTERS[status])
    if task is not None:
        where.append("i.task = :task")
        params["task"] = task
    if since is not None:
        where.append("i.created_at >= :since")
        params["since"] = float(since)
    if until is not None:
        where.append("i.created_at < :until")
        params["until"] = float(until)
    if search is not None:
        # lower() folds ASCII letters only, as fold() does (SQLite without ICU).
        where.append("(i.id = :sid OR instr(lower(i.task), :needle) > 0)")
        params.update(sid=item_number(search), needle=fold(search))
    return where


# The oldest ready job of queue :qid: rows are numbered as they are added, so it is the
# lowest-numbered job among the first of each line. Per priority, the back pushes' first
# stretch of the line holds the first of them, and the front pushes (each its own seq, minus
# its id) the one with the highest seq; a lease or schedule that has run out is read through
# the index of due times. Each part reads a stretch or an index range, never the whole line.
OLDEST_READY = """
SELECT min(c) FROM (
  SELECT (SELECT min(i.created_at) FROM baozi_items i WHERE i.qid = :qid AND i.state = 0
          AND i.priority = l.priority AND i.seq = 0
          AND i.id BETWEEN l.blk * 256 AND l.blk * 256 + 255 AND i.task IS NOT NULL) AS c
  FROM (SELECT priority, min(blk) AS blk FROM baozi_line WHERE qid = :qid AND seq = 0
        GROUP BY priority) AS l
  UNION ALL
  SELECT (SELECT min(i.created_at) FROM baozi_items i WHERE i.qid = :qid AND i.state = 0
          AND i.priority = l.priority AND i.seq = l.seq AND i.task IS NOT NULL)
  FROM (SELECT priority, max(seq) AS seq FROM baozi_line WHERE qid = :qid AND seq < 0
        GROUP BY priority) AS l
  UNION ALL
  SELECT min(created_at) FROM baozi_items
  WHERE qid = :qid AND state > 0 AND state < 3 AND due <= :now AND task IS NOT NULL
)
"""


class SQLiteRecords(SQLiteCoordination):
    """Records read, and listed, from the rows of baozi_items."""

    def _records(self, rows: list[Any]) -> list[JobRecord]:
        """Records from rows of RECORD; a row that cannot be read is moved aside."""
        out, bad = [], []
        for row in rows:
            try:
                out.append(record_of(row))
            except (ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
                bad.append((row[0], f"{type(exc).__name__}: {exc}"))
        for num, reason in bad:
            self._move("baozi_items", "id", [num], reason)
        return out

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
        params: dict[str, Any] = {"now": time.time(), "limit": limit + 1}
        where = page_where(params, status, task, since, until, search, cursor)
        if queue is not None:  # with the index of (qid, id) since layout 8
            where.append("i.qid = :qid")
            params["qid"] = self._rqid(queue)
        sql = f"{RECORD} WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT :limit"
        rows = self._read(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        # The cursor is the last row read, kept even when that row is moved aside as junk.
        return self._records(rows), cursor_of(rows[-1][0]) if more else None

    def oldest_ready(self, queues: Sequence[str]) -> dict[str, float]:
        qids = {q: qid for q in dict.fromkeys(queues) if (qid := self._db.find_qid(q))}
        if not qids:
            return {}
        out: dict[str, float] = {}
        now = time.time()
        conn = self._conn
        try:
            conn.execute("BEGIN")  # one read transaction: one moment for every queue
            try:
                for name, qid in qids.items():
                    ((oldest,),) = conn.execute(OLDEST_READY, {"qid": qid, "now": now})
                    if oldest is not None:
                        out[name] = float(oldest)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        return out

    def running_jobs(self, queues: Sequence[str]) -> dict[str, list[str]]:
        qids = [q for q in map(self._db.find_qid, set(queues)) if q is not None]
        if not qids:
            return {}
        held: dict[str, list[str]] = {}
        for owner, num in self._read(
            f"SELECT owner, id FROM baozi_items WHERE qid IN ({','.join('?' * len(qids))}) "
            "AND state>0 AND state=1 AND due>?",  # state>0: see lease_holders
            (*qids, time.time()),
        ):
            if owner is not None:
                held.setdefault(owner, []).append(str(num))
        return held
