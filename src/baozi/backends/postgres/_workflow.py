"""Unique keys and dependencies in the PostgreSQL store: the enqueue that looks for a key's holder
and files dependents, and the release of dependents in the transaction that ends their parents.

Every function here runs inside a transaction its caller opened on ``conn``; ``sql`` fills in the
schema (``PostgresQueues.sql``).

* **Unique keys.** An enqueue takes a transaction-scoped advisory lock on each of its keys (in
  one order, so two enqueues never wait on each other in a circle), then reads every job with
  the key -- each statement of a READ COMMITTED transaction sees what committed before it began,
  so the last holder of the lock's job is seen -- and keeps the lock until it commits.
* **Dependencies.** An enqueue marks each live parent's row (``kids``), which locks it until the
  enqueue commits. A settle or cancel deletes the parent's row: one that began first makes the
  enqueue wait and then find the parent in ``done``, ended; one that began later waits for the
  enqueue and sees the mark on the row's newest version. The one-statement settle leaves marked
  jobs alone (``FINISH``), and its caller settles them in a transaction that then releases their
  dependents in statements of their own, which see every dependency committed by then.
  A dependent's count of parents still to end (``pending``) is lowered with its row locked, in id
  order, so of two parents ending at once exactly one sees it reach 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import psycopg

from ...errors import Full, JobNotFound
from .._rows import item_number
from ..base import UNIQUE_WHILE, Deduplicated, NewJob, dependency_error, unique_holds
from ._settle import KEPT
from ._statements import READY, STATUS

__all__ = ["enqueue_jobs", "release"]

Sql = Callable[[str], str]

_UNIQUE_LOCK = 0x756E71  # the advisory lock class of unique keys ('unq')
_QUEUE_LOCK = 0x62616F  # a queue's write lock (as PostgresQueues._make_room takes it)

_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(%s, h) FROM "
    "(SELECT DISTINCT hashtext(k) AS h FROM unnest(%s::text[]) AS k ORDER BY 1) AS x"
)
_HOLDERS = f"""
SELECT unique_key, id, {STATUS}, unique_while, unique_for, NULL::float8, {{s}}.now()
FROM {{s}}.items WHERE unique_key = ANY(%(keys)s) AND task IS NOT NULL
UNION ALL
SELECT unique_key, id, outcome, unique_while, unique_for, finished_at, {{s}}.now()
FROM {{s}}.done WHERE unique_key = ANY(%(keys)s) AND task IS NOT NULL
ORDER BY 2
"""
_MARK_PARENTS = (
    "UPDATE {s}.items SET kids = true WHERE id IN (SELECT id FROM {s}.items "
    "WHERE id = ANY(%s) AND task IS NOT NULL ORDER BY id FOR UPDATE) RETURNING id"
)
_ENDED_PARENTS = "SELECT id, outcome FROM {s}.done WHERE id = ANY(%s) AND task IS NOT NULL"
_INSERT = """
WITH v AS (
    SELECT nextval('{s}.ids') AS id, t.* FROM unnest(
        %(payloads)s::bytea[], %(prios)s::numeric[], %(floats)s::boolean[], %(tasks)s::text[],
        %(states)s::smallint[], %(keys)s::text[], %(whiles)s::text[], %(fors)s::float8[],
        %(on_deps)s::text[], %(pendings)s::integer[]
    ) WITH ORDINALITY AS t(payload, priority, pfloat, task, state, unique_key, unique_while,
                          unique_for, on_dep, pending, ord)
), ins AS (
    INSERT INTO {s}.items (id, qid, state, priority, pfloat, seq, due, payload, task, created_at,
        unique_key, unique_while, unique_for, on_dep, pending)
    SELECT id, %(qid)s, state, priority, pfloat, CASE WHEN %(front)s THEN -id ELSE 0 END,
           CASE WHEN %(delay)s > 0 THEN {s}.now() + %(delay)s END, payload, task, {s}.now(),
           unique_key, unique_while, unique_for, on_dep, pending
    FROM v
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT %(qid)s, task, 'enqueued', pg_backend_pid(), count(*) FROM v GROUP BY task
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)
SELECT array_agg(id ORDER BY ord) FROM v
"""
_INSERT_DEPS = (
    "INSERT INTO {s}.deps SELECT * FROM "
    "unnest(%s::bigint[], %s::bigint[], %s::integer[], %s::boolean[])"
)
# Dependencies on jobs that just ended, no longer waited for: (child, parent, pos).
_CONSUME = (
    "UPDATE {s}.deps SET waiting = false WHERE parent = ANY(%s) AND waiting "
    "RETURNING child, parent, pos"
)
_LOCK_WAITING = "SELECT id FROM {s}.items WHERE id = ANY(%s) AND state < 0 ORDER BY id FOR UPDATE"
_COUNT_DOWN = """
UPDATE {s}.items c SET pending = c.pending - h.n
FROM unnest(%s::bigint[], %s::integer[]) AS h(id, n)
WHERE c.id = h.id AND c.state < 0
RETURNING c.id, c.pending, c.on_dep
"""
# Ready, or scheduled while the delay it was enqueued with has not passed.
_RELEASE = (
    "UPDATE {s}.items SET state = CASE WHEN due > {s}.now() THEN 2 ELSE 0 END, "
    "due = CASE WHEN due > {s}.now() THEN due END WHERE id = ANY(%s) AND state < 0"
)
_END = """
WITH o AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(outcomes)s::text[], %(errors)s::text[])
        AS o(id, outcome, error)
), m AS (
    DELETE FROM {s}.items i USING o WHERE i.id = o.id AND i.state < 0
    RETURNING i.*, o.outcome AS how, o.error AS err
), ins AS (
    INSERT INTO {s}.done (id, qid, task, outcome, priority, pfloat, seq, payload, deliveries,
        failures, created_at, started_at, finished_at, expires_at, error, progress,
        unique_key, unique_while, unique_for, on_dep)
    SELECT id, qid, task, how, priority, pfloat, seq, payload, deliveries, failures, created_at,
        started_at, {s}.now(), {s}.now() + KEPT, coalesce(err, error), progress,
        unique_key, unique_while, unique_for, on_dep
    FROM m
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT qid, task, how, pg_backend_pid(), count(*) FROM m
    WHERE task IS NOT NULL GROUP BY qid, task, how
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)
SELECT id, how, kids FROM m
""".replace(
    "KEPT",
    KEPT.format(x="m", ttl="CASE WHEN m.how = 'failed' THEN %(failed_ttl)s ELSE %(ttl)s END"),
)


def _holders(conn: psycopg.Connection[Any], sql: Sql, jobs: Sequence[NewJob]) -> dict[str, str]:
    """Lock the unique keys of ``jobs`` to the end of the transaction; the job holding each
    (the oldest, when several do)."""
    keys = sorted({j.unique_key for j in jobs if j.unique_key is not None})
    if not keys:
        return {}
    conn.execute(_LOCK_KEYS, (_UNIQUE_LOCK, keys))
    holders: dict[str, str] = {}
    for key, num, status, held_while, held_for, finished_at, now in conn.execute(
        sql(_HOLDERS), {"keys": keys}
    ):
        if key in holders:
            continue
        # A value baozi does not write counts as the default.
        held_while = held_while if held_while in UNIQUE_WHILE else "queued_or_running"
        if not (isinstance(held_for, float) and held_for >= 0):  # NaN, negative, NULL
            held_for = 0.0
        if unique_holds(held_while, held_for, status, finished_at, now):
            holders[key] = str(num)
    return holders


def _parents(
    conn: psycopg.Connection[Any], sql: Sql, jobs: Sequence[NewJob], where: str
) -> dict[str, str | None]:
    """Each job id ``jobs`` depend on: how it ended, or None when it has not (its row marked
    and locked to the end of the transaction). JobNotFound for an id with no job."""
    ids = list(dict.fromkeys(p for j in jobs for p in j.depends_on))
    if not ids:
        return {}
    nums: dict[int, str] = {}
    for job_id in ids:
        num = item_number(job_id)
        if num is None:
            _missing(job_id, where)
        nums[num] = job_id
    ended: dict[int, str | None] = {}
    for _ in range(3):  # a job being requeued meanwhile is in neither table for a moment
        left = sorted(set(nums) - set(ended))
        if not left:
            break
        for (num,) in conn.execute(sql(_MARK_PARENTS), (left,)):
            ended[num] = None
        left = [n for n in left if n not in ended]
        if left:
            ended.update(conn.execute(sql(_ENDED_PARENTS), (left,)).fetchall())
    for num, job_id in nums.items():
        if num not in ended:
            _missing(job_id, where)
    return {nums[num]: outcome for num, outcome in ended.items()}


def _missing(job_id: str, where: str) -> NoReturn:
    raise JobNotFound(
        f"no job {job_id!r} in {where}: a new job depends on it; give the id of a job the "
        "store holds"
    )


def enqueue_jobs(
    conn: psycopg.Connection[Any],
    sql: Sql,
    params: dict[str, Any],
    jobs: Sequence[NewJob],
    *,
    queue: str,
    maxsize: int,
    lock_queue: bool,
    where: str,
) -> list[str]:
    """:meth:`Store.enqueue` of jobs with unique keys or dependencies, in the open transaction
    on ``conn``; ``params`` as ``_insert_params`` makes them for all of ``jobs``. With
    ``lock_queue`` the queue's write lock is taken for the ``maxsize`` check."""
    holders = _holders(conn, sql, jobs)
    ended = _parents(conn, sql, jobs, where)  # raises before anything is filed
    fresh: list[int] = []
    taken: dict[str, int] = {}  # unique key -> the job of this call that holds it
    for i, job in enumerate(jobs):
        key = job.unique_key
        if key is None or (key not in taken and key not in holders):
            fresh.append(i)
            if key is not None:
                taken[key] = i
    if maxsize and fresh:
        if lock_queue:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_QUEUE_LOCK, params["qid"]))
        (held,) = conn.execute(f"SELECT {sql(READY)}", params).fetchone() or (0,)
        if held + len(fresh) > maxsize:
            raise Full(f"queue {queue!r} holds {held} of at most {maxsize} ready items")
    made = _insert(conn, sql, params, jobs, fresh, ended) if fresh else {}
    out: list[str] = []
    for i, job in enumerate(jobs):
        if i in made:
            out.append(made[i])
        else:
            assert job.unique_key is not None
            key = job.unique_key
            out.append(Deduplicated(made[taken[key]] if key in taken else holders[key]))
    return out


def _insert(
    conn: psycopg.Connection[Any],
    sql: Sql,
    params: dict[str, Any],
    jobs: Sequence[NewJob],
    fresh: list[int],
    ended: dict[str, str | None],
) -> dict[int, str]:
    """Insert ``jobs[i]`` for each i of ``fresh`` (waiting, while a parent has not ended), their
    dependencies, and end those a failed parent ends at once; their ids by index."""
    pick = [jobs[i] for i in fresh]
    parents = [list(dict.fromkeys(j.depends_on)) for j in pick]
    pendings = [sum(ended[p] is None for p in ps) for ps in parents]
    doomed: dict[int, tuple[str, str | None]] = {}  # index in pick -> outcome, error
    for k, (job, ps) in enumerate(zip(pick, parents, strict=True)):
        bad = [p for p in ps if ended[p] not in (None, "succeeded")]
        if bad and job.on_dependency_failure != "run":  # ends at once
            fail = job.on_dependency_failure == "fail"
            doomed[k] = _dependency_end(fail, bad[0], str(ended[bad[0]]))
    states = [-1 if pendings[k] or k in doomed else params["state"] for k in range(len(pick))]
    row = conn.execute(
        sql(_INSERT),
        {
            **params,
            **{
                name: [params[name][i] for i in fresh]
                for name in ("payloads", "prios", "floats", "tasks")
            },
            "states": states,
            "keys": [j.unique_key for j in pick],
            "whiles": [j.unique_while for j in pick],
            "fors": [float(j.unique_for) for j in pick],
            "on_deps": [j.on_dependency_failure for j in pick],
            "pendings": [p if ps else None for p, ps in zip(pendings, parents, strict=True)],
        },
    ).fetchone()
    ids: list[int] = list(row[0]) if row else []
    edges = [
        (ids[k], int(p), pos, ended[p] is None)
        for k, ps in enumerate(parents)
        for pos, p in enumerate(ps)
    ]
    if edges:
        conn.execute(sql(_INSERT_DEPS), [list(col) for col in zip(*edges, strict=True)])
    if doomed:  # kept as cancel() keeps them (failed ones until forgotten)
        _end(conn, sql, [(ids[k], *end) for k, end in doomed.items()], 86400.0, math.inf)
    return {i: str(num) for i, num in zip(fresh, ids, strict=True)}


def _dependency_end(fail: bool, parent: str, how: str) -> tuple[str, str | None]:
    """How a job ends whose dependency ``parent`` ended ``how``: its outcome and error."""
    return ("failed", dependency_error(parent, how)) if fail else ("cancelled", None)


def _end(
    conn: psycopg.Connection[Any],
    sql: Sql,
    ends: list[tuple[int, str, str | None]],
    ttl: float,
    failed_ttl: float,
) -> list[tuple[int, str]]:
    """End waiting jobs (id, outcome, error); those others depend on, with their outcome."""
    rows = conn.execute(
        sql(_END),
        {
            "ids": [e[0] for e in ends],
            "outcomes": [e[1] for e in ends],
            "errors": [e[2] for e in ends],
            "ttl": float(ttl),
            "failed_ttl": float(failed_ttl),
        },
    ).fetchall()
    return [(num, how) for num, how, kids in rows if kids]


def release(
    conn: psycopg.Connection[Any],
    sql: Sql,
    ended: list[tuple[int, str]],
    ttl: float,
    failed_ttl: float,
) -> None:
    """Release, cancel or fail the waiting dependents of jobs that ended in this transaction
    (id, outcome), and theirs in turn; the ended ones' records kept ``ttl`` seconds (failed
    ones ``failed_ttl``)."""
    while ended:
        outcome_of = dict(ended)
        edges = conn.execute(sql(_CONSUME), (list(outcome_of),)).fetchall()
        if not edges:
            return
        count: Counter[int] = Counter()
        bad: dict[int, tuple[int, int]] = {}  # child -> (pos, parent) of its first failed one
        for child, parent, pos in edges:
            count[child] += 1
            if outcome_of[parent] != "succeeded" and (child not in bad or pos < bad[child][0]):
                bad[child] = (pos, parent)
        children = sorted(count)
        conn.execute(sql(_LOCK_WAITING), (children,))
        ready: list[int] = []
        ends: list[tuple[int, str, str | None]] = []
        for child, pending, on_dep in conn.execute(
            sql(_COUNT_DOWN), (children, [count[c] for c in children])
        ):
            if child in bad and on_dep != "run":
                parent = bad[child][1]
                ends.append(
                    (child, *_dependency_end(on_dep == "fail", str(parent), outcome_of[parent]))
                )
            elif pending is None or pending <= 0:
                ready.append(child)
        if ready:
            conn.execute(sql(_RELEASE), (ready,))
        ended = _end(conn, sql, ends, ttl, failed_ttl) if ends else []
