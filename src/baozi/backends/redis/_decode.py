"""Reading what the Redis store holds: items, job records, heartbeats, options, totals and keys,
each on its own, so that one that cannot be read is moved aside (through ``junk``) and the rest
are returned."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._heartbeat import heartbeat
from .._order import decode
from ..base import COUNTED, Item, JobRecord, Priority, WorkerInfo


def _priority(text: bytes) -> Priority:
    if text[:1] == b"x":
        return decode(bytes.fromhex(text[1:].decode()))
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


RECORD = 21
"""How many values the jobs script gives per record (see ``job`` in the prelude)."""


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
        unique_key=v[15].decode() if v[15] is not None else None,
        parents=tuple(v[16].decode().split()),
        children=tuple(v[17].decode().split()),
        on_dependency_failure=v[18].decode(),
        due_at=float(v[19]) if v[3] == b"scheduled" else None,
        worker=v[20].decode(errors="replace") if v[20] else None,
    )
    return int(v[14]), rec


def read_records(flat: list[Any], junk: Junk) -> list[tuple[int, JobRecord] | None]:
    """Records as the jobs script lays them out, :data:`RECORD` values each, with their order
    number; one that cannot be read goes to ``junk`` and reads as None (no job)."""
    out: list[tuple[int, JobRecord] | None] = []
    for i in range(0, len(flat), RECORD):
        v = flat[i : i + RECORD]
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


JunkName = Callable[[Any, str], object]
"""Moves a field or member the client could not read aside: called with its name as the store
holds it and the reason."""


def read_options(flat: list[Any], junk: JunkName) -> dict[str, Any]:
    """A queue's options from its hash (a flat list of names and JSON values); one that cannot
    be read goes to ``junk`` and is left out."""
    options = {}
    for i in range(0, len(flat), 2):
        try:
            options[flat[i].decode()] = json.loads(flat[i + 1])
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            junk(flat[i].decode(errors="replace"), f"{exc}")
    return options


def read_totals(flat: list[Any], junk: JunkName) -> dict[str, dict[str, int]]:
    """A queue's job totals by task and event, from its hash of ``event:task`` counts."""
    out: dict[str, dict[str, int]] = {}
    for i in range(0, len(flat), 2):
        try:
            event, _, task = flat[i].decode().partition(":")
        except UnicodeDecodeError as exc:
            junk(flat[i], f"not UTF-8 text: {exc}")
            continue
        out.setdefault(task, dict.fromkeys(COUNTED, 0))[event] = int(flat[i + 1])
    return out


def read_kv(flat: Any, junk: JunkName) -> dict[str, bytes]:
    """A key-value namespace from its hash (a flat list, or a dict in RESP3's shape)."""
    if isinstance(flat, dict):
        pairs = list(flat.items())
    else:
        pairs = list(zip(flat[::2], flat[1::2], strict=True))
    out = {}
    for name, value in pairs:
        try:
            out[name.decode()] = value
        except UnicodeDecodeError as exc:
            junk(name, f"a key that is not UTF-8 text: {exc}")
    return out


def read_workers(flat: list[Any], junk: JunkName) -> list[WorkerInfo]:
    """Heartbeats as the workers script lays them out (id, info, last seen); one that cannot be
    read goes to ``junk`` by its id and is left out."""
    out = []
    for i in range(0, len(flat), 3):
        try:
            out.append(read_worker(flat[i + 1], flat[i + 2]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            junk(flat[i], f"unreadable: {type(exc).__name__}: {exc}")
    return out
