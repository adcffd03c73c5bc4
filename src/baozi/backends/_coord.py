"""Arithmetic the stores share for their coordination steps."""

from __future__ import annotations

import json
import math
import struct

from .contract.coord import NUMBER_KINDS


def number_of(raw: bytes | None, key: str) -> int | float:
    """The number a counter holds (0 when absent); TypeError when it holds something else."""
    if raw is None:
        return 0
    value = json.loads(raw)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"key {key!r} holds {value!r}, not a number: it cannot be incremented")
    return value


def rate_step(tat: float | None, now: float, interval: float, burst: int) -> tuple[float, float]:
    """One step of a generic cell rate limit: ``tat`` is when the next event is due on the steady
    rate. Returns (0.0, the new ``tat``) when an event is admitted now, else (seconds to wait,
    the unchanged ``tat``)."""
    start = now if tat is None or tat < now else tat
    wait = start - now - (burst - 1) * interval
    if wait > 0:
        return wait, start
    return 0.0, start + interval


def add_number(raw: bytes | None, amount: int | float, key: str) -> int | float:
    """A counter's value plus ``amount``, kept within 64-bit integers and finite floats (the
    range every store keeps exactly)."""
    total = number_of(raw, key) + amount
    if isinstance(total, int) and not -(2**63) <= total < 2**63:
        raise OverflowError(f"key {key!r}: {total} does not fit in 64 bits")
    if isinstance(total, float) and not math.isfinite(total):
        raise OverflowError(f"key {key!r}: the sum is {total}")
    return total


def kind_range(kind: str) -> tuple[int, int]:
    """The least and greatest integer of an integer kind of :data:`NUMBER_KINDS`."""
    if kind not in NUMBER_KINDS or kind[0] == "f":
        raise ValueError(f"{kind!r} is not an integer kind of {NUMBER_KINDS}")
    bits = int(kind[1:])
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind[0] == "i" else (0, 2**bits - 1)


def add_as(raw: bytes | None, amount: int | float, kind: str, key: str) -> int | float:
    """A stored number plus ``amount`` as a machine number of ``kind`` (see
    :meth:`~baozi.backends.contract.coord.CoordStore.kv_incr_as`): TypeError when ``raw`` holds
    no number of the kind, OverflowError when the sum does not fit it."""
    try:
        old = 0 if raw is None else json.loads(raw)
    except ValueError:  # not JSON (nor UTF-8) at all
        old = raw
    if kind in ("f32", "f64"):
        if isinstance(old, bool) or not isinstance(old, (int, float)) or not math.isfinite(old):
            raise TypeError(f"key {key!r} holds {old!r}, not a number of kind {kind}")
        total = float(old) + float(amount)
        if kind == "f32" and math.isfinite(total):
            try:  # rounded to single precision, as C stores a double in a float
                (total,) = struct.unpack("<f", struct.pack("<f", total))
            except OverflowError:
                total = math.inf
        if not math.isfinite(total):
            raise OverflowError(f"key {key!r}: the sum {old!r} + {amount!r} is not a finite {kind}")
        return total
    low, high = kind_range(kind)
    if type(old) is not int or not low <= old <= high:
        raise TypeError(f"key {key!r} holds {old!r}, not a number of kind {kind}")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"a number of kind {kind} is incremented by an int, not {amount!r}")
    total = old + amount
    if not low <= total <= high:
        raise OverflowError(
            f"key {key!r}: the sum {total} does not fit kind {kind} ({low}..{high})"
        )
    return total


GRACE = 0.002
"""A booked rate-limit time counts as come this early (a scheduled job may wake a hair early)."""


def book(
    tat: float | None, grant: float | None, now: float, interval: float, burst: int, ticket: bool
) -> tuple[float, float | None, float | None]:
    """A rate-limit step with bookings. ``grant`` is the ticket's booking, if it has one.

    Returns (seconds to wait, the new ``tat`` to store or None, what to do with the ticket's
    booking: None to drop it (or leave none), else the time to book it for)."""
    if grant is not None:
        return (0.0, None, None) if grant <= now + GRACE else (grant - now, None, grant)
    wait, start = rate_step(tat, now, interval, burst)
    if not wait:
        return 0.0, start, None
    if not ticket:
        return wait, None, None
    return wait, start + interval, now + wait


def _check_head(head: bytes) -> None:
    if b"\n" in head:
        raise ValueError(
            f"a record's head cannot hold a newline ({bytes(head)!r}): the first newline ends it"
        )


def with_tail(raw: bytes | None, head: bytes, tail: bytes) -> bytes:
    """The record to store for :meth:`~baozi.backends.contract.coord.CoordStore.kv_set_tail`
    over ``raw``, the value held (None: none)."""
    _check_head(head)
    if raw is not None:
        held, newline, _ = raw.partition(b"\n")
        if newline:
            return held + b"\n" + bytes(tail)
    return bytes(head) + b"\n" + bytes(tail)


def add_to_tail(
    raw: bytes | None, head: bytes, amount: int | float, key: str
) -> tuple[bytes, int | float]:
    """The record to store for :meth:`~baozi.backends.contract.coord.CoordStore.kv_incr_tail`
    over ``raw``, and the sum it holds."""
    _check_head(head)
    if raw is None:
        kept, tail = bytes(head), None
    else:
        kept, newline, tail = raw.partition(b"\n")
        if not newline:
            raise TypeError(f"key {key!r} holds {raw!r}, no record: it cannot be incremented")
    try:
        total = add_number(tail, amount, key)
    except ValueError as exc:  # a tail that is no JSON at all
        raise TypeError(
            f"key {key!r} holds {tail!r}, not a number: it cannot be incremented"
        ) from exc
    return kept + b"\n" + json.dumps(total).encode(), total
