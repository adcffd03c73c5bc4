"""How long until a job is done: the one estimate job snapshots, the web API and the CLI show.

It is made of what the store knows: the job's place (:meth:`Store.job_snapshot`), its task's
typical run time, which workers report to the store as they run it (the median of a worker's
last runs, under :data:`RUN_TIMES`), and the slots of the live workers that serve its queue,
less those their leases fill now. A queued job with a free slot for it is done in about one run
time; one that must wait for ``n`` slots to free waits ``ceil(n / slots)`` run times more -- or
``n / rate`` when the caller knows the queue's recent completion rate (the web server samples
it). Nothing is known -- the estimate is None -- when no live worker serves the queue or no run
of the task has been reported.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from .backends.base import JobPlace, Store

__all__ = [
    "RATE_FINISHES",
    "RUN_TIMES",
    "Estimator",
    "RunTimes",
    "Slots",
    "estimate",
    "eta",
    "run_time",
    "slots",
]

RUN_TIMES = "baozi.run-times"
"""The key-value namespace where workers keep each task's typical run time: the key is the
task's name, the value JSON ``{"seconds": median, "runs": how many it is over, "at": when}``."""

KEPT = 20
"""How many of its last runs of a task a worker's median is over."""
RATE_FINISHES = 10
"""How many finishes in the last minute make a queue's completion rate worth estimating by."""

_ENDED = frozenset({"succeeded", "failed", "cancelled"})


class RunTimes:
    """A worker's recent run times per task, and which tasks it has news of since it last
    reported them (thread-safe: runs end in the pool's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, deque[float]] = {}
        self._news: set[str] = set()

    def add(self, task: str, seconds: float) -> bool:
        """Count one successful run; True when it is the first of its task (worth reporting
        at once: until then nothing is known of it)."""
        with self._lock:
            runs = self._runs.get(task)
            first = runs is None
            if runs is None:
                runs = self._runs[task] = deque(maxlen=KEPT)
            runs.append(seconds)
            self._news.add(task)
            return first

    def news(self) -> dict[str, tuple[float, int]]:
        """The median and the count of the kept runs of each task run since the last call."""
        with self._lock:
            out = {t: (statistics.median(self._runs[t]), len(self._runs[t])) for t in self._news}
            self._news.clear()
            return out

    def report(self, store: Store) -> None:
        """Write the news to the store (one key per task that ran since the last report)."""
        for task, (seconds, runs) in self.news().items():
            value = {"seconds": round(seconds, 6), "runs": runs, "at": round(time.time(), 3)}
            store.kv_set(RUN_TIMES, task, json.dumps(value).encode())


def run_time(store: Store, task: str) -> float | None:
    """The task's typical run time as last reported by a worker; None if none was (or what the
    store holds cannot be read: it is input, and an estimate is no reason to fail)."""
    raw = store.kv_get(RUN_TIMES, task)
    if raw is None:
        return None
    try:
        seconds = json.loads(raw)["seconds"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        return None
    return float(seconds)


class Slots(NamedTuple):
    """The slots of the live workers that serve a queue."""

    total: int
    free: int
    """Those not holding a job now (by the store's leases, not the heartbeats, which lag)."""


def slots(store: Store, queue: str) -> Slots:
    """The slots that serve ``queue`` now."""
    serving = [w for w in store.workers() if queue in w.queues]
    if not serving:
        return Slots(0, 0)
    held = store.lease_holders(sorted({q for w in serving for q in w.queues}))
    total = sum(w.concurrency for w in serving)
    free = sum(max(0, w.concurrency - held.get(w.id, 0)) for w in serving)
    return Slots(total, free)


def estimate(
    place: JobPlace,
    run: float | None,
    serving: Slots,
    *,
    rate: float | None = None,
    now: float | None = None,
) -> float | None:
    """Seconds until the job is likely done (see the module docstring): 0 once it has ended;
    None when nothing is known, and for a job waiting for others (their own estimates decide)."""
    rec = place.record
    if rec.status in _ENDED:
        return 0.0
    if run is None or serving.total <= 0 or rec.status == "waiting":
        return None
    now = time.time() if now is None else now
    if rec.status == "running":
        return max(0.0, run - (now - (rec.started_at or now)))
    if rec.status == "scheduled":  # the line it will join is not known yet: free slots, then
        return max(0.0, (rec.due_at or now) - now) + run
    if place.rank is None:  # queued, on a store that cannot rank
        return None
    behind = place.rank - serving.free + 1  # how many slots must free before it starts
    if behind <= 0:
        wait = 0.0
    elif rate:
        wait = behind / rate
    else:
        wait = math.ceil(behind / serving.total) * run
    return wait + run


class Estimator:
    """Estimates for any number of jobs, each task's run time and each queue's slots read once
    (a page of jobs costs a read per task and per queue, not per job). ``rate``: the recent
    completion rate of a queue, when the caller knows one (see :func:`estimate`). With ``ttl``
    > 0 what was read is kept that many seconds, so a long-lived estimator (the web server's)
    reads each task's run time and each queue's slots at most once per ``ttl`` however many
    requests it answers; an estimate does not need them fresher."""

    def __init__(
        self,
        store: Store,
        rate: Callable[[str], float | None] | None = None,
        *,
        ttl: float = math.inf,
        unknown_ttl: float = 0.0,
    ) -> None:
        self._store = store
        self._rate = rate
        self._ttl = ttl
        self._unknown_ttl = unknown_ttl
        self._runs: dict[str, tuple[float, float | None]] = {}
        self._slots: dict[str, tuple[float, Slots]] = {}

    def __call__(self, place: JobPlace) -> float | None:
        rec = place.record
        if rec.status in _ENDED:
            return 0.0
        if rec.status == "waiting":
            return None
        now = time.monotonic()
        # What is not known yet (no run reported, no worker serving) is kept only
        # ``unknown_ttl`` seconds (by default not at all), so the first report or the first
        # worker counts at once, or that soon.
        kept = self._runs.get(rec.task)
        if kept is None or now - kept[0] > (
            self._ttl if kept[1] is not None else self._unknown_ttl
        ):
            kept = (now, run_time(self._store, rec.task))
            if kept[1] is not None or self._unknown_ttl:
                self._runs[rec.task] = kept
        run = kept[1]
        if run is None:
            return None
        held = self._slots.get(rec.queue)
        if held is None or now - held[0] > (self._ttl if held[1].total else self._unknown_ttl):
            held = (now, slots(self._store, rec.queue))
            if held[1].total or self._unknown_ttl:
                self._slots[rec.queue] = held
        rate = self._rate(rec.queue) if self._rate is not None else None
        return estimate(place, run, held[1], rate=rate)


def eta(store: Store, place: JobPlace) -> float | None:
    """One job's :func:`estimate`, with its run time and its queue's slots read now."""
    return Estimator(store)(place)
