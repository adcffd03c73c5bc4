"""What the server learns by watching the store: per-queue counts, finishes, rates and estimates.

Workers run anywhere and tell the store, not the server, so the server samples the store once an
``interval`` (a second): each queue's job counts by status and its job totals
(:meth:`~baozi.backends.base.Store.job_totals`). The totals only grow, and the store counts each
finish in the step that makes it, so the rise of the succeeded and failed totals between two
samples is exactly how many jobs finished in between, however many that is and whatever else
happened (retries, purges, new jobs). No job record is read.

From those rises, kept for ten minutes, come a queue's completion rate over the last minute and the
throughput chart; the estimates of when a job will be done use the rate once it rests on enough
finishes (see :mod:`baozi._eta`). A run's mean duration comes from
Little's law: the jobs running on average over the last minute, divided by the rate they finish.

Each queue's counts also go to the store every few seconds, as the largest of each 10-second and
minute bucket (:class:`~baozi._runstats.DepthSamples`), so its depth over the last day outlives
the server.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .._outage import outage
from .._runstats import DepthSamples
from ..backends.base import Store
from ._wire import DEQUE_PREFIX

__all__ = ["Observer", "QueueStats", "THROUGHPUT_BUCKET", "THROUGHPUT_BUCKETS", "finished"]

log = logging.getLogger("baozi.web")

WINDOW = 60.0
"""The completion rate is over the last minute."""
HISTORY = 600.0
"""Finishes are kept ten minutes, for the throughput chart."""
THROUGHPUT_BUCKET = 10.0
THROUGHPUT_BUCKETS = int(HISTORY // THROUGHPUT_BUCKET)
_FINISHED = ("succeeded", "failed")


def finished(totals: dict[str, dict[str, int]]) -> int:
    """How many runs of a queue's jobs have ended, from its job totals."""
    return sum(t.get(s, 0) for t in totals.values() for s in _FINISHED)


@dataclass
class _Seen:
    """What the observer remembers of one queue between samples."""

    known_from: float  # since when its finishes are all known (-inf: since it began)
    finished: int  # its finished total at the last sample
    counts: dict[str, int] = field(default_factory=dict)
    per_second: Counter[int] = field(default_factory=Counter)  # finishes seen at each second
    any_finish: bool = False
    running: deque[tuple[float, int]] = field(default_factory=deque)  # (when, how many)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue as of the last sample."""

    name: str
    counts: dict[str, int]
    """Its jobs that have not finished, by status: waiting, scheduled, queued, running."""
    finished_last_minute: int
    rate: float | None
    """Jobs finished per second over the last minute (or, for a queue that held jobs when the
    server started, since then, when that is shorter); None while the observer has seen no job
    of this queue finish."""
    mean_duration: float | None


class Observer:
    """Samples a store in a thread of its own, from :meth:`start` until :meth:`stop`."""

    def __init__(self, store: Callable[[], Store], *, interval: float = 1.0) -> None:
        self._store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._queues: dict[str, _Seen] = {}
        self._began = False  # the first sample was taken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self.sampled = threading.Event()
        """Set after each sample (tests clear it and wait for the next)."""
        self._samples = 0  # samples taken: what stats() read is good until the next one
        self._read: dict[str, tuple[tuple[int, int], QueueStats | None]] = {}
        self.depths = DepthSamples()
        """Each queue's counts, kept in the store (see :func:`baozi._runstats.depth_series`)."""

    def start(self) -> None:
        self._started = True
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="baozi-web-observer", daemon=True
            )
            self._thread.start()

    def start_once(self) -> None:
        """:meth:`start`, unless it was started before (and maybe stopped since)."""
        if not self._started:
            self.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
            try:  # the samples since the last flush
                self.depths.flush(self._store())
            except Exception as exc:  # noqa: BLE001 -- only statistics: said, not raised
                log.warning("writing the last queue depths failed: %s", exc)

    def _run(self) -> None:
        health = None  # the store's shared outage log, once the store is open
        while not self._stop.is_set():
            try:
                health = outage(self._store().url)
                self.sample()
                health.ok("the web observer, sampling")
            except Exception as exc:  # the store may be back at the next sample
                if health is None:
                    log.warning("opening the store failed: %s", exc)
                else:
                    health.failed(exc, "the web observer, sampling")
            self._stop.wait(self.interval)

    # -- sampling -----------------------------------------------------------------------------

    def sample(self) -> None:
        """Take one sample of every job queue now."""
        store = self._store()
        names = [n for n in store.queues() if not n.startswith(DEQUE_PREFIX)]
        now = time.time()
        for name in names:
            # The jobs in line, not the finished records: a count of those reads every one of
            # them, each second, in each server process (/api/queues counts them when asked).
            held = store.counts(name)
            counts = {
                "waiting": held.waiting,
                "scheduled": held.scheduled,
                "queued": held.ready,
                "running": held.leased,
            }
            total = finished(store.job_totals(name))
            with self._lock:
                self._record(name, counts, total, time.time())
            self.depths.add(name, {**counts, "ready": held.ready}, now)
        with self._lock:
            for gone in set(self._queues) - set(names):  # deleted
                del self._queues[gone]
            self._read.clear()
            self._began = True
            self._samples += 1
        self.sampled.set()
        if self.depths.due():
            self.depths.flush(store, now)

    def _record(self, name: str, counts: dict[str, int], total: int, now: float) -> None:
        seen = self._queues.get(name)
        if seen is None and not self._began:  # when its finishes so far happened is not known
            seen = self._queues[name] = _Seen(known_from=now, finished=total)
        elif seen is None:  # a queue made since the first sample: all its finishes are new
            seen = self._queues[name] = _Seen(known_from=-math.inf, finished=0)
        # The total falls only when the queue was deleted and made anew between two samples.
        rise = total - seen.finished if total >= seen.finished else total
        seen.finished, seen.counts = total, counts
        if rise:
            seen.per_second[int(now)] += rise
            seen.any_finish = True
        seen.running.append((now, counts.get("running", 0)))
        while seen.running and seen.running[0][0] < now - WINDOW:
            seen.running.popleft()
        cutoff = int(now - HISTORY)
        for second in [t for t in seen.per_second if t < cutoff]:
            del seen.per_second[second]

    # -- reading ------------------------------------------------------------------------------

    def stats(self, queue: str) -> QueueStats | None:
        """The queue as of the last sample; None before it was first sampled. Worked out once
        per sample and second, however many requests ask (each estimate does)."""
        now = time.time()
        when = (self._samples, int(now))
        last = self._read.get(queue)
        if last is not None and last[0] == when:
            return last[1]
        found = self._stats(queue, now)
        self._read[queue] = (when, found)
        return found

    def _stats(self, queue: str, now: float) -> QueueStats | None:
        with self._lock:
            seen = self._queues.get(queue)
            if seen is None:
                return None
            recent = sum(n for t, n in seen.per_second.items() if t >= now - WINDOW)
            known = max(self.interval, min(WINDOW, now - seen.known_from))
            running = [n for _, n in seen.running]
            counts, any_finish = dict(seen.counts), seen.any_finish
        rate = recent / known if any_finish else None
        mean = None
        if rate and running:
            mean = sum(running) / len(running) / rate
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
