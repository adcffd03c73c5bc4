"""The statement that ends runs: finished jobs move to ``done`` with their outcome, counted per
task, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._rows import item_number
from ..base import Outcome
from ._statements import RESERVE_STEPS

FINISH = """
WITH o AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(results)s::bytea[],
                         %(errors)s::text[]) AS o(id, status, result, error)
), m AS (
    DELETE FROM {s}.items i USING o
    WHERE i.id = o.id AND i.owner = %(owner)s AND i.state IN (0, 1)
    RETURNING i.*, o.status, o.result AS res, o.error AS err
), ins AS (
    INSERT INTO {s}.done (id, qid, task, outcome, priority, pfloat, seq, payload, deliveries,
        failures, created_at, started_at, finished_at, expires_at, result, error, progress)
    SELECT id, qid, task, status, priority, pfloat, seq, payload, deliveries,
        failures + (status = 'failed')::int, created_at, started_at, {s}.now(),
        {s}.now() + %(ttl)s, res, err, progress
    FROM m
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT qid, task, status, pg_backend_pid(), count(*) FROM m
    WHERE task IS NOT NULL GROUP BY qid, task, status
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)
SELECT count(*), {signal} FROM m
"""


def finish_params(owner: str, finished: Sequence[Outcome], ttl: float) -> dict[str, Any]:
    """The parameters of :data:`FINISH` for runs that ended (succeeded or failed)."""
    keep = [(n, o) for o in finished if (n := item_number(o.id)) is not None]
    return {
        "ids": [n for n, _ in keep],
        "statuses": [o.status for _, o in keep],
        "results": [o.result for _, o in keep],
        "errors": [o.error for _, o in keep],
        "owner": owner,
        "ttl": float(ttl),
    }


# A worker's turn in one statement: FINISH's runs end, and the head of the queue is leased to the
# same owner (never one of the jobs it is settling), returned as one row of arrays. The two
# parts change different rows of ``items``, and their totals go to different rows of ``totals``.
SETTLE_AND_RESERVE = f"""
{FINISH.rsplit("SELECT count(*)", 1)[0].rstrip()},
{RESERVE_STEPS.replace("{skip}", " AND id <> ALL(%(ids)s::bigint[])")}
SELECT (SELECT count(*) FROM m), (SELECT {{signal}}),
    array_agg(id), array_agg(payload), array_agg(priority), array_agg(pfloat),
    array_agg(deliveries), array_agg(task), array_agg(failures), array_agg(seq)
FROM r
"""
