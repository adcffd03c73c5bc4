"""Queue depths over time: what the web server's observer samples each second, kept in the store
as the largest count of each 10-second and each minute bucket, and read back as a series."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, TypedDict

from ..backends.base import Store
from ._layout import STEP, depth_ns, hour_of, kept_from, merge, read_buckets, window
from ._prune import prune
from ._record import PRUNE_HOURS

__all__ = ["SERIES", "DepthSamples", "DepthSeries", "depth_series"]

SERIES = ("ready", "scheduled", "running", "waiting")
"""The counts sampled, in the order a bucket's value lists them."""
FLUSH_EVERY = 5.0
PRUNE_EVERY = 600.0


class DepthSeries(TypedDict):
    window_seconds: int
    bucket_seconds: int
    start: int
    end: int
    series: dict[str, list[int | None]]


class DepthSamples:
    """The observer's samples, as the largest count of each bucket, until they are added to the
    store. A bucket's value is ``{queue: [ready, scheduled, running, waiting]}``, and a write
    keeps the larger of each count already there and its own: several servers sampling the
    same store write the same buckets, in any order, and the result is the same."""

    def __init__(self, flush_every: float = FLUSH_EVERY) -> None:
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, int], dict[str, list[int]]] = {}
        self._flushed = time.monotonic()
        self._pruned = time.monotonic()  # the first prune comes a while after the start

    def add(self, queue: str, counts: dict[str, int], now: float) -> None:
        sample = [counts.get(name, 0) for name in SERIES]
        with self._lock:
            for resolution, step in STEP.items():
                at = self._buckets.setdefault((resolution, int(now) // step * step), {})
                was = at.get(queue)
                at[queue] = (
                    sample if was is None else [max(a, b) for a, b in zip(was, sample, strict=True)]
                )

    def due(self) -> bool:
        return time.monotonic() - self._flushed >= self.flush_every

    def flush(self, store: Store, now: float | None = None) -> None:
        """Add the samples taken so far to the store. The buckets under way stay to be written
        again (larger counts may come); a write that fails is tried at the next flush. Prunes
        the aged-out hours now and then."""
        now = time.time() if now is None else now
        self._flushed = time.monotonic()
        with self._lock:
            buckets = {k: dict(v) for k, v in self._buckets.items()}
        for (resolution, start), value in sorted(buckets.items()):
            if hour_of(start) < kept_from(f"depth.{resolution}", now):
                written = True
            else:
                ns = depth_ns(resolution, hour_of(start))
                written = merge(store, ns, str(start), functools.partial(_larger, value))
            if written and start + STEP[resolution] <= now:  # ended: nothing more comes
                with self._lock:
                    if self._buckets.get((resolution, start)) == value:
                        del self._buckets[(resolution, start)]
        if time.monotonic() - self._pruned >= PRUNE_EVERY:
            prune(store, now, limit=PRUNE_HOURS)
            self._pruned = time.monotonic()


def _larger(mine: dict[str, list[int]], old: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = dict(old or {})
    for queue, counts in mine.items():
        was = out.get(queue)
        out[queue] = (
            counts if was is None else [max(a, b) for a, b in zip(was, counts, strict=False)]
        )
    return out


def depth_series(
    store: Store, queue: str, window_seconds: int, now: float | None = None
) -> DepthSeries:
    """``queue``'s counts over the last ``window_seconds`` (600: points of 10 s; 3600: of a
    minute; 86400: of 15 minutes), oldest first: each point the largest count sampled in it,
    None where no server sampled the queue. The last point is the bucket under way."""
    w = window(window_seconds, now)
    found = read_buckets(store, depth_ns, w)
    series: dict[str, list[int | None]] = {name: [None] * w.points for name in SERIES}
    for start, value in found.items():
        counts = value.get(queue)
        if counts is None:
            continue
        point = (start - w.start) // w.step
        for name, n in zip(SERIES, counts, strict=False):
            was = series[name][point]
            series[name][point] = n if was is None else max(was, n)
    return DepthSeries(
        window_seconds=w.seconds, bucket_seconds=w.step, start=w.start, end=w.end, series=series
    )
