"""What the server learns by watching the store: per-queue counts, finishes, rates and estimates.

Workers run anywhere and tell the store, not the server, so the server samples the store once an
``interval`` (a second): each queue's job counts and, when they moved, the newest job records --
new jobs, running ones, and finished ones with their times.

How many jobs of a queue finished comes from its counts: the rise of its succeeded and failed
counts since the sample before. Which jobs they were -- their task, for the per-task counters,
and how long they ran -- comes from their records: jobs seen running, and jobs retried through
the API, are looked up by id once they leave that state; and the finished records are read
newest first until as many finishes not counted before are found as the counts rose, reading at
most ``MAX_SCAN`` records of each status. A finish that no record read names (a job created
before that many others) is counted all the same, under the task ``UNKNOWN_TASK``.

Counts also fall: a failed job is retried, finished records are purged once their time to live
is over. A fall is no finish, and it hides a finish of the same interval from the counts; such a
finish is counted only when its record is found (among the newest, or looked up by id). So what
the server counts is at most what happened, and short of it only that way.

From the finishes kept for ten minutes come a queue's completion rate over the last minute, the
throughput chart and the estimates of when a job will be done; the events go to a :class:`Sink`
(the Prometheus counters).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .._outage import outage
from ..backends.base import JobRecord, Store
from ._wire import DEQUE_PREFIX

__all__ = [
    "Observer",
    "QueueStats",
    "Sink",
    "THROUGHPUT_BUCKET",
    "THROUGHPUT_BUCKETS",
    "UNKNOWN_TASK",
]

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
_WATCHED = 10_000  # jobs looked up by id, at most, per queue
_GLANCE = 20  # records of each finished kind read when no count moved
_FINISHED = ("succeeded", "failed")
_CLOCKS = 1.0  # seconds that the store's clock and the server's may differ by
UNKNOWN_TASK = "(unknown)"
"""The task label of a finish the counts showed but no record read named."""


class Sink(Protocol):
    """Where the observer reports what it saw happen (after the server started)."""

    def enqueued(self, queue: str, task: str) -> None: ...

    def started(self, queue: str, task: str) -> None: ...

    def finished(self, status: str, queue: str, task: str, duration: float | None) -> None: ...


@dataclass
class _Seen:
    """What the observer remembers of one queue between samples."""

    since: float  # when the queue was first sampled
    sampled: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    # The latest finishes counted (job id -> finished_at), so that a sample counts each once;
    # bounded, and what falls out raises the horizon: finishes at or before it are not counted.
    finishes: OrderedDict[str, float] = field(default_factory=OrderedDict)
    horizon: float = 0.0
    # Finishes counted from records before the counts showed them (they finished between the
    # reading of the counts and that of the records), by status: the next rise holds them.
    ahead: Counter[str] = field(default_factory=Counter)
    # Jobs to look up by id until they finish: those retried through the API, and those that
    # left "running" for another try (job id -> when watching began).
    watched: OrderedDict[str, float] = field(default_factory=OrderedDict)
    partial: bool = False  # the first sample could not read every finish of the last minutes
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
    """Jobs finished per second over the last minute; None while the observer has seen no job of
    this queue finish. Over the time since the queue was first sampled, when that is shorter and
    the first sample could not read all the finishes before it."""
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
        self._started = False
        self.sampled = threading.Event()
        """Set after each sample (tests clear it and wait for the next)."""

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

    def watch(self, queue: str, job_id: str) -> None:
        """Look the job up by id at each sample until it finishes (the API retried it: its
        finish may move no count, and its record may be too old to be read among the newest)."""
        with self._lock:
            self._watch(self._seen(queue, time.time()), job_id)

    def _seen(self, queue: str, now: float) -> _Seen:
        return self._queues.setdefault(queue, _Seen(since=now, horizon=self.since - HISTORY))

    @staticmethod
    def _watch(seen: _Seen, job_id: str) -> None:
        seen.watched[job_id] = time.time()
        seen.watched.move_to_end(job_id)
        while len(seen.watched) > _WATCHED:
            seen.watched.popitem(last=False)

    # -- sampling -----------------------------------------------------------------------------

    def sample(self) -> None:
        """Take one sample of every job queue now."""
        store = self._store()
        now = time.time()
        for name in store.queues():
            if name.startswith(DEQUE_PREFIX):
                continue
            with self._lock:
                seen = self._seen(name, now)
            self._sample_queue(store, name, seen, now)
            with self._lock:
                self._forget(seen, now)
        self.sampled.set()

    def _sample_queue(self, store: Store, queue: str, seen: _Seen, now: float) -> None:
        # The counts are read before any record: every finish they show is in the records read
        # after them (or purged), and the records may show a few more, which the next rise holds.
        counted_at = time.time()
        counts = store.job_counts(queue)
        first = not seen.sampled
        rises = Counter(
            {s: max(0, counts.get(s, 0) - seen.counts.get(s, 0)) for s in _FINISHED}
            if not first
            else {}
        )
        moved = first or counts != seen.counts
        with self._lock:
            seen.counts = counts
        running_before = seen.running
        if moved:
            self._scan_new_and_running(store, queue, seen)
        started_seen = running_before | seen.running
        with self._lock:
            for job_id in running_before - seen.running:
                self._watch(seen, job_id)
            watched = list(seen.watched)
        looked_up = self._look_up(store, queue, seen, watched, started_seen) if watched else []
        for status in _FINISHED:
            named = [rec for rec in looked_up if rec.status == status]
            # Read until as many finishes as the counts rose are found (while a page has some
            # not counted before, in any case: a finish a fall of the counts hid may be there).
            short = rises[status] - seen.ahead[status] - len(named)
            recs, cut = self._records(
                store,
                queue,
                status,
                lambda rec: self._unseen(seen, rec),
                page=PAGE if moved else _GLANCE,
                want=short,
            )
            seen.partial = seen.partial or (first and cut)
            for rec in recs:
                self._finished(queue, seen, rec, started_seen=rec.id in started_seen)
            named += recs
            # Those found that may have finished after the counts were read: the next rise
            # holds them. By their finishing times (give or take the clocks), and no more
            # than the counts leave unexplained.
            late = sum(1 for rec in named if (rec.finished_at or 0.0) >= counted_at - _CLOCKS)
            if first:
                seen.ahead[status] = late
                continue
            unnamed = rises[status] - seen.ahead[status] - len(named)
            seen.ahead[status] = min(late, max(0, -unnamed))
            for _ in range(max(0, unnamed)):
                self._finished_unnamed(queue, seen, status, now)
        if first:
            with self._lock:
                self._first_sampled(seen)

    def _scan_new_and_running(self, store: Store, queue: str, seen: _Seen) -> None:
        # Records come newest first: the new jobs are those above the newest one seen before.
        known = set(seen.newest)
        fresh, _ = self._records(
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
        running, _ = self._records(store, queue, "running", lambda rec: True)
        seen.running = {rec.id for rec in running}
        for rec in running:
            if rec.id not in running_before and self._sink is not None:
                self._sink.started(queue, rec.task)

    def _look_up(
        self,
        store: Store,
        queue: str,
        seen: _Seen,
        job_ids: list[str],
        started_seen: set[str],
    ) -> list[JobRecord]:
        """Count the watched jobs that finished (their records are returned); stop watching
        those that are done or gone."""
        statuses = store.statuses(job_ids)
        counted, done = [], []
        for job_id in job_ids:
            status = statuses.get(job_id)
            if status in _FINISHED:
                rec = store.record(job_id)
                if rec is not None and rec.status in _FINISHED and self._unseen(seen, rec):
                    self._finished(queue, seen, rec, started_seen=job_id in started_seen)
                    counted.append(rec)
            if status not in ("queued", "scheduled", "running"):
                done.append(job_id)
        with self._lock:
            for job_id in done:
                seen.watched.pop(job_id, None)
        return counted

    @staticmethod
    def _unseen(seen: _Seen, rec: JobRecord) -> bool:
        # A job that finishes again after a retry has a new finishing time: counted again.
        # Only the sampling thread changes seen.finishes, so it reads them without the lock.
        finished = rec.finished_at or 0.0
        return seen.finishes.get(rec.id) != finished and finished > seen.horizon

    def _records(
        self,
        store: Store,
        queue: str,
        status: str | None,
        wanted: Callable[[JobRecord], bool],
        *,
        stop_early: bool = False,
        page: int | None = None,
        want: int = 0,
    ) -> tuple[list[JobRecord], bool]:
        """Records of the queue, newest first, that are ``wanted``: page on while a page has
        some (``stop_early``: while it has nothing else), or while fewer than ``want`` are
        found, up to MAX_SCAN records; and whether MAX_SCAN cut the reading short."""
        page = page or PAGE
        out: list[JobRecord] = []
        for offset in range(0, MAX_SCAN, page):
            found = store.records(queue, status, page, offset)
            hits = [rec for rec in found if wanted(rec)]
            out.extend(hits)
            if len(found) < page or (stop_early and len(hits) < len(found)):
                return out, False
            if not hits and len(out) >= want:
                return out, False
        return out, True

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
            self._count(seen, finished)
            if duration is not None:
                seen.durations.append(duration)
        if finished >= self.since and self._sink is not None:
            if not started_seen and rec.started_at is not None:
                self._sink.started(queue, rec.task)
            self._sink.finished(rec.status, queue, rec.task, duration)

    def _finished_unnamed(self, queue: str, seen: _Seen, status: str, now: float) -> None:
        with self._lock:
            self._count(seen, now)
        if self._sink is not None:  # never seen running: it was not counted as started either
            self._sink.started(queue, UNKNOWN_TASK)
            self._sink.finished(status, queue, UNKNOWN_TASK, None)

    @staticmethod
    def _count(seen: _Seen, finished: float) -> None:
        if finished > time.time() - HISTORY:
            seen.per_second[int(finished)] += 1
            seen.first = finished if seen.first is None else min(seen.first, finished)

    def _first_sampled(self, seen: _Seen) -> None:
        seen.sampled = True
        # From now on a finish from before watching began is not new: the first sample read it.
        seen.horizon = max(seen.horizon, self.since - _CLOCKS)
        if seen.partial:  # what it read of the minutes before is not all: they are left out
            for second in [t for t in seen.per_second if t < seen.since]:
                del seen.per_second[second]
            seen.first = min(seen.per_second, default=None)

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
            if seen is None or not seen.sampled:
                return None
            recent = sum(n for t, n in seen.per_second.items() if t >= now - WINDOW)
            first, counts, durations = seen.first, dict(seen.counts), list(seen.durations)
            known = WINDOW if not seen.partial else max(1.0, min(WINDOW, now - seen.since))
        rate = None if first is None else recent / known
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
