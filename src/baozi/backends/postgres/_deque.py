"""Rotate and splice of a PostgreSQL queue's ready items, each in the caller's transaction.

Ready items are in (priority, seq, id) order: a push to the back has seq 0 and a fresh id, one
to the front seq = -id. Numbers fresh from the ``ids`` sequence are above every id and order
number issued before, so a block of items given fresh ``-number`` order numbers goes before every
item of its priority, and one given fresh ids (seq 0) after every one -- and a later push to
either end still lands beyond it. A rotate or a splice thus rewrites only the items it moves to
an end, the deleted ones and the new ones, never the rest of the queue. (An item moved to the
back gets a new id: nothing else places it after an item pushed before it.) The ``ready``
counts follow through the table's statement triggers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from ...errors import Full
from .._splice import Splice, out_of_range
from ..base import Item
from ._statements import PROMOTE

log = logging.getLogger("baozi.store")

ORDER = "priority, seq, id"
ORDER_DESC = "priority DESC, seq DESC, id DESC"

Sql = Callable[[str], str]
Conn = psycopg.Connection[Any]

# The ready count once what is due is ready (the promoted rows are not in ``ready`` until the
# statement ends, so they are added).
_COUNT = f"""
WITH p AS ({PROMOTE.strip()} RETURNING 1)
SELECT (SELECT coalesce(sum(n), 0) FROM {{s}}.ready WHERE qid = %s) + (SELECT count(*) FROM p)
"""

# A block put at the front (%(front)s) or the back: %(moved)s ready items taken from the head
# ({order} ascending) or from the tail (descending), in queue order from place %(moved_at)s + 1
# of the block on, and new items of %(payloads)s, in order from place %(new_at)s + 1 on.
_PLACE = """
WITH moved AS (
    SELECT id, %(moved_at)s + row_number() OVER (ORDER BY priority, seq, id) AS j
    FROM (SELECT id, priority, seq FROM {s}.items WHERE qid = %(qid)s AND state = 0
          ORDER BY {order} LIMIT %(moved)s FOR UPDATE) AS t
), fresh AS (
    SELECT v, row_number() OVER (ORDER BY v) AS r
    FROM (SELECT nextval('{s}.ids') AS v FROM generate_series(1, %(size)s)) AS g
), slot AS (
    -- place j of the block -> its fresh number; at the front the first place takes the largest
    -- (the order number -v that sorts first), at the back the smallest (the id that does)
    SELECT CASE WHEN %(front)s THEN %(size)s + 1 - r ELSE r END AS j, v FROM fresh
), up AS (
    UPDATE {s}.items i SET id = CASE WHEN %(front)s THEN i.id ELSE s.v END,
        seq = CASE WHEN %(front)s THEN -s.v ELSE 0 END
    FROM moved m JOIN slot s USING (j) WHERE i.id = m.id
    RETURNING 1
), ins AS (
    INSERT INTO {s}.items (id, qid, state, priority, seq, payload, created_at)
    SELECT CASE WHEN %(front)s THEN nextval('{s}.ids') ELSE s.v END, %(qid)s, 0, 0,
        CASE WHEN %(front)s THEN -s.v ELSE 0 END, n.payload, {s}.now()
    FROM unnest(%(payloads)s::bytea[]) WITH ORDINALITY AS n(payload, k)
    JOIN slot s ON s.j = %(new_at)s + n.k
    RETURNING 1
)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins)
"""

# The %s ready items from rank %s counted from the head ({order} ascending) or the tail, deleted.
_DELETE = """
WITH c AS (
    SELECT id FROM {s}.items WHERE qid = %s AND state = 0 ORDER BY {order}
    OFFSET %s LIMIT %s FOR UPDATE
), d AS (
    DELETE FROM {s}.items t WHERE id IN (SELECT id FROM c)
    RETURNING id, payload, priority, pfloat, deliveries, task, failures, seq, t::text
), x AS (
    DELETE FROM {s}.deps WHERE child IN (SELECT id FROM d)
), k AS (
    DELETE FROM {s}.marks WHERE item IN (SELECT id FROM d)
)
SELECT * FROM d ORDER BY priority, seq, id
"""


def _prepare(conn: Conn, sql: Sql, qid: int) -> int:
    """Lock the items table against every other write until the transaction ends, make what is
    due ready, and return the ready count.

    A rotate or a splice reads positions and then moves rows in several statements; a push or a
    pop committing in between (they take no queue lock) would shift the positions, and a pop
    that skips the rows being moved would take the item behind them. SHARE ROW EXCLUSIVE waits
    for the writes under way and holds off new ones (reads go on), so the step is atomic. It
    holds off the other queues' writes too, for as long as the step takes: O(items moved)."""
    conn.execute(sql("LOCK TABLE {s}.items IN SHARE ROW EXCLUSIVE MODE"))
    row = conn.execute(sql(_COUNT), (qid, qid)).fetchone()
    return int(row[0]) if row else 0


def _place(
    conn: Conn, sql: Sql, qid: int, front: bool, moved: int, from_tail: bool, new: list[bytes]
) -> None:
    """Put a block at the front or at the back: ``moved`` ready items taken from the head (or,
    with ``from_tail``, the tail) and the ``new`` items -- at the front the moved ones first, at
    the back the new ones."""
    if not (moved or new):
        return
    params = {
        "qid": qid,
        "front": front,
        "moved": moved,
        "payloads": new,
        "size": moved + len(new),
        "moved_at": 0 if front else len(new),
        "new_at": moved if front else 0,
    }
    conn.execute(sql(_PLACE.replace("{order}", ORDER_DESC if from_tail else ORDER)), params)


def rotate(conn: Conn, sql: Sql, qid: int, n: int) -> None:
    """Rotate the ready items of queue ``qid`` ``n`` steps to the right."""
    length = _prepare(conn, sql, qid)
    k = n % length if length else 0
    if not k:
        return
    if k <= length - k:
        _place(conn, sql, qid, True, k, True, [])  # the last k to the front
    else:
        _place(conn, sql, qid, False, length - k, False, [])  # the first length - k to the back
    conn.execute(sql("SELECT {s}.signal()"))  # the head or the tail is another item now


def splice(
    conn: Conn, sql: Sql, qid: int, queue: str, a: Splice, item: Callable[[Any], Item]
) -> list[Item] | None:
    """The splice ``a`` on queue ``qid``: the removed items in queue order (as pop gives them;
    ``item`` reads one from its row), or None when ``a.expect`` is not the head. Raises
    IndexError or Full before anything is written."""
    length = _prepare(conn, sql, qid)
    if a.expect:
        head = conn.execute(
            sql(
                "SELECT id FROM {s}.items WHERE qid = %s AND state = 0 "
                f"ORDER BY {ORDER} LIMIT %s FOR UPDATE"
            ),
            (qid, len(a.expect)),
        ).fetchall()
        if [str(r[0]) for r in head] != list(a.expect):
            return None
    index = a.index + length if a.index < 0 else a.index
    if a.clamp:
        index = max(0, min(index, length))
    elif index < 0 or index + a.delete > length:
        raise out_of_range(queue, a.index, a.delete, length)
    if a.maxlen is not None and length - a.delete + len(a.payloads) > a.maxlen:
        raise Full(
            f"queue {queue!r} holds {length} ready items: removing {a.delete} and adding "
            f"{len(a.payloads)} would pass its maxlen of {a.maxlen}; nothing was changed"
        )
    after = length - index - a.delete
    front = index <= after  # the items on the nearer side of the index move
    removed: list[Item] = []
    if a.delete:
        rows = conn.execute(
            sql(_DELETE.replace("{order}", ORDER if front else ORDER_DESC)),
            (qid, index if front else after, a.delete),
        ).fetchall()
        removed = _read_removed(conn, sql, rows, item)
    if a.payloads:
        new = list(a.payloads)
        _place(conn, sql, qid, front, index if front else after, not front, new)
    if a.delete or a.payloads:
        conn.execute(sql("SELECT {s}.signal()"))
    return removed


def _read_removed(conn: Conn, sql: Sql, rows: list[Any], item: Callable[[Any], Item]) -> list[Item]:
    """The deleted rows as items; one that cannot be read (a priority that is no number baozi
    writes) goes to ``junk`` as it was, in the same transaction, and is logged."""
    out = []
    for r in rows:
        try:
            out.append(item(r)._replace(task=None, failures=0))
        except (ValueError, ArithmeticError) as exc:
            reason = f"priority {r[2]!r}: {exc}"
            conn.execute(
                sql("INSERT INTO {s}.junk VALUES ({s}.now(), 'items', %s, %s)"), (reason, r[8])
            )
            log.error(
                "PostgreSQL store: moved an items row that cannot be read (%s) to junk", reason
            )
    return out
