"""The arguments of ``QueueStore.rotate`` and ``QueueStore.splice``, checked before a store is
touched (the stores that build them into a script or a transaction share these checks)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass


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
