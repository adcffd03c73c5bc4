"""``enqueue_across`` on PostgreSQL: groups of plain jobs filed into their queues in one
transaction, with their ranks read before it commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import psycopg

from .._across import Group, bounded, over
from ._statements import INSERT, RANK, READY

# The insert of one group, ready at the back, telling its ids and their created_at (now() is the
# statement's time, the one its rows were written with); the signal is sent once, at the end.
_INSERT = INSERT.replace("{signal}", "{s}.now()")

# The ready rows of queue %(qid)s of priority %(p)s at the back (seq 0) with ids from %(lo)s to
# %(hi)s, in line order: those marked ready and those whose lease or delay ran out, each through
# its own index.
_WALK = """
SELECT id FROM (
    SELECT id FROM {s}.items WHERE qid = %(qid)s AND state = 0 AND priority = %(p)s
        AND seq = 0 AND id BETWEEN %(lo)s AND %(hi)s
    UNION ALL
    SELECT id FROM {s}.items WHERE qid = %(qid)s AND state > 0 AND due <= {s}.now()
        AND priority = %(p)s AND seq = 0 AND id BETWEEN %(lo)s AND %(hi)s
) AS r ORDER BY id
"""

_MARKS = (
    "INSERT INTO {s}.marks (item, qid, at) SELECT x, %s, %s FROM unnest(%s::bigint[]) AS x "
    "ON CONFLICT (item) DO UPDATE SET at = excluded.at"
)


def file_groups(
    conn: psycopg.Connection[Any],
    sql: Callable[[str], str],
    groups: Sequence[Group],
    params: Sequence[dict[str, Any]],
    pending: float | None,
) -> tuple[list[list[str]], list[float], dict[int, int]]:
    """File every group (its insert parameters in ``params``) in the caller's transaction, all
    or none: the ids of each, when each was created, and the rank of every job after the last.
    Raises Full before the first write. The bounded queues are locked (to the commit) in the
    order of their ids, so that two calls naming the same queues cannot deadlock."""
    qid_of = {q: p["qid"] for (q, jobs, _), p in zip(groups, params, strict=True) if jobs}
    held = {}
    for queue in sorted(bounded(groups), key=qid_of.__getitem__):
        qid = qid_of[queue]
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x62616F, qid))
        (held[queue],) = conn.execute(f"SELECT {sql(READY)}", {"qid": qid}).fetchone() or (0,)
    error = over(groups, held)
    if error is not None:
        raise error
    filed: list[list[str]] = []
    created: list[float] = []
    for p in params:
        if not p["payloads"]:
            filed.append([])
            created.append(0.0)
            continue
        ids, at = conn.execute(sql(_INSERT), p).fetchone() or ([], 0.0)
        filed.append([str(i) for i in ids])
        created.append(float(at))
    nums: dict[int, list[int]] = {}
    for p, ids in zip(params, filed, strict=True):
        nums.setdefault(p["qid"], []).extend(map(int, ids))
    if pending is not None:
        for qid, made in nums.items():
            conn.execute(sql(_MARKS), (qid, float(pending), made))
    ranks = {}
    for p, ids in zip(params, filed, strict=True):
        for prio, members in _by_priority(p["prios"], ids).items():
            ranks.update(_ranks(conn, sql, p["qid"], prio, members))
    conn.execute(sql("SELECT {s}.signal()"))
    return filed, created, ranks


def _by_priority(prios: Sequence[Decimal], ids: Sequence[str]) -> dict[Decimal, list[int]]:
    out: dict[Decimal, list[int]] = {}
    for prio, job_id in zip(prios, ids, strict=True):
        out.setdefault(prio, []).append(int(job_id))
    return out


def _ranks(
    conn: psycopg.Connection[Any],
    sql: Callable[[str], str],
    qid: int,
    prio: Decimal,
    members: list[int],
) -> dict[int, int]:
    """The ranks of rows of one queue and one priority filed at the back: the ready rows ahead
    of the first (one count, as a job's place counts them), then a walk to the last of them --
    a short one, as only rows filed meanwhile by others lie between."""
    lo, hi = min(members), max(members)
    row = conn.execute(sql(RANK), {"id": lo, "qid": qid}).fetchone()
    if row is None:
        return {}
    ahead = int(row[2])
    wanted = set(members)
    walk = conn.execute(sql(_WALK), {"qid": qid, "p": prio, "lo": lo, "hi": hi})
    return {num: ahead + k for k, (num,) in enumerate(walk) if num in wanted}
