"""The argument checks and index arithmetic that every store's ``rotate`` and ``splice`` share."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from ..errors import Full

__all__ = ["Count", "check_splice", "nearer_end", "rotation", "splice_at", "would_overflow"]

_FAR = 2**62  # a limit past any queue's length, and within a 64-bit integer (SQLite's LIMIT)

Count = Callable[[int | None], int]
"""``count(limit)``: how many ready items the queue holds, counting no further than ``limit``
(None: all of them). A store reads O(limit) items for it, so a splice or rotation near an end of a
long queue reads only as far as it needs to."""


def rotation(n: int, count: Count) -> int:
    """The shortest rotation equal to ``n`` steps right: positive moves that many items from the
    back to the front, negative that many from the front to the back. Counts no further than
    2|n| + 1 items: past that, ``n`` itself is the shortest."""
    n = operator.index(n)
    reach = 2 * abs(n) + 1
    size = count(reach if reach < _FAR else None)
    if size >= reach:
        return n
    if size == 0:
        return 0
    n %= size
    return n - size if n > size // 2 else n


def check_splice(
    delete: int, payloads: Sequence[bytes], clamp: bool, expect: Sequence[str] | None
) -> list[bytes]:
    """Check a splice's arguments before anything is read or written; return the payloads."""
    delete = operator.index(delete)
    if delete < 0:
        raise ValueError(f"splice: delete must be a count of items (0 or more), not {delete}")
    if clamp and delete:
        raise ValueError(f"splice: clamp is for inserts only; delete must be 0, not {delete}")
    if isinstance(payloads, (bytes, bytearray, str)):
        raise TypeError("splice: payloads must be a sequence of bytes objects, not one of them")
    out = list(payloads)
    for p in out:
        if not isinstance(p, bytes):
            raise TypeError(f"splice: every payload must be bytes, not {type(p).__name__}")
    if expect is not None and (
        isinstance(expect, str) or not all(isinstance(i, str) for i in expect)
    ):
        raise TypeError("splice: expect must be a sequence of item ids (str)")
    return out


def splice_at(queue: str, index: int, delete: int, size: int, clamp: bool) -> int:
    """The position in [0, size] where a splice of ``delete`` items at ``index`` starts; raises
    IndexError when there is none (without ``clamp``)."""
    index = operator.index(index)
    at = index + size if index < 0 else index
    if clamp:
        return min(max(at, 0), size)
    if not 0 <= at <= size or at + delete > size:
        raise IndexError(
            f"queue {queue!r} holds {size} ready items: no room to remove {delete} at index {index}"
        )
    return at


def would_overflow(queue: str, size: int, delete: int, added: int, maxlen: int | None) -> None:
    """Raise Full when a splice would leave more than ``maxlen`` ready items."""
    if maxlen is not None and size - delete + added > maxlen:
        raise Full(
            f"queue {queue!r} would hold {size - delete + added} ready items, more than its "
            f"maxlen {maxlen}; nothing was changed"
        )


def nearer_end(
    queue: str,
    index: int,
    delete: int,
    clamp: bool,
    maxlen: int | None,
    added: int,
    count: Count,
) -> tuple[bool, int]:
    """Where a splice goes: (front, moved) -- whether the items ahead of it (else those behind it)
    are the fewer, and how many they are. Raises IndexError or Full as :meth:`splice` says.

    Without ``maxlen`` it counts no further than it must: once a queue is known to hold more than
    2 * index + delete items (for a negative index, counting from the tail), the index's own end is
    the nearer one and the splice is in range."""
    index = operator.index(index)
    in_reach = maxlen is None and (index >= 0 or clamp or delete <= -index)
    if in_reach:
        reach = 2 * index + delete + 1 if index >= 0 else -2 * index - delete + 1
        if count(reach if reach < _FAR else None) >= reach:
            return (True, index) if index >= 0 else (False, -index - delete)
    size = count(None)
    at = splice_at(queue, index, delete, size, clamp)
    would_overflow(queue, size, delete, added, maxlen)
    behind = size - at - delete
    return (True, at) if at <= behind else (False, behind)
