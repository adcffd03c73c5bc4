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

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ...errors import Full
from .._splice import Splice, out_of_range
from ..base import Item
from ._statements import PROMOTE

ORDER = "priority, seq, id"
ORDER_DESC = "priority DESC, seq DESC, id DESC"

Sql = Callable[[str], str]
Conn = psycopg.Connection[Any]

NEW = -1
"""In a block: an entry that is a new item (its payload beside it), not a moved one."""


def _prepare(conn: Conn, sql: Sql, qid: int) -> int:
    """Take the queue's write lock, make what is due ready, and return the ready count."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x62616F, qid))
    conn.execute(sql(PROMOTE), (qid,))
    row = conn.execute(
        sql("SELECT coalesce(sum(n), 0) FROM {s}.ready WHERE qid = %s"), (qid,)
    ).fetchone()
    return int(row[0]) if row else 0


def _ids(conn: Conn, sql: Sql, qid: int, first: int, count: int, from_back: bool) -> list[int]:
    """The ids of ``count`` ready items from rank ``first`` counted from the head (or, with
    ``from_back``, from the tail), in queue order, locked to the end of the transaction."""
    if count <= 0:
        return []
    rows = conn.execute(
        sql(
            "SELECT id FROM {s}.items WHERE qid = %s AND state = 0 "
            f"ORDER BY {ORDER_DESC if from_back else ORDER} OFFSET %s LIMIT %s FOR UPDATE"
        ),
        (qid, first, count),
    ).fetchall()
    ids = [int(r[0]) for r in rows]
    return ids[::-1] if from_back else ids


def _fresh(conn: Conn, sql: Sql, count: int) -> list[int]:
    rows = conn.execute(
        sql("SELECT nextval('{s}.ids') FROM generate_series(1, %s)"), (count,)
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _place(
    conn: Conn, sql: Sql, qid: int, block: Sequence[tuple[int, bytes]], front: bool
) -> list[int]:
    """Put ``block`` -- (id, b"") of a ready item to move, or (NEW, payload) of a new one, in the
    order they are to have -- at the front or the back. Returns the new items' ids."""
    if not block:
        return []
    fresh = _fresh(conn, sql, len(block))
    # At the front the order numbers are -fresh, the first of the block taking the largest
    # number, which sorts first; ids stay (new items take ids of their own). At the back the
    # fresh numbers are the ids, in order, with seq 0.
    numbers = fresh[::-1] if front else fresh
    taken = iter(_fresh(conn, sql, sum(1 for i, _ in block if i == NEW)) if front else ())
    moved_old, moved_new, moved_seq = [], [], []
    added_ids, added_seq, payloads = [], [], []
    for (item_id, payload), number in zip(block, numbers, strict=True):
        if front:
            seq, new_id = -number, next(taken) if item_id == NEW else item_id
        else:
            seq, new_id = 0, number
        if item_id == NEW:
            added_ids.append(new_id)
            added_seq.append(seq)
            payloads.append(payload)
        else:
            moved_old.append(item_id)
            moved_new.append(new_id)
            moved_seq.append(seq)
    if moved_old:
        conn.execute(
            sql(
                "UPDATE {s}.items i SET id = u.new, seq = u.seq FROM unnest("
                "%s::bigint[], %s::bigint[], %s::bigint[]) AS u(old, new, seq) WHERE i.id = u.old"
            ),
            (moved_old, moved_new, moved_seq),
        )
    if added_ids:
        conn.execute(
            sql(
                "INSERT INTO {s}.items (id, qid, state, priority, seq, payload, created_at) "
                "SELECT id, %s, 0, 0, seq, payload, {s}.now() FROM unnest("
                "%s::bigint[], %s::bigint[], %s::bytea[]) AS u(id, seq, payload)"
            ),
            (qid, added_ids, added_seq, payloads),
        )
    return added_ids


def rotate(conn: Conn, sql: Sql, qid: int, n: int) -> int:
    """Rotate the ready items of queue ``qid`` ``n`` steps to the right; return how many moved."""
    length = _prepare(conn, sql, qid)
    if not length or not n % length:
        return 0
    k = n % length
    front = k <= length - k  # the last k to the front, or the first length - k to the back
    ids = _ids(conn, sql, qid, 0, k if front else length - k, front)
    _place(conn, sql, qid, [(i, b"") for i in ids], front)
    return len(ids)


def splice(conn: Conn, sql: Sql, qid: int, queue: str, a: Splice) -> list[Any] | None:
    """The splice ``a`` on queue ``qid``: the removed items' rows (id, payload, priority,
    pfloat, deliveries, task, failures) in queue order, or None when ``a.expect`` is not the head.
    Raises IndexError or Full (before anything is written)."""
    length = _prepare(conn, sql, qid)
    if a.expect is not None and a.expect:
        head = _ids(conn, sql, qid, 0, len(a.expect), False)
        if [str(i) for i in head] != list(a.expect):
            return None
    index = a.index + length if a.index < 0 else a.index
    if a.clamp:
        index = max(0, min(index, length))
    elif index < 0 or index + a.delete > length:
        raise out_of_range(queue, a.index, a.delete, length)
    after = length - index - a.delete
    if a.maxlen is not None and length - a.delete + len(a.payloads) > a.maxlen:
        raise Full(
            f"queue {queue!r} holds {length} ready items: removing {a.delete} and adding "
            f"{len(a.payloads)} would pass its maxlen of {a.maxlen}; nothing was changed"
        )
    front = index <= after  # the items on the nearer side of the index move
    removed: list[Any] = []
    if a.delete:
        doomed = _ids(conn, sql, qid, index if front else after, a.delete, not front)
        removed = conn.execute(
            sql(
                "WITH d AS (DELETE FROM {s}.items WHERE id = ANY(%s) RETURNING id, payload, "
                "priority, pfloat, deliveries, task, failures), "
                "x AS (DELETE FROM {s}.deps WHERE child IN (SELECT id FROM d)) SELECT * FROM d"
            ),
            (doomed,),
        ).fetchall()
        place = {item_id: i for i, item_id in enumerate(doomed)}
        removed.sort(key=lambda r: place[r[0]])
    if a.payloads:
        new = [(NEW, p) for p in a.payloads]
        if front:
            block = [(i, b"") for i in _ids(conn, sql, qid, 0, index, False)] + new
        else:
            block = new + [(i, b"") for i in _ids(conn, sql, qid, 0, after, True)]
        _place(conn, sql, qid, block, front)
    if removed or a.payloads:
        conn.execute(sql("SELECT {s}.signal()"))
    return removed


def items(rows: list[Any], item: Callable[[Any], Item]) -> list[Item]:
    """The removed items of a splice as pop gives them."""
    return [item(r)._replace(task=None, failures=0) for r in rows]
