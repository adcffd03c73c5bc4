"""The argument checks and index arithmetic that every store's ``rotate`` and ``splice`` share."""

from __future__ import annotations

import operator
from collections.abc import Sequence

from ..errors import Full

__all__ = ["check_splice", "rotation", "splice_at", "would_overflow"]


def rotation(n: int, size: int) -> int:
    """The shortest rotation equal to ``n`` steps right among ``size`` items: positive moves that
    many items from the back to the front, negative that many from the front to the back."""
    n = operator.index(n)
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
