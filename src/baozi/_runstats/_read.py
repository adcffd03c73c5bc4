"""Reading the run statistics back: per-task counts and run-time percentiles over a window, runs
per queue over time, and one job's attempt log."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from ..backends.base import Store
from ._layout import attempts_ns, hour_of, percentile, read_buckets, runs_ns, window

__all__ = [
    "Attempt",
    "Percentiles",
    "TaskStats",
    "Throughput",
    "attempt_log",
    "task_stats",
    "throughput",
]


class Percentiles(TypedDict):
    p50: float | None
    p95: float | None
    p99: float | None


class TaskStats(TypedDict):
    task: str
    queue: str
    succeeded: int
    failed: int
    """Runs that raised (or were refused), whether or not the job runs again."""
    retried: int
    """Of the failed runs, those whose job was scheduled to run again."""
    failure_rate: float | None
    run_ms: Percentiles


class Throughput(TypedDict):
    window_seconds: int
    bucket_seconds: int
    start: int
    end: int
    queues: dict[str, dict[str, list[int]]]


class AttemptError(TypedDict):
    type: str
    message: str


class Attempt(TypedDict):
    attempt: int
    worker: str
    started_at: float
    finished_at: float
    outcome: str
    error: AttemptError | None


def task_stats(store: Store, window_seconds: int, now: float | None = None) -> list[TaskStats]:
    """Every task that ran in the last ``window_seconds`` (600, 3600 or 86400), per queue,
    ordered by queue and task: its runs that succeeded and failed, the share that failed (None
    when none ran), and the 50th, 95th and 99th percentiles of its run times in ms (within 5%;
    None when no run time was counted)."""
    w = window(window_seconds, now)
    totals: dict[tuple[str, str], list[Any]] = {}
    for value in read_buckets(store, runs_ns, w).values():
        for queue, tasks in value.items():
            for task, (s, f, r, hist) in tasks.items():
                was = totals.setdefault((queue, task), [0, 0, 0, {}])
                was[0], was[1], was[2] = was[0] + s, was[1] + f, was[2] + r
                for i, n in hist.items():
                    was[3][int(i)] = was[3].get(int(i), 0) + n
    out: list[TaskStats] = []
    for (queue, task), (s, f, r, hist) in sorted(totals.items()):
        out.append(
            TaskStats(
                task=task,
                queue=queue,
                succeeded=s,
                failed=f,
                retried=r,
                failure_rate=f / (s + f) if s + f else None,
                run_ms=Percentiles(
                    p50=percentile(hist, 0.50),
                    p95=percentile(hist, 0.95),
                    p99=percentile(hist, 0.99),
                ),
            )
        )
    return out


def throughput(
    store: Store, window_seconds: int, queue: str | None = None, now: float | None = None
) -> Throughput:
    """Runs that ended per bucket over the last ``window_seconds``, per queue (or only
    ``queue``), oldest bucket first: points of 10 s over 600 s, of a minute over 3600 s, of
    15 minutes over 86400 s. The last point is the bucket under way. "failed" counts every run
    that raised, "retried" those of them whose job runs again."""
    w = window(window_seconds, now)
    queues: dict[str, dict[str, list[int]]] = {}
    for start, value in read_buckets(store, runs_ns, w).items():
        point = (start - w.start) // w.step
        for name, tasks in value.items():
            if queue is not None and name != queue:
                continue
            series = queues.get(name)
            if series is None:
                series = queues[name] = {
                    k: [0] * w.points for k in ("succeeded", "failed", "retried")
                }
            for s, f, r, _ in tasks.values():
                series["succeeded"][point] += s
                series["failed"][point] += f
                series["retried"][point] += r
    return Throughput(
        window_seconds=w.seconds,
        bucket_seconds=w.step,
        start=w.start,
        end=w.end,
        queues=dict(sorted(queues.items())),
    )


def attempt_log(store: Store, job_id: str, created_at: float) -> list[Attempt]:
    """The runs of job ``job_id`` (made at ``created_at``) that did not succeed, and the run that
    succeeded after them, in attempt order (the latest 100). An attempt number missing from the
    list is a run whose worker died, or one that succeeded on a job run again by hand. One
    store read."""
    found = store.kv_get(attempts_ns(hour_of(created_at)), job_id)
    return [] if found is None else list(json.loads(found))
