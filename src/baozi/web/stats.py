"""What the server learns by watching the store: per-queue counts, finishes, rates and estimates.

Workers run anywhere and tell the store, not the server, so the server samples the store once a
``interval`` (a second): each queue's job counts and, when they moved, the newest job records --
new jobs, running ones, and finished ones with their times. From the finishes it keeps for ten
minutes come a queue's completion rate over the last minute, the throughput chart and the
estimates of when a job will be done; the events go to a :class:`Sink` (the Prometheus counters).
A sample reads at most ``MAX_SCAN`` records of each kind per queue, so a queue finishing more
jobs than that per interval is counted short; its rate and counts stay right.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..backends.base import JobRecord, Store
from ..errors import StoreError
from ._wire import DEQUE_PREFIX

__all__ = ["Observer", "QueueStats", "Sink", "THROUGHPUT_BUCKET", "THROUGHPUT_BUCKETS"]

log = logging.getLogger("baozi.web")

WINDOW = 60.0
"""The completion rate is over the last minute."""
HISTORY = 600.0
"""Finishes are kept ten minutes, for the throughput chart."""
THROUGHPUT_BUCKET = 10.0
THROUGHPUT_BUCKETS = int(HISTORY // THROUGHPUT_BUCKET)
PAGE = 200
MAX_SCAN = 5000
_REMEMBERED = 4 * MAX_SCAN
_GLANCE = 20  # records of each finished kind read when no count moved


class Sink(Protocol):
    """Where the observer reports what it saw happen (after the server started)."""

    def enqueued(self, queue: str, task: str) -> None: ...

    def started(self, queue: str, task: str) -> None: ...

    def finished(self, status: str, queue: str, task: str, duration: float | None) -> None: ...


@dataclass
class _Seen:
    """What the observer remembers of one queue between samples."""

    counts: dict[str, int] = field(default_factory=dict)
    # The latest finishes seen (job id -> finished_at), so that a sample counts each once;
    # bounded, and what falls out raises the horizon: finishes at or before it are not counted.
    finishes: OrderedDict[str, float] = field(default_factory=OrderedDict)
    horizon: float = 0.0
    per_second: Counter[int] = field(default_factory=Counter)  # finishes in each second
    first: float | None = None  # the earliest finish counted in per_second
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    running: set[str] = field(default_factory=set)
    newest: list[str] = field(default_factory=list)  # the newest job ids seen, newest first


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue as of the last sample."""

    name: str
    counts: dict[str, int]
    finished_last_minute: int
    rate: float | None
    """Jobs finished per second over the last minute (or since watching began, if later);
    None while the observer has seen no job of this queue finish."""
    mean_duration: float | None


class Observer:
    """Samples a store in a thread of its own, from :meth:`start` until :meth:`stop`."""

    def __init__(
        self,
        store: Callable[[], Store],
        sink: Sink | None = None,
        *,
        interval: float = 1.0,
    ) -> None:
        self._store = store
        self._sink = sink
        self.interval = interval
        self.since = time.time()
        self._lock = threading.Lock()
        self._queues: dict[str, _Seen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sampled = threading.Event()
        """Set after each sample (tests clear it and wait for the next)."""

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="baozi-web-observer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except StoreError as exc:  # the store may be back at the next sample
                log.warning("sampling the store failed: %s", exc)
            except Exception:
                log.exception("sampling the store failed")
            self._stop.wait(self.interval)

    # -- sampling -----------------------------------------------------------------------------

    def sample(self) -> None:
        """Take one sample of every job queue now."""
        store = self._store()
        now = time.time()
        for name in store.queues():
            if name.startswith(DEQUE_PREFIX):
                continue
            counts = store.job_counts(name)
            with self._lock:
                seen = self._queues.setdefault(name, _Seen())
                moved = counts != seen.counts
                seen.counts = counts
            if moved:
                self._scan(store, name, seen, now)
            else:  # a job retried and finished again between two samples moves no count
                self._scan_finished(store, name, seen, seen.running, page=_GLANCE)
            with self._lock:
                self._forget(seen, now)
        self.sampled.set()

    def _scan(self, store: Store, queue: str, seen: _Seen, now: float) -> None:
        # Records come newest first: the new jobs are those above the newest one seen before.
        known = set(seen.newest)
        fresh = self._records(
            store,
            queue,
            None,
            lambda rec: rec.id not in known and rec.created_at >= self.since,
            stop_early=True,
        )
        seen.newest = ([rec.id for rec in fresh] + seen.newest)[:PAGE]
        for rec in fresh:
            if self._sink is not None:
                self._sink.enqueued(queue, rec.task)
        running_before = seen.running
        running = self._records(store, queue, "running", lambda rec: True)
        seen.running = {rec.id for rec in running}
        for rec in running:
            if rec.id not in running_before and self._sink is not None:
                self._sink.started(queue, rec.task)
        self._scan_finished(store, queue, seen, running_before | seen.running, page=PAGE)

    def _scan_finished(
        self, store: Store, queue: str, seen: _Seen, started_seen: set[str], *, page: int
    ) -> None:
        # Only this thread changes seen.finishes, so it reads them without the lock.
        def unseen(rec: JobRecord) -> bool:
            # A job that finishes again after a retry has a new finishing time: counted again.
            finished = rec.finished_at or 0.0
            return seen.finishes.get(rec.id) != finished and finished > seen.horizon

        for status in ("succeeded", "failed"):
            for rec in self._records(store, queue, status, unseen, page=page):
                self._finished(queue, seen, rec, started_seen=rec.id in started_seen)

    def _records(
        self,
        store: Store,
        queue: str,
        status: str | None,
        wanted: Callable[[JobRecord], bool],
        *,
        stop_early: bool = False,
        page: int = PAGE,
    ) -> list[JobRecord]:
        """Records of the queue, newest first, that are ``wanted``: page on while a page has
        some (``stop_early``: while it has nothing else), up to MAX_SCAN records."""
        out: list[JobRecord] = []
        for offset in range(0, MAX_SCAN, page):
            found = store.records(queue, status, page, offset)
            hits = [rec for rec in found if wanted(rec)]
            out.extend(hits)
            if len(found) < page or not hits or (stop_early and len(hits) < len(found)):
                break
        return out

    def _finished(self, queue: str, seen: _Seen, rec: JobRecord, *, started_seen: bool) -> None:
        finished = rec.finished_at
        if finished is None:  # not in a finished record; nothing to count
            return
        duration = None
        if rec.started_at is not None and finished >= rec.started_at:
            duration = finished - rec.started_at
        with self._lock:
            seen.finishes[rec.id] = finished
            seen.finishes.move_to_end(rec.id)
            while len(seen.finishes) > _REMEMBERED:
                _, dropped = seen.finishes.popitem(last=False)
                seen.horizon = max(seen.horizon, dropped)
            if finished > time.time() - HISTORY:
                seen.per_second[int(finished)] += 1
                seen.first = finished if seen.first is None else min(seen.first, finished)
            if duration is not None:
                seen.durations.append(duration)
        if finished >= self.since and self._sink is not None:
            if not started_seen and rec.started_at is not None:
                self._sink.started(queue, rec.task)
            self._sink.finished(rec.status, queue, rec.task, duration)

    def _forget(self, seen: _Seen, now: float) -> None:
        cutoff = int(now - HISTORY)
        for second in [t for t in seen.per_second if t < cutoff]:
            del seen.per_second[second]
        seen.horizon = max(seen.horizon, now - HISTORY)

    # -- reading ------------------------------------------------------------------------------

    def stats(self, queue: str) -> QueueStats | None:
        """The queue as of the last sample; None before it was first sampled."""
        now = time.time()
        with self._lock:
            seen = self._queues.get(queue)
            if seen is None:
                return None
            recent = sum(n for t, n in seen.per_second.items() if t >= now - WINDOW)
            first, counts, durations = seen.first, dict(seen.counts), list(seen.durations)
        rate = None
        if first is not None:
            watched = now - min(self.since, first)
            rate = recent / max(1.0, min(WINDOW, watched))
        mean = sum(durations) / len(durations) if durations else None
        return QueueStats(queue, counts, recent, rate, mean)

    def all_stats(self) -> list[QueueStats]:
        with self._lock:
            names = sorted(self._queues)
        return [s for s in (self.stats(n) for n in names) if s is not None]

    def throughput(self) -> tuple[float, dict[str, list[int]]]:
        """Jobs finished per THROUGHPUT_BUCKET seconds over the last ten minutes, per queue,
        oldest bucket first; and the time the last bucket ends."""
        end = (time.time() // THROUGHPUT_BUCKET + 1) * THROUGHPUT_BUCKET
        start = end - THROUGHPUT_BUCKET * THROUGHPUT_BUCKETS
        series: dict[str, list[int]] = {}
        with self._lock:
            for name, seen in sorted(self._queues.items()):
                counts = [0] * THROUGHPUT_BUCKETS
                for t, n in seen.per_second.items():
                    if start <= t < end:
                        counts[int((t - start) // THROUGHPUT_BUCKET)] += n
                series[name] = counts
        return end, series

    def eta(self, rec: JobRecord, position: int | None) -> float | None:
        """Seconds until the job is likely done: for a queued job, the jobs ahead of it and
        those running, at the queue's recent rate; for a running one, the recent mean duration
        less the time it has run. None when there is no history, or for a scheduled job."""
        if rec.status in ("succeeded", "failed", "cancelled"):
            return 0.0
        stats = self.stats(rec.queue)
        if stats is None:
            return None
        if rec.status == "running" and rec.started_at is not None:
            if stats.mean_duration is None:
                return None
            return max(0.0, stats.mean_duration - (time.time() - rec.started_at))
        if position is None or not stats.rate:
            return None
        return (position + stats.counts.get("running", 0) + 1) / stats.rate
