"""Periodic jobs: schedules on tasks, and the scheduler that enqueues one job per tick.

Several schedulers may run at once, for redundancy: each tick is claimed in the store with a
compare-and-set of the schedule's last tick, and only the scheduler whose swap succeeds enqueues
its job. A scheduler that starts (or restarts) catches up the ticks it missed within the last
``catch_up`` seconds (an hour by default), one job each, and skips older ones.

A scheduler that dies between claiming a tick and enqueueing its job loses that one tick.

What the store keeps of a schedule is that one value: the last tick claimed, which is its last
run (:func:`schedule_runs` reads it for every process). Before a schedule's first run it holds
the time the first scheduler started counting instead, which is never a tick of the schedule, so
the two cannot be confused.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]

from ._time import iso
from .errors import Full, StoreUnavailable

if TYPE_CHECKING:
    from .app import App, Task
    from .jobs import Job

__all__ = ["Beat", "Schedule", "ScheduleRuns", "schedule_runs"]

log = logging.getLogger("baozi.beat")

_NS = "baozi.beat"


@dataclass(frozen=True)
class Schedule:
    """When a task runs on its own: every ``every`` seconds (on multiples of it since the epoch,
    so every scheduler agrees on the ticks) or at the times of a ``cron`` expression."""

    task: Task[Any, Any]
    cron: str | None = None
    every: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    tz: str = "UTC"

    @property
    def key(self) -> str:
        """The name its last tick is kept under in the store: the task, the times and the
        arguments, so two schedules of one task are claimed apart."""
        when = f"cron={self.cron} tz={self.tz}" if self.cron else f"every={self.every!r}"
        call = json.dumps([list(self.args), self.kwargs], sort_keys=True, default=repr)
        digest = hashlib.sha1(call.encode()).hexdigest()[:12]
        return f"{self.task.name} {when} args={digest}"

    def describe(self) -> str:
        """When it runs, in words: "cron 0 * * * * (UTC)" or "every 30s"."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.tz})"
        assert self.every is not None
        return f"every {self.every:g}s"

    def next_after(self, t: float) -> float:
        """The first tick strictly after wall-clock time ``t``."""
        if self.every is not None:
            # Ticks are whole multiples of the interval; rounding in t / every may land on t
            # itself, so step until past it.
            k = math.floor(t / self.every) + 1
            while k * self.every <= t:
                k += 1
            return k * self.every
        assert self.cron is not None
        start = datetime.datetime.fromtimestamp(t, ZoneInfo(self.tz))
        return float(croniter(self.cron, start).get_next(float))

    def last_at_or_before(self, t: float) -> float:
        """The latest tick at or before ``t``."""
        if self.every is not None:
            k = math.floor(t / self.every)
            while k * self.every > t:
                k -= 1
            return k * self.every
        assert self.cron is not None
        start = datetime.datetime.fromtimestamp(t, ZoneInfo(self.tz))
        prev = float(croniter(self.cron, start).get_prev(float))
        following = self.next_after(prev)
        return following if following <= t else prev


def make_schedule(
    task: Task[Any, Any],
    cron: str | None,
    every: float | datetime.timedelta | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    tz: str,
) -> Schedule:
    """Check a schedule's options and make it (errors name what is wrong)."""
    if (cron is None) == (every is None):
        raise ValueError("give a periodic task either cron='*/5 * * * *' or every=timedelta(...)")
    seconds: float | None = None
    if every is not None:
        seconds = every.total_seconds() if isinstance(every, datetime.timedelta) else every
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or not seconds > 0
        ):
            raise ValueError(f"every must be a positive timedelta or seconds, not {every!r}")
        seconds = float(seconds)
    if cron is not None and (not isinstance(cron, str) or not croniter.is_valid(cron)):
        raise ValueError(f"cron {cron!r} is not a valid cron expression, e.g. '*/5 * * * *'")
    try:
        ZoneInfo(tz)
    except Exception as exc:
        raise ValueError(f"tz {tz!r} is not a known time zone, e.g. 'Europe/Paris'") from exc
    try:
        inspect.signature(task.fn).bind(*args, **(kwargs or {}))
    except TypeError as exc:
        raise TypeError(
            f"periodic task {task.name}: args={tuple(args)!r} kwargs={kwargs!r} do not fit "
            f"{task.fn.__qualname__}{inspect.signature(task.fn)}: {exc}"
        ) from None
    for other in task.app.schedules:
        if other.task is task and (other.cron, other.every, other.tz, other.args, other.kwargs) == (
            cron,
            seconds,
            tz,
            tuple(args),
            dict(kwargs or {}),
        ):
            raise ValueError(f"task {task.name} already has this schedule")
    return Schedule(task, cron, seconds, tuple(args), dict(kwargs or {}), tz)


class Beat:
    """Enqueues the jobs of an app's periodic tasks when they are due. Run it in a thread
    (:meth:`start`, :meth:`stop`) or in the foreground (:meth:`run`)."""

    def __init__(self, app: App, catch_up: float = 3600.0) -> None:
        self.app = app
        self.catch_up = float(catch_up)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> list[Job]:
        """Enqueue a job for every tick that is due and not yet claimed; return those jobs."""
        now = time.time() if now is None else now
        jobs = []
        for schedule in self.app.schedules:
            jobs += self._due(schedule, now)
        return jobs

    def _due(self, schedule: Schedule, now: float) -> list[Job]:
        store, key = self.app.store, schedule.key
        jobs: list[Job] = []
        raw = store.kv_get(_NS, key)
        if raw is None:
            # The first scheduler ever for this schedule starts counting from now.
            store.kv_cas(_NS, key, None, repr(_start_mark(schedule, now)).encode())
            return jobs
        while True:
            last = float(raw)
            due = schedule.next_after(max(last, now - self.catch_up))
            if due > now:
                return jobs
            if store.kv_cas(_NS, key, raw, repr(due).encode()):
                raw = repr(due).encode()
                try:  # never blocks: a full queue must not hold up every other schedule
                    job = schedule.task.apply_async(schedule.args, schedule.kwargs, block=False)
                except Full:
                    log.warning("%s: tick %s skipped: its queue is full", key, iso(due))
                    continue
                log.info("%s: tick %s enqueued job %s", key, iso(due), job.id)
                jobs.append(job)
            else:  # another scheduler claimed it: go on from what it wrote
                fresh = store.kv_get(_NS, key)
                if fresh is None:
                    return jobs
                raw = fresh

    def next_wake(self, now: float) -> float:
        """Seconds until the next tick of any schedule (at most 60)."""
        wait = 60.0
        for schedule in self.app.schedules:
            wait = min(wait, schedule.next_after(now) - now)
        return max(wait, 0.0)

    def run(self) -> None:
        """Enqueue due jobs until :meth:`stop`."""
        if not self.app.schedules:
            log.warning("beat: the app has no periodic tasks; nothing to schedule")
        log.info(
            "beat: %d schedule(s): %s",
            len(self.app.schedules),
            ", ".join(s.key for s in self.app.schedules),
        )
        backoff = 0.0
        while not self._stop.is_set():
            try:
                self.tick()
                backoff = 0.0
                wait = self.next_wake(time.time()) + 0.001
            except Exception as exc:  # the store may come back: keep the schedule going
                backoff = min(max(backoff * 2, 0.1), 5.0)
                if isinstance(exc, StoreUnavailable):
                    log.warning("beat: %s; retrying in %.1fs", exc, backoff)
                else:
                    log.exception("beat: a tick failed; retrying in %.1fs", backoff)
                wait = backoff
            self._stop.wait(wait)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="baozi-beat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _start_mark(schedule: Schedule, now: float) -> float:
    """When counting starts: ``now``, or the float just past it if ``now`` is a tick itself (a
    mark is never a tick, see the module docstring; the first tick after it is the same)."""
    return now if schedule.last_at_or_before(now) != now else math.nextafter(now, math.inf)


@dataclass(frozen=True)
class ScheduleRuns:
    """A schedule's runs as the store knows them."""

    schedule: Schedule
    last_run: float | None
    """The tick of its last run (None before its first)."""
    next_run: float
    """The tick of its next run: earlier than now when it is overdue (no scheduler is running)."""
    counting_since: float | None = None
    """Before its first run: when the first scheduler started counting (None if none has yet)."""


def schedule_runs(
    app: App, now: float | None = None, catch_up: float = 3600.0
) -> list[ScheduleRuns]:
    """The last and next run of each of the app's schedules, read from its store."""
    now = time.time() if now is None else now
    out = []
    for schedule in app.schedules:
        raw = app.store.kv_get(_NS, schedule.key)
        if raw is None:  # no scheduler has seen it: the first one counts from its start
            out.append(ScheduleRuns(schedule, None, schedule.next_after(now)))
            continue
        claimed = float(raw)
        next_run = schedule.next_after(max(claimed, now - catch_up))
        if schedule.last_at_or_before(claimed) == claimed:
            out.append(ScheduleRuns(schedule, claimed, next_run))
        else:
            out.append(ScheduleRuns(schedule, None, next_run, counting_since=claimed))
    return out
