"""How baozi writes times for people: ISO 8601 in UTC, with its offset, in every command and log
line."""

from __future__ import annotations

import datetime as dt
import logging


def iso(t: float | None, *, precise: bool = False) -> str:
    """``2026-12-07T08:01:02+00:00`` for a Unix time (with milliseconds if ``precise``); ``-``
    for None."""
    if t is None:
        return "-"
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    return when.isoformat(timespec="milliseconds" if precise else "seconds")


def age(seconds: float) -> str:
    """A duration the way a person reads it: ``4s``, ``2m05s``, ``3h07m``, ``2d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso(record.created, precise=True)


def log_to_stderr(level: int) -> None:
    """Log ``level`` and up to stderr, each line led by its time (what ``baozi`` commands and
    their worker processes do)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
