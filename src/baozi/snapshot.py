"""JobSnapshot: where a job stands, read at one moment -- what every reader shows of a job."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ._eta import Estimator
from ._time import iso
from .backends.base import JobPlace, Store

__all__ = ["JobSnapshot", "snapshot_of"]

_ENDED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A job's status, its place and its progress, as of one moment (:meth:`Job.snapshot`).

    The status and the place are read in one store call, so they agree: ``position`` is a
    number exactly when the status is "queued" (on a store that can rank), ``scheduled_for``
    exactly when it is "scheduled", ``waiting_for`` exactly when it is "waiting".
    :meth:`describe` says it in words, with no None in them."""

    id: str
    queue: str
    task: str
    status: str
    """waiting, scheduled, queued, running, succeeded, failed or cancelled."""
    position: int | None
    """How many jobs will be served before it (0 = next) while it is queued; else None."""
    scheduled_for: float | None
    """When a scheduled job becomes ready (a wall-clock time); else None."""
    waiting_for: int | None
    """How many of the jobs it depends on have not ended, while it is waiting; else None."""
    progress: tuple[float, str | None] | None
    """The last ``(fraction, message)`` the task reported, or None."""
    eta_seconds: float | None
    """About how many seconds until it is done (0 once it has ended); None when nothing is
    known to estimate from: no live worker serves its queue, no run of its task was reported,
    or it waits for other jobs."""
    attempts: int
    """How many times a worker has started it."""
    created_at: float
    started_at: float | None
    finished_at: float | None
    position_supported: bool = True
    """False where the jobs' broker cannot say how many are ahead of one (a RabbitMQ
    transport): ``position`` is then always None."""

    def describe(self) -> str:
        """What the job is doing, in words: "queued, 3 ahead of it", "running, 40% (step 2)",
        "scheduled for 2026-12-07T09:30:00+00:00", "waiting for 2 jobs", or how it ended."""
        if self.status == "queued":
            return "queued" if self.position is None else f"queued, {self.position} ahead of it"
        if self.status == "running" and self.progress is not None:
            fraction, message = self.progress
            done = f"{fraction:.0%}" + (f" ({message})" if message else "")
            return f"running, {done}"
        if self.status == "scheduled" and self.scheduled_for is not None:
            return f"scheduled for {iso(self.scheduled_for)}"
        if self.status == "waiting":
            if not self.waiting_for:  # the last one ended between the two reads
                return "waiting for the jobs it depends on"
            return f"waiting for {self.waiting_for} job{'' if self.waiting_for == 1 else 's'}"
        return self.status


def progress_of(raw: str | None) -> tuple[float, str | None] | None:
    """A record's progress, ``(fraction, message)``; None when there is none, or it cannot be
    read (the store is input)."""
    if raw is None:
        return None
    try:
        fraction, message = json.loads(raw)
        return float(fraction), message if isinstance(message, str) else None
    except (ValueError, TypeError):
        return None


def snapshot_of(
    store: Store,
    place: JobPlace,
    *,
    estimator: Callable[[JobPlace], float | None] | None = None,
) -> JobSnapshot:
    """The snapshot of a job from its place (:meth:`Store.job_snapshot`); the estimate and, for a
    waiting job, its dependencies' statuses are read now. ``estimator``: an
    :class:`~baozi._eta.Estimator` shared by the jobs of one page, or one that knows the
    queue's recent completion rate."""
    rec = place.record
    waiting_for = None
    if rec.status == "waiting":
        ended = store.statuses(list(rec.parents)) if rec.parents else {}
        # A parent the store no longer has ended long ago (its record was purged).
        waiting_for = sum(1 for p in rec.parents if ended.get(p, "succeeded") not in _ENDED)
    position = None if "position" in store.unsupported else place.rank
    return JobSnapshot(
        id=rec.id,
        queue=rec.queue,
        task=rec.task,
        status=rec.status,
        position=position if rec.status == "queued" else None,
        scheduled_for=rec.due_at if rec.status == "scheduled" else None,
        waiting_for=waiting_for,
        progress=progress_of(rec.progress),
        eta_seconds=(estimator or Estimator(store))(
            place if position == place.rank else place._replace(rank=position)
        ),
        attempts=rec.attempts,
        created_at=rec.created_at,
        started_at=rec.started_at,
        finished_at=rec.finished_at,
        position_supported="position" not in store.unsupported,
    )
