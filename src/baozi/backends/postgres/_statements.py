"""The statements on a PostgreSQL store's items that more than one module runs: adding, the ready
count, reserving, promoting what is due, and a position in line.

``{s}`` stands for the store's schema and ``{signal}`` for its change signal; the store fills both
in (see ``PostgresQueues.sql``).
"""

from __future__ import annotations

__all__ = [
    "CLAIM",
    "DROP_MARKS",
    "INSERT",
    "INSERT_ONE",
    "PROMOTE",
    "RANK",
    "READY",
    "RESERVE",
    "RESERVE_STEPS",
    "STATUS",
]

# A live item's job status.
STATUS = (
    "CASE WHEN state < 0 THEN 'waiting' WHEN state = 0 OR due <= {s}.now() THEN 'queued' "
    "WHEN state = 1 THEN 'running' ELSE 'scheduled' END"
)

# A step of a statement whose step ``d`` deletes job records (returning their ids): their
# publish-pending marks go with them.
DROP_MARKS = "k AS (DELETE FROM {s}.marks WHERE item IN (SELECT id FROM d))"

# One insert of items (and, for jobs, their enqueue totals); %(...)s are the parameters.
INSERT = """
WITH v AS (
    SELECT nextval('{s}.ids') AS id, t.* FROM unnest(
        %(payloads)s::bytea[], %(prios)s::numeric[], %(floats)s::boolean[], %(tasks)s::text[]
    ) WITH ORDINALITY AS t(payload, priority, pfloat, task, ord)
), ins AS (
    INSERT INTO {s}.items (id, qid, state, priority, pfloat, seq, due, payload, task, created_at)
    SELECT id, %(qid)s, %(state)s, priority, pfloat, CASE WHEN %(front)s THEN -id ELSE 0 END,
           CASE WHEN %(delay)s > 0 THEN {s}.now() + %(delay)s END, payload, task, {s}.now()
    FROM v
), tot AS (
    INSERT INTO {s}.totals AS x
    SELECT %(qid)s, task, 'enqueued', pg_backend_pid(), count(*) FROM v
    WHERE task IS NOT NULL GROUP BY task
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)
SELECT array_agg(id ORDER BY ord), {signal} FROM v
"""
INSERT_ONE = """
WITH v AS (SELECT nextval('{s}.ids') AS id), ins AS (
    INSERT INTO {s}.items (id, qid, state, priority, pfloat, payload, task, created_at)
    SELECT id, %s, 0, %s, %s, %s, %s, {s}.now() FROM v
), tot AS (
    INSERT INTO {s}.totals AS x VALUES (%s, %s, 'enqueued', pg_backend_pid(), 1)
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + 1
)
SELECT id, {s}.signal() FROM v
"""
# The items of queue %(qid)s that count toward its maxsize: ready ones, counting expired leases
# and due delays (a waiting job, like a scheduled one, is not ready).
READY = (
    "(SELECT coalesce(sum(n), 0) FROM {s}.ready WHERE qid = %(qid)s) + "
    "(SELECT count(*) FROM {s}.items WHERE qid = %(qid)s AND state > 0 AND due <= {s}.now())"
)
# Leasing the rows of queue %(qid)s that CTE ``c`` picks (locked) to %(owner)s, as CTEs ``r``
# (the leased rows) and ``started`` (their totals).
_LEASE_STEPS = """r AS (
    UPDATE {s}.items i SET state = 1, due = {s}.now() + %(lease)s, owner = %(owner)s,
        deliveries = i.deliveries + 1, started_at = {s}.now()
    FROM c WHERE i.id = c.id
    RETURNING i.id, i.payload, i.priority, i.pfloat, i.deliveries, i.task, i.failures, i.seq
), started AS (
    INSERT INTO {s}.totals AS x
    SELECT %(qid)s, task, 'started', pg_backend_pid(), count(*) FROM r
    WHERE task IS NOT NULL GROUP BY task
    ON CONFLICT (qid, task, event, shard) DO UPDATE SET n = x.n + excluded.n
)"""
_UNPAUSED = "NOT EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(qid)s AND paused)"
# Leasing the head of queue %(qid)s to %(owner)s, as CTEs ``c``, ``r`` (the leased rows) and
# ``started`` (their totals); ``{skip}`` is where a caller adds a condition on the rows taken.
RESERVE_STEPS = f"""c AS (
    SELECT id FROM {{s}}.items
    WHERE qid = %(qid)s AND state = 0{{skip}}
      AND {_UNPAUSED}
    ORDER BY priority, seq, id LIMIT %(n)s FOR UPDATE SKIP LOCKED
), {_LEASE_STEPS}"""
# The leased rows ``r`` of a statement, with the change signal a reservation sends: only a put
# that waits for room in a bounded queue can need to hear of one.
_LEASED = """
SELECT r.* FROM r, (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(qid)s AND bounded)
           THEN {signal} END
) AS s
"""
RESERVE = f"""
WITH {RESERVE_STEPS.replace("{skip}", "")}{_LEASED}"""
# Leasing the items %(ids)s of queue %(qid)s to %(owner)s: those ready (marked so, or due), and
# those another owner leases that are among %(takeover)s too. Their rows are locked in id order
# (as a settle locks them), each waited for rather than skipped, and checked again once locked.
CLAIM = f"""
WITH c AS (
    SELECT id FROM {{s}}.items
    WHERE id = ANY(%(ids)s::bigint[]) AND qid = %(qid)s AND {_UNPAUSED}
      AND (state = 0 OR (state > 0 AND due <= {{s}}.now())
           OR (state = 1 AND owner <> %(owner)s AND id = ANY(%(takeover)s::bigint[])))
    ORDER BY id FOR UPDATE
), {_LEASE_STEPS}{_LEASED}"""
PROMOTE = """
UPDATE {s}.items SET state = 0 WHERE id IN (
    SELECT id FROM {s}.items WHERE qid = %s AND state > 0 AND due <= {s}.now()
    FOR UPDATE SKIP LOCKED
)
"""
_AHEAD = (
    "(i.priority < x.p OR (i.priority = x.p AND (i.seq < x.s OR (i.seq = x.s AND i.id < x.id))))"
)
RANK = f"""
WITH x AS (
    SELECT priority AS p, seq AS s, id, state, due <= {{s}}.now() AS due_now,
        CASE WHEN seq <> 0 THEN seq >> 10 ELSE 0 END AS sb,
        CASE WHEN seq <> 0 THEN 0 ELSE id >> 10 END AS ib
    FROM {{s}}.items WHERE id = %(id)s AND qid = %(qid)s
)
SELECT x.state, x.due_now,
    (SELECT coalesce(sum(r.n), 0) FROM {{s}}.ready r WHERE r.qid = %(qid)s
        AND (r.priority < x.p OR (r.priority = x.p AND (r.sb < x.sb
             OR (r.sb = x.sb AND r.ib < x.ib)))))
    + (SELECT count(*) FROM {{s}}.items i WHERE i.qid = %(qid)s AND i.state = 0 AND i.priority = x.p
        AND x.s <> 0 AND i.seq >= (x.sb << 10) AND i.seq < x.s)
    + (SELECT count(*) FROM {{s}}.items i WHERE i.qid = %(qid)s AND i.state = 0 AND i.priority = x.p
        AND x.s = 0 AND i.seq = 0 AND i.id >= (x.ib << 10) AND i.id < x.id)
    + (SELECT count(*) FROM {{s}}.items i WHERE i.qid = %(qid)s AND i.state > 0
        AND i.due <= {{s}}.now() AND {_AHEAD})
FROM x
"""
# RANK of the item %(id)s in whatever queue holds it: a part of a job's place.
PLACE_RANK = (
    RANK.replace("SELECT priority AS p,", "SELECT qid AS q, priority AS p,", 1)
    .replace("WHERE id = %(id)s AND qid = %(qid)s", "WHERE id = %(id)s", 1)
    .replace("%(qid)s", "x.q")
)
