"""Where the statistics live in the store's key-value namespaces, how a read-merge-write adds to
them, and the log-scale histogram of run times.

Each family of statistics keeps one namespace per hour, named by the hour's number since the
epoch (``int(t // 3600)``), so a reader of a window reads only the hours it spans and an hour
that has aged out goes with one :meth:`~baozi.backends.base.CoordStore.kv_clear`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ..backends.base import Store

__all__ = [
    "FAMILIES",
    "STEP",
    "Window",
    "attempts_ns",
    "depth_ns",
    "family_ns",
    "hist_index",
    "hist_ms",
    "hour_of",
    "kept_from",
    "merge",
    "percentile",
    "read_buckets",
    "runs_ns",
    "window",
]

HOUR = 3600

FAMILIES: dict[str, int] = {
    "runs.10s": 3,
    "runs.1m": 26,
    "depth.10s": 3,
    "depth.1m": 26,
    "attempts": 8 * 24 + 1,
}
"""Each family's namespaces and how many hours of them are kept: the hour under way and the ones
before it, so 10-second buckets cover at least the last 2 hours, minute buckets the last 25, and
attempt logs the jobs created in the last 8 days. Older hours are pruned (see ``prune``)."""

STEP = {"10s": 10, "1m": 60}
"""The length of a bucket of each resolution, in seconds."""


def hour_of(t: float) -> int:
    return int(t // HOUR)


def runs_ns(resolution: str, hour: int) -> str:
    """The namespace of the run counts of one hour ("10s" or "1m" buckets; key: bucket start)."""
    return f"baozi.runs.{resolution}.{hour}"


def depth_ns(resolution: str, hour: int) -> str:
    """The namespace of the queue depth samples of one hour (key: bucket start)."""
    return f"baozi.depth.{resolution}.{hour}"


def attempts_ns(hour: int) -> str:
    """The namespace of the attempt logs of the jobs created in one hour (key: job id)."""
    return f"baozi.attempts.{hour}"


def family_ns(family: str, hour: int) -> str:
    """The namespace of one hour of a family of :data:`FAMILIES`."""
    return f"baozi.{family}.{hour}"


def kept_from(family: str, now: float) -> int:
    """The oldest hour of ``family`` that is kept at ``now``."""
    return hour_of(now) - FAMILIES[family] + 1


def merge(store: Store, ns: str, key: str, change: Callable[[Any], Any], tries: int = 50) -> bool:
    """Read the JSON value under ``key`` (None when there is none), apply ``change`` to it and
    write the result back with :meth:`~baozi.backends.base.CoordStore.kv_cas`; on a conflict
    (another writer got there between the read and the write) read again and redo it. So every
    writer's change lands once, whatever the others do. False when ``tries`` conflicts in a row
    left it unwritten."""
    for n in range(tries):
        old = store.kv_get(ns, key)
        value = change(json.loads(old) if old is not None else None)
        new = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        if store.kv_cas(ns, key, old, new):
            return True
        # Writers that met here flush on the same beat: spread them before the next read.
        time.sleep(random.uniform(0, 0.002 * (n + 1)))
    return False


# -- the histogram of run times ---------------------------------------------------------------------

_FLOOR_MS = 0.01
_FLOOR_S = _FLOOR_MS / 1000.0
_LOG_FLOOR_S = math.log(_FLOOR_S)
_GROWTH = 1.1
_PER_LOG = 1.0 / math.log(_GROWTH)


def hist_index(seconds: float) -> int:
    """The histogram bin of a run time: bin ``i`` holds the times above ``0.01 * 1.1**(i-1)`` ms
    up to ``0.01 * 1.1**i`` ms (bin 0: up to 0.01 ms)."""
    if seconds <= _FLOOR_S:
        return 0
    # (less a hair, so that a time on a bin's upper edge is not put in the next for rounding)
    return math.ceil((math.log(seconds) - _LOG_FLOOR_S) * _PER_LOG - 1e-9)


def hist_ms(index: int) -> float:
    """The run time a bin stands for, in ms: the geometric middle of its range, within 4.9% of
    every time in it."""
    if index <= 0:
        return _FLOOR_MS
    return float(_FLOOR_MS * _GROWTH ** (index - 0.5))


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of the run times counted in ``hist`` (bin: count), by
    nearest rank, in ms (see :func:`hist_ms`); None when it counts none."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return round(hist_ms(index), 4)
    raise AssertionError("unreachable: the ranks are counted")


# -- windows ------------------------------------------------------------------------------------------


class Window(NamedTuple):
    """The buckets a read covers: ``resolution`` buckets in ``[start, end)``, shown as points of
    ``step`` seconds; ``end`` is where the bucket under way ends, so the last point is still
    filling."""

    seconds: int
    resolution: str
    step: int
    start: int
    end: int

    @property
    def points(self) -> int:
        return self.seconds // self.step

    def hours(self) -> range:
        return range(hour_of(self.start), hour_of(self.end - 1) + 1)


_WINDOWS: dict[int, tuple[str, int]] = {600: ("10s", 10), 3600: ("1m", 60), 86400: ("1m", 900)}
"""The windows a reader serves: the bucket resolution it reads and the step of its points."""


def window(seconds: int, now: float | None) -> Window:
    """The window of ``seconds`` (600, 3600 or 86400) that ends with the bucket under way at
    ``now`` (default: the time now); ValueError for any other length."""
    if seconds not in _WINDOWS:
        raise ValueError(f"window_seconds must be one of {sorted(_WINDOWS)}, not {seconds!r}")
    resolution, step = _WINDOWS[seconds]
    t = time.time() if now is None else now
    end = (int(t) // step + 1) * step
    return Window(seconds, resolution, step, end - seconds, end)


def read_buckets(store: Store, prefix: Callable[[str, int], str], w: Window) -> dict[int, Any]:
    """Every bucket of the window's resolution in ``[w.start, w.end)``: bucket start -> value."""
    found: dict[int, Any] = {}
    for hour in w.hours():
        for key, value in store.kv_items(prefix(w.resolution, hour)).items():
            start = int(key)
            if w.start <= start < w.end:
                found[start] = json.loads(value)
    return found
