"""Arithmetic the stores share for their coordination steps."""

from __future__ import annotations

import json


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
