"""The deque operations of the SQLite store: ``rotate`` and ``splice``, each one transaction.

A ready item's place is its key ``(priority, seq, id)``: a back push has seq 0 and the next id, a
front push seq = -(its own id). An item moves to either end as a new row made the same way, a
copy of every column but the id, and its old row is deleted; only the moved rows are written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ._junk import SOUND_ROW

__all__ = [
    "NEXT_ID_NEGATED",
    "ORDER",
    "ORDER_DESC",
    "delete_rows",
    "insert_payloads",
    "ready_count",
    "ready_ids",
    "ready_rows",
    "to_end",
]

ORDER = "priority, seq, id"
ORDER_DESC = "priority DESC, seq DESC, id DESC"
NEXT_ID_NEGATED = (
    "-(SELECT coalesce(max(seq), 0) + 1 FROM sqlite_sequence WHERE name='baozi_items')"
)
"""The seq of a row pushed to the front: minus the id the insert is about to take."""
_KEPT = (
    "qid, state, priority, due, owner, deliveries, payload, task, created_at, started_at, "
    "finished_at, expires_at, failures, outcome, result, error, progress, unique_key, "
    "unique_while, unique_for, on_dep_failure, has_children, worker"
)
# The copy is marked counted: a job's enqueue was counted when it was first added.
_COPY = (
    f"INSERT INTO baozi_items (seq, counted, {_KEPT}) "
    f"SELECT {{seq}}, CASE WHEN task IS NULL THEN counted ELSE 1 END, {_KEPT} "
    "FROM baozi_items WHERE id=?"
)
_COPY_TO = {True: _COPY.format(seq=NEXT_ID_NEGATED), False: _COPY.format(seq=0)}
_INSERT = {
    front: "INSERT INTO baozi_items (qid, state, priority, seq, payload) "
    f"VALUES (?, 0, 0, {NEXT_ID_NEGATED if front else 0}, ?)"
    for front in (True, False)
}
_READY = f"FROM baozi_items WHERE qid=? AND state=0 AND {SOUND_ROW}"


def ready_count(conn: sqlite3.Connection, qid: int, limit: int | None) -> int:
    """How many ready items the queue holds, counting no further than ``limit``."""
    (n,) = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 {_READY} LIMIT ?)", (qid, -1 if limit is None else limit)
    ).fetchone()
    return int(n)


def ready_rows(conn: sqlite3.Connection, qid: int, n: int, *, back: bool = False) -> list[Any]:
    """(id, payload, priority, deliveries) of the first ``n`` ready items (or, with ``back``, the
    last ``n``), in key order."""
    if n <= 0:
        return []
    rows = conn.execute(
        f"SELECT id, payload, priority, deliveries {_READY} "
        f"ORDER BY {ORDER_DESC if back else ORDER} LIMIT ?",
        (qid, n),
    ).fetchall()
    return rows[::-1] if back else rows


def ready_ids(conn: sqlite3.Connection, qid: int, n: int, *, back: bool = False) -> list[int]:
    return [r[0] for r in ready_rows(conn, qid, n, back=back)]


def to_end(conn: sqlite3.Connection, ids: Sequence[int], *, front: bool) -> None:
    """Move the rows ``ids`` (in key order) to the front or the back, keeping their order."""
    copy = _COPY_TO[front]
    for row_id in reversed(ids) if front else ids:
        conn.execute(copy, (row_id,))
    delete_rows(conn, ids)


def insert_payloads(
    conn: sqlite3.Connection, qid: int, payloads: Sequence[bytes], *, front: bool
) -> None:
    """Add new ready items, in order, at the front or the back."""
    conn.executemany(
        _INSERT[front], [(qid, p) for p in (reversed(payloads) if front else payloads)]
    )


def delete_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    conn.executemany("DELETE FROM baozi_items WHERE id=?", [(i,) for i in ids])
