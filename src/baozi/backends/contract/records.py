"""What the store contract speaks in: items, new jobs, outcomes, job records, workers, counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "CLAIM_TTL",
    "COUNTED",
    "Counts",
    "Item",
    "JobRecord",
    "NewJob",
    "Outcome",
    "Priority",
    "STATUSES",
    "WorkerInfo",
]

Priority = int | float


class Item(NamedTuple):
    """One item as handed out by the store (a tuple: this is made on every reservation)."""

    id: str
    payload: bytes
    priority: Priority
    deliveries: int = 0
    """How many times the item has been reserved (by this reservation too, for ``reserve``)."""
    task: str | None = None
    """For a job, the name of its task; None for a plain queue item."""
    failures: int = 0
    """For a job, how many of its runs have raised so far."""


class NewJob(NamedTuple):
    """A job to enqueue: the task it runs, its encoded call, its priority."""

    task: str
    payload: bytes
    priority: Priority = 0


class Outcome(NamedTuple):
    """How a run ended, for :meth:`Store.settle`.

    ``status`` is "succeeded" (``result`` holds the encoded value), "failed" (``error`` holds a JSON
    text with the exception's type, message and traceback), or "retry": the job goes back to its
    place, scheduled ``retry_in`` seconds from now, its failure count raised and ``error`` kept;
    or "deferred": the job did not run (a concurrency, lock or rate limit held it back), so it goes
    back to its place, scheduled ``retry_in`` seconds from now, and the delivery its reservation
    counted is taken back. A deferred job with a ``slot`` (of ``slot_limit`` holders) waits for
    that slot: the next :meth:`Store.release_slot` of it makes the first such job (in queue order)
    ready at once, and ``retry_in`` is only how long it waits at most; if the slot has fewer than
    ``slot_limit`` holders when this is settled (one left meanwhile), the job is ready at once.
    """

    id: str
    status: str
    result: bytes | None = None
    error: str | None = None
    retry_in: float = 0.0
    slot: str | None = None
    slot_limit: int = 0


CLAIM_TTL = 10.0
"""How long a slot freed for a waiting job stays kept for it (it is ready: a worker takes it
within moments unless every worker is busy)."""

STATUSES = ("scheduled", "queued", "running", "succeeded", "failed", "cancelled")

COUNTED = ("enqueued", "started", "succeeded", "failed", "cancelled")
"""The events :meth:`Store.job_totals` counts, per queue and task:

* **enqueued** -- a job was added by :meth:`Store.enqueue` (once per job: a requeue is not an
  enqueue);
* **started** -- a job was leased to a worker (by :meth:`Store.reserve`, or handed off): each
  delivery counts, so a job retried, deferred by a limit, handed back or whose lease ran out
  counts again when it is leased again;
* **succeeded**, **failed**, **cancelled** -- a job reached that end (a job requeued after it
  failed, and finished again, counts again; a retry is no end and counts nothing).

Each total only grows: it is counted in the same atomic step as the change it counts, and
neither purging records nor :meth:`Store.clear` takes it back; only :meth:`Store.delete_queue`
drops a queue's totals, with the queue. Plain items (:meth:`Store.push`) count nothing."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Everything the store knows about one job, read at one moment."""

    id: str
    queue: str
    task: str
    status: str
    priority: Priority
    payload: bytes
    attempts: int
    """How many times a worker has started it (its deliveries)."""
    failures: int
    """How many of those runs raised (or died, or timed out)."""
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: bytes | None
    error: str | None
    progress: str | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker reports about itself with each heartbeat."""

    id: str
    host: str
    pid: int
    pool: str
    concurrency: int
    queues: tuple[str, ...]
    busy: int = 0
    started_at: float = 0.0
    last_seen: float = 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    """How many items of a queue are in each state. Expired leases count as ready."""

    ready: int
    leased: int
    scheduled: int

    @property
    def total(self) -> int:
        return self.ready + self.leased + self.scheduled
