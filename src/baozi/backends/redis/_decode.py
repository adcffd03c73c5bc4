"""Reading what the Redis scripts return: items, job records and heartbeats, each on its own, so
that one that cannot be read is moved aside (through ``junk``) and the rest are returned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._heartbeat import heartbeat
from ..base import Item, JobRecord, Priority, WorkerInfo


def _priority(text: bytes) -> Priority:
    try:
        return int(text)
    except ValueError:
        return float(text)


Junk = Callable[[str, str], object]
"""Moves a record the client could not read aside: called with its id and the reason."""


def _item(v: list[Any]) -> Item:
    return Item(
        v[0].decode(),
        v[1],
        _priority(v[2]),
        int(v[3] or 0),
        v[4].decode() if v[4] is not None else None,
        int(v[5] or 0),
    )


def read_items(flat: list[Any], junk: Junk) -> list[Item]:
    """Items as the scripts lay them out, 6 values each; one that cannot be read goes to
    ``junk`` and is left out (the scripts check what they can; this is the last line)."""
    out = []
    for i in range(0, len(flat), 6):
        try:
            out.append(_item(flat[i : i + 6]))
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            junk(bytes(flat[i] or b"").decode(errors="replace"), f"unreadable: {exc}")
    return out


def _float(value: bytes | None) -> float | None:
    return float(value) if value is not None else None


def _record(v: list[Any]) -> tuple[int, JobRecord]:
    rec = JobRecord(
        id=v[0].decode(),
        queue=v[1].decode(),
        task=v[2].decode(),
        status=v[3].decode(),
        priority=_priority(v[4]),
        payload=v[5],
        attempts=int(v[6] or 0),
        failures=int(v[7] or 0),
        created_at=float(v[8]),
        started_at=_float(v[9]),
        finished_at=_float(v[10]),
        result=v[11],
        error=v[12].decode(errors="replace") if v[12] else None,  # '' is no error
        progress=v[13].decode(errors="replace") if v[13] is not None else None,
    )
    return int(v[14]), rec


def read_records(flat: list[Any], junk: Junk) -> list[tuple[int, JobRecord] | None]:
    """Records as the jobs script lays them out, 15 values each, with their order number; one
    that cannot be read goes to ``junk`` and reads as None (no job)."""
    out: list[tuple[int, JobRecord] | None] = []
    for i in range(0, len(flat), 15):
        v = flat[i : i + 15]
        if v[0] is None:
            out.append(None)
            continue
        try:
            out.append(_record(v))
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            junk(v[0].decode(errors="replace"), f"unreadable: {exc}")
            out.append(None)
    return out


def read_worker(info: bytes, last_seen: bytes) -> WorkerInfo:
    return heartbeat(info, float(last_seen))
