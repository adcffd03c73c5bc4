"""The argument checks and index arithmetic of ``QueueStore.rotate`` and ``QueueStore.splice``:
every store checks the arguments here (:func:`splice_args`, :func:`rotate_steps`); the memory and
SQLite stores also count in Python (:func:`nearer_end`, :func:`rotation`), where Redis and
PostgreSQL do the arithmetic in their script or transaction."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import Full

__all__ = [
    "Count",
    "Splice",
    "nearer_end",
    "out_of_range",
    "rotate_steps",
    "rotation",
    "splice_args",
    "splice_at",
    "would_overflow",
]

_FAR = 2**62  # a limit past any queue's length, and within a 64-bit integer (SQLite's LIMIT)

Count = Callable[[int | None], int]
"""``count(limit)``: how many ready items the queue holds, counting no further than ``limit``
(None: all of them). A store reads O(limit) items for it, so a splice or rotation near an end of a
long queue reads only as far as it needs to."""


def rotation(n: int, count: Count) -> int:
    """The shortest rotation equal to ``n`` steps right: positive moves that many items from the
    back to the front, negative that many from the front to the back. Counts no further than
    2|n| + 1 items: past that, ``n`` itself is the shortest."""
    n = rotate_steps(n)
    reach = 2 * abs(n) + 1
    size = count(reach if reach < _FAR else None)
    if size >= reach:
        return n
    if size == 0:
        return 0
    n %= size
    return n - size if n > size // 2 else n


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


def _int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} is an int, not a bool ({value!r}): pass a whole number")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{what} is an int, not {type(value).__name__} ({value!r}): pass a whole number"
        ) from None


def rotate_steps(n: object) -> int:
    """``n`` of a rotate, as an int."""
    return _int(n, "rotate's n")


@dataclass(frozen=True)
class Splice:
    """A splice's arguments, checked: ``index`` not yet taken modulo anything (the store knows
    the length), ``payloads`` as bytes, ``expect`` as a tuple of ids."""

    index: int
    delete: int
    payloads: tuple[bytes, ...]
    clamp: bool
    expect: tuple[str, ...] | None
    maxlen: int | None


def splice_args(
    index: object,
    delete: object,
    payloads: Sequence[bytes],
    clamp: bool,
    expect: Sequence[str] | None,
    maxlen: int | None,
) -> Splice:
    """The arguments of a splice, checked; a TypeError or ValueError names the one that is wrong."""
    at = _int(index, "splice's index")
    count = _int(delete, "splice's delete")
    if count < 0:
        raise ValueError(f"splice's delete is how many items to remove, 0 or more, not {count}")
    if clamp and count:
        raise ValueError(
            f"a clamped splice only inserts: pass delete=0 (not {count}), or clamp=False to "
            "remove items at an index that must exist"
        )
    if isinstance(payloads, (bytes, bytearray, memoryview, str)):
        raise TypeError("splice's payloads are a sequence of bytes: wrap a single one in a list")
    blobs = []
    for i, p in enumerate(payloads):
        if not isinstance(p, (bytes, bytearray, memoryview)):
            raise TypeError(f"splice's payload {i} is {type(p).__name__}, not bytes")
        blobs.append(bytes(p))
    ids: tuple[str, ...] | None = None
    if expect is not None:
        if isinstance(expect, str):
            raise TypeError("splice's expect is a sequence of item ids: wrap a single id in a list")
        ids = tuple(expect)
        for i, x in enumerate(ids):
            if not isinstance(x, str):
                raise TypeError(f"splice's expect[{i}] is {type(x).__name__}, not an item id (str)")
    if maxlen is not None:
        maxlen = _int(maxlen, "splice's maxlen")
        if maxlen < 0:
            raise ValueError(f"splice's maxlen is at least 0 (or None for no bound), not {maxlen}")
    return Splice(at, count, tuple(blobs), bool(clamp), ids, maxlen)


def out_of_range(queue: str, index: int, delete: int, length: int) -> IndexError:
    """The error of a splice whose index (or index + delete) falls outside the ready items."""
    return IndexError(
        f"splice index {index} with delete {delete} is out of range for queue {queue!r}, which "
        f"holds {length} ready items; nothing was changed"
    )
