"""The statements that end runs: finished jobs move to ``done`` with their outcome, counted per
task, in one statement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._rows import item_number
from ..base import Outcome
from ._statements import RESERVE_STEPS

# How long a record whose row is ``{x}`` is kept past its end, ``{ttl}`` being its time to live:
# at least its unique_for when it has a unique key (kept_for); a unique_for that is no number
# baozi writes (NaN, negative) counts as none.
KEPT = (
    "CASE WHEN {x}.unique_key IS NOT NULL AND {x}.unique_for > {ttl} "
    "AND {x}.unique_for <> 'NaN' THEN {x}.unique_for ELSE {ttl} END"
)

# Runs ending, as CTEs ``o`` (the outcomes), ``m`` (the rows moved) and ``ins``/``tot``;
# ``{guard}`` is where the one-statement settle leaves jobs with dependents alone.
_FINISH_STEPS = """o AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(results)s::bytea[],
                         %(errors)s::text[]) AS o(id, status, result, error)
), m AS (
    DELETE FROM {s}.items i USING o
    WHERE i.id = o.id AND i.owner = %(owner)s AND i.state IN (0, 1){guard}
    RETURNING i.*, o.status, o.result AS res, o.error AS err
), ins AS (
    INSERT INTO {s}.done (id, qid, task, outcome, priority, pfloat, seq, payload, deliveries,
        failures, created_at, started_at, finished_at, expires_at, result, error, progress,
        unique_key, unique_while, unique_for, on_dep, worker)
    SELECT id, qid, task, status, priority, pfloat, seq, payload, deliveries,
        failures + (status = 'failed')::int, created_at, started_at, {s}.now(),
        {s}.now() + KEPT, res, err, progress, unique_key, unique_while, unique_for, on_dep,
        owner
    FROM m
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT qid, task, status, pg_backend_pid(), count(*) FROM m
    WHERE task IS NOT NULL GROUP BY qid, task, status
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)""".replace(
    "KEPT",
    KEPT.format(x="m", ttl="CASE WHEN m.status = 'failed' THEN %(failed_ttl)s ELSE %(ttl)s END"),
)

# Jobs that others depend on are left to FINISH_PARENTS: a job marked after this statement began
# is seen marked when its row is deleted (the row's newest version is checked again).
FINISH = f"""
WITH {_FINISH_STEPS.replace("{guard}", " AND NOT i.kids")}
SELECT count(*), {{signal}} FROM m
"""
# In a transaction that releases their dependents next (see ``_workflow.release``).
FINISH_PARENTS = f"""
WITH {_FINISH_STEPS.replace("{guard}", "")}
SELECT id, status, kids FROM m
"""


def finish_params(
    owner: str, finished: Sequence[Outcome], ttl: float, failed_ttl: float = math.inf
) -> dict[str, Any]:
    """The parameters of :data:`FINISH` for runs that ended (succeeded or failed)."""
    # In id order, as an enqueue locks the jobs it depends on: neither waits on the other twice.
    keep = sorted(
        ((n, o) for o in finished if (n := item_number(o.id)) is not None), key=lambda k: k[0]
    )
    return {
        "ids": [n for n, _ in keep],
        "statuses": [o.status for _, o in keep],
        "results": [o.result for _, o in keep],
        "errors": [o.error for _, o in keep],
        "owner": owner,
        "ttl": float(ttl),
        "failed_ttl": float(failed_ttl),
    }


# A worker's turn in one statement: FINISH's runs end, and the head of the queue is leased to the
# same owner (never one of the jobs it is settling), returned as one row of arrays. The two
# parts change different rows of ``items``, and their totals go to different rows of ``totals``.
# Jobs with dependents are left out, as by FINISH (the caller settles them on its own after).
SETTLE_AND_RESERVE = f"""
WITH {_FINISH_STEPS.replace("{guard}", " AND NOT i.kids")},
{RESERVE_STEPS.replace("{skip}", " AND id <> ALL(%(ids)s::bigint[])")}
SELECT (SELECT count(*) FROM m), (SELECT {{signal}}),
    array_agg(id), array_agg(payload), array_agg(priority), array_agg(pfloat),
    array_agg(deliveries), array_agg(task), array_agg(failures), array_agg(seq)
FROM r
"""
