"""Unique keys and dependencies in an SQLite store: filing jobs that have them, and releasing
(or cancelling, or failing) the jobs that depend on a job as it ends.

Every function here runs inside the caller's write transaction (``BEGIN IMMEDIATE``), which
serializes the writers of the file: a unique key is looked up and taken in one step, and the step
that ends a job releases its dependents before it commits.

A job with dependencies has a row in ``baozi_deps`` per job it depends on, ``done`` once that
job's end was counted for it; it is waiting (state 3) while one is not done. A job that others
depend on has ``has_children`` set, so that a trigger notes it in ``baozi_ended`` as it ends;
:func:`release` empties that note, and handles what each dependent's policy says.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from ...errors import JobNotFound
from .._rows import item_number
from ..base import (
    ON_DEPENDENCY_FAILURE,
    UNIQUE_WHILE,
    Deduplicated,
    NewJob,
    dependency_error,
    unique_holds,
)
from ._junk import SOUND_ROW

__all__ = [
    "KEPT_FOR",
    "LINKS",
    "EnqueueTerms",
    "check",
    "drop_links",
    "file_jobs",
    "links",
    "release",
]

READY, SCHEDULED, WAITING = 0, 2, 3
ENQUEUE_TTL = 86400.0
"""How long the record of a job cancelled as it is enqueued is kept (a dependency of it had
already failed or been cancelled): enqueue takes no time to live; this is the default one."""

KEPT_FOR = "iif(unique_key IS NULL, {ttl}, max({ttl}, unique_for))"
"""SQL for how long a finished row's record is kept (see ``kept_for``), given its ``ttl``."""

_INSERT = (
    "INSERT INTO baozi_items (qid, state, priority, seq, due, payload, task, created_at, "
    "unique_key, unique_while, unique_for, on_dep_failure) VALUES "
    "(?1, ?2, ?3, {seq}, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
)
_SEQ_FRONT = "-(SELECT coalesce(max(seq), 0) + 1 FROM sqlite_sequence WHERE name='baozi_items')"
_HOLDERS = (
    "SELECT id, state, outcome, due, finished_at, unique_while, unique_for FROM baozi_items "
    f"WHERE unique_key=? AND task IS NOT NULL AND {SOUND_ROW} ORDER BY id"
)
_END = (  # a waiting job cancelled or failed because of a job it depends on
    "UPDATE baozi_items SET state=-1, outcome=:outcome, error=:error, finished_at=:now, "
    f"expires_at=:now + {KEPT_FOR.format(ttl=':ttl')}, due=NULL, owner=NULL "
    "WHERE id=:id AND state=3"
)
_READY = (  # a waiting job whose dependencies are all done: ready, or scheduled for its delay
    "UPDATE baozi_items SET state=iif(due > :now, 2, 0), due=iif(due > :now, due, NULL) "
    "WHERE id=:id AND state=3 AND NOT EXISTS "
    "(SELECT 1 FROM baozi_deps WHERE child=:id AND done=0)"
)


LINKS = (  # a row's dependencies and dependents, read only for a row that has them
    "CASE WHEN i.on_dep_failure IS NOT NULL THEN (SELECT json_group_array(json_array(d.pos, "
    "d.parent)) FROM baozi_deps d WHERE d.child = i.id AND typeof(d.parent) = 'integer') END, "
    "CASE WHEN i.has_children = 1 THEN (SELECT json_group_array(d.child) FROM baozi_deps d "
    "JOIN baozi_items c ON c.id = d.child WHERE d.parent = i.id AND c.task IS NOT NULL) END"
)
"""Two columns of a select from ``baozi_items i``, for :func:`links`."""


class EnqueueTerms(NamedTuple):
    """Where and when the jobs of one :meth:`enqueue` go."""

    qid: int
    front: bool
    due: float | None
    now: float


def check(jobs: Sequence[NewJob]) -> None:
    """Refuse terms no store knows, before anything is written."""
    for job in jobs:
        if job.unique_while not in UNIQUE_WHILE:
            raise ValueError(f"unique_while={job.unique_while!r}: use one of {UNIQUE_WHILE}")
        if job.on_dependency_failure not in ON_DEPENDENCY_FAILURE:
            raise ValueError(
                f"on_dependency_failure={job.on_dependency_failure!r}: "
                f"use one of {ON_DEPENDENCY_FAILURE}"
            )


def file_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], terms: EnqueueTerms) -> list[str]:
    """Insert the jobs, each unless a job holds its unique key (then that job's id, as a
    :class:`Deduplicated`); raise JobNotFound, having written nothing, if one depends on an id
    the store holds no job for."""
    ended = _dependencies(conn, jobs)
    insert = _INSERT.format(seq=_SEQ_FRONT if terms.front else "0")
    ids: list[str] = []
    for job in jobs:
        held = _holder(conn, job.unique_key, terms.now) if job.unique_key is not None else None
        if held is not None:
            ids.append(Deduplicated(held))
            continue
        parents = [item_number(p) or 0 for p in job.depends_on]
        waits = any(ended[p] is None for p in parents)
        failed = [(p, ended[p]) for p in parents if ended[p] in ("failed", "cancelled")]
        ends = bool(failed) and job.on_dependency_failure != "run"
        state = WAITING if waits or ends else SCHEDULED if terms.due is not None else READY
        unique = job.unique_key is not None
        cur = conn.execute(
            insert,
            (
                terms.qid,
                state,
                job.priority,
                terms.due,
                job.payload,
                job.task,
                terms.now,
                job.unique_key,
                job.unique_while if unique else None,
                job.unique_for if unique else None,
                job.on_dependency_failure if parents else None,
            ),
        )
        child = int(cur.lastrowid or 0)
        ids.append(str(child))
        if parents:
            _link(conn, child, parents, ended)
        if ends:
            parent, how = failed[0]
            _end(conn, child, job.on_dependency_failure, parent, str(how), terms.now, ENQUEUE_TTL)
    return ids


def _dependencies(conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> dict[int, str | None]:
    """How each job the jobs depend on ended (None: it has not), by row id; JobNotFound names
    the first id the store holds no job for."""
    wanted = {p: item_number(p) for job in jobs for p in job.depends_on}
    nums = sorted({n for n in wanted.values() if n is not None})
    ended: dict[int, str | None] = {}
    for start in range(0, len(nums), 5000):
        chunk = nums[start : start + 5000]
        for num, state, outcome in conn.execute(
            f"SELECT id, state, outcome FROM baozi_items WHERE task IS NOT NULL "
            f"AND id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            ended[num] = str(outcome) if isinstance(state, int) and state < 0 else None
    for job in jobs:
        for parent in job.depends_on:
            num = wanted[parent]
            if num is None or num not in ended:
                raise JobNotFound(
                    f"a job of task {job.task!r} depends on {parent!r}, and the store holds no "
                    f"job with that id; nothing was enqueued"
                )
    return ended


def _holder(conn: sqlite3.Connection, key: str, now: float) -> str | None:
    """The id of the first job that holds the unique key, if one does."""
    for num, state, outcome, due, finished_at, unique_while, unique_for in conn.execute(
        _HOLDERS, (key,)
    ):
        status = _status(state, outcome, due, now)
        if unique_holds(unique_while, unique_for, status, finished_at, now):
            return str(num)
    return None


def _status(state: int, outcome: str | None, due: float | None, now: float) -> str:
    """A job's status, as far as a unique key cares (before it runs, it is "queued")."""
    if state < 0:
        return str(outcome)
    if state == 1 and due is not None and due > now:
        return "running"
    return "queued"


def _link(
    conn: sqlite3.Connection, child: int, parents: list[int], ended: dict[int, str | None]
) -> None:
    """Record what ``child`` depends on: a dependency that has ended is counted (done) at once."""
    conn.executemany(
        "INSERT INTO baozi_deps (child, parent, pos, done) VALUES (?, ?, ?, ?)",
        [(child, p, pos, int(ended[p] is not None)) for pos, p in enumerate(parents)],
    )
    conn.executemany(
        "UPDATE baozi_items SET has_children=1 WHERE id=? AND has_children=0",
        [(p,) for p in sorted(set(parents))],
    )


def _end(
    conn: sqlite3.Connection,
    child: int,
    policy: str,
    parent: int,
    how: str,
    now: float,
    ttl: float,
) -> None:
    """Cancel (``policy`` "cancel") or fail ("fail") a waiting job because ``parent`` ended
    ``how``; it notes its own end for its dependents, if it has any."""
    failed = policy == "fail"
    conn.execute(
        _END,
        {
            "outcome": "failed" if failed else "cancelled",
            "error": dependency_error(str(parent), how) if failed else None,
            "now": now,
            "ttl": ttl,
            "id": child,
        },
    )


def release(conn: sqlite3.Connection, now: float, ttl: float, failed_ttl: float) -> None:
    """Handle the dependents of every job noted in ``baozi_ended``, and of those they end in
    turn: a job that succeeded (or a dependent whose policy is "run") counts as done, and a
    dependent with nothing left to wait for is ready (scheduled, while its delay runs); else
    the dependent is cancelled (kept ``ttl``) or failed (kept ``failed_ttl``)."""
    while ended := conn.execute("DELETE FROM baozi_ended RETURNING parent, outcome").fetchall():
        for parent, how in ended:
            counted = conn.execute(
                "UPDATE baozi_deps SET done=1 WHERE parent=? AND done=0 RETURNING child",
                (parent,),
            ).fetchall()
            children = sorted({child for (child,) in counted if isinstance(child, int)})
            for child, policy in _waiting(conn, children):
                if how == "succeeded" or policy == "run":
                    conn.execute(_READY, {"now": now, "id": child})
                else:
                    kept = failed_ttl if policy == "fail" else ttl
                    _end(conn, child, str(policy), parent, str(how), now, kept)


def _waiting(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Any]:
    """(id, on_dep_failure) of those of the jobs that are waiting."""
    rows: list[Any] = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows += conn.execute(
            f"SELECT id, on_dep_failure FROM baozi_items WHERE state=3 "
            f"AND id IN ({','.join('?' * len(chunk))}) ORDER BY id",
            chunk,
        ).fetchall()
    return rows


def links(parents: str | None, children: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ids of the jobs a job depends on (in the order given) and of the jobs the store holds
    that depend on it (oldest first), from the columns of :data:`LINKS`."""
    ups = sorted(
        (pos, p)
        for pos, p in json.loads(parents or "[]")
        if isinstance(pos, int) and isinstance(p, int)
    )
    downs = sorted({c for c in json.loads(children or "[]") if isinstance(c, int)})
    return tuple(str(p) for _, p in ups), tuple(map(str, downs))


def drop_links(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> None:
    """Delete what the rows of ``baozi_items`` that match ``where`` depend on, before the rows go
    (what depends on them stays: their dependents' lists of parents keep their ids)."""
    if conn.execute("SELECT 1 FROM baozi_deps LIMIT 1").fetchone():  # none: spare the lookup
        conn.execute(
            f"DELETE FROM baozi_deps WHERE child IN (SELECT id FROM baozi_items WHERE {where})",
            tuple(params),
        )
