"""Reading a worker's heartbeat as the stores keep it (JSON), checked field by field."""

from __future__ import annotations

import json
from typing import Any

from .base import WorkerInfo

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "host": str,
    "pid": int,
    "pool": str,
    "concurrency": int,
    "busy": int,
    "started_at": (int, float),
}


def heartbeat(info: bytes | str, last_seen: Any) -> WorkerInfo:
    """The worker a heartbeat describes; raises ValueError, TypeError or KeyError for junk."""
    fields = json.loads(info)
    if not isinstance(fields, dict):
        raise TypeError(f"a heartbeat is a JSON object, not {type(fields).__name__}")
    for name, kind in _FIELDS.items():
        if name in fields and not isinstance(fields[name], kind):
            raise TypeError(f"{name} is {fields[name]!r}")
    queues = fields["queues"]
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        raise TypeError(f"queues is {queues!r}")
    if not isinstance(last_seen, (int, float)):
        raise TypeError(f"last seen is {last_seen!r}")
    fields["queues"] = tuple(queues)
    fields["last_seen"] = float(last_seen)
    return WorkerInfo(**fields)
