"""What the store contract speaks in: items, new jobs, outcomes, job records, workers, counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "CLAIM_TTL",
    "COUNTED",
    "DEPENDENCY_FAILED",
    "Counts",
    "Deduplicated",
    "ON_DEPENDENCY_FAILURE",
    "UNIQUE_WHILE",
    "Item",
    "JobPlace",
    "JobRecord",
    "NewJob",
    "Outcome",
    "Priority",
    "STATUSES",
    "WorkerInfo",
    "dependency_error",
    "kept_for",
    "unique_holds",
]

Priority = int | float | str | bytes | tuple[Any, ...]
"""A number, as jobs have; a queue item (:class:`baozi.PriorityQueue`) may have a str, bytes or
a tuple of those (see :mod:`baozi.backends._order`)."""


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


UNIQUE_WHILE = ("queued_or_running", "queued", "running")
"""When a job holds its unique key (see :func:`unique_holds`)."""

ON_DEPENDENCY_FAILURE = ("cancel", "run", "fail")
"""What becomes of a job when one of the jobs it depends on ends other than "succeeded"."""


class NewJob(NamedTuple):
    """A job to enqueue: the task it runs, its encoded call, its priority; and optionally its
    unique key and the jobs it waits for.

    With ``unique_key``, :meth:`Store.enqueue` first looks for a job of the store (any queue)
    with that key that still holds it (:func:`unique_holds`, by that job's own ``unique_while``
    and ``unique_for``): if there is one, no job is made and its id is returned as a
    :class:`Deduplicated`. A job earlier in the same call counts too.

    With ``depends_on`` (ids of jobs the store holds, in any queue), the job is "waiting" until
    every one of them has succeeded; then it is ready (or scheduled, if its ``delay`` has not
    yet passed). When one of them ends otherwise -- failed for good, or cancelled -- the job's
    ``on_dependency_failure`` decides, in the same atomic step: "cancel" cancels it, "fail"
    fails it with a ``DependencyFailed`` error, and "run" counts that dependency as done. A job
    cancelled or failed this way does the same to its own dependents. A dependency that has
    already ended when the job is enqueued counts at once; an id the store has no job for makes
    :meth:`Store.enqueue` raise :class:`~baozi.errors.JobNotFound` and file nothing.
    """

    task: str
    payload: bytes
    priority: Priority = 0
    unique_key: str | None = None
    unique_while: str = "queued_or_running"
    unique_for: float = 0.0
    depends_on: tuple[str, ...] = ()
    on_dependency_failure: str = "cancel"


class Deduplicated(str):
    """The id :meth:`Store.enqueue` returns in place of a new job's when another job holds the
    new job's unique key: the id of that job (``isinstance(job_id, Deduplicated)``)."""

    __slots__ = ()


def unique_holds(
    unique_while: str, unique_for: float, status: str, finished_at: float | None, now: float
) -> bool:
    """Whether a job with a unique key holds it: while it is "queued" (any status before it
    runs: waiting, scheduled, queued -- a retry waits as scheduled or queued) or "running", as
    its ``unique_while`` says; and for ``unique_for`` seconds after it finished, however it
    ended."""
    if status in ("succeeded", "failed", "cancelled"):
        return finished_at is not None and finished_at + unique_for > now
    if status == "running":
        return unique_while != "queued"
    return unique_while != "running"


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

    A job that ends ("succeeded", "failed") releases the jobs that depend on it in the same
    step (see :class:`NewJob`).
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

STATUSES = ("waiting", "scheduled", "queued", "running", "succeeded", "failed", "cancelled")
"""A job's status: "waiting" for the jobs it depends on, "scheduled" for its time (a delay or a
retry's back-off), "queued" (ready; or its lease ran out), "running" (leased), then how it
ended."""

DEPENDENCY_FAILED = "DependencyFailed"
"""The error type of a job failed because a job it depends on did not succeed."""


def dependency_error(parent: str, parent_status: str) -> str:
    """The error a job failed by its dependency ``parent`` keeps (JSON, as a worker's errors)."""
    return json.dumps(
        {
            "type": DEPENDENCY_FAILED,
            "message": f"job {parent}, which this job depends on, {parent_status}",
            "traceback": "",
        }
    )


def kept_for(ttl: float, unique_key: str | None, unique_for: float) -> float:
    """How long a finished job's record is kept: its time to live, or longer while it still
    holds its unique key (the key is looked up through the record)."""
    return max(ttl, unique_for) if unique_key is not None else ttl


COUNTED = ("enqueued", "started", "succeeded", "failed", "cancelled")
"""The events :meth:`Store.job_totals` counts, per queue and task:

* **enqueued** -- a job was added by :meth:`Store.enqueue` (once per job: a requeue is not an
  enqueue);
* **started** -- a job was leased to a worker (by :meth:`Store.reserve` or :meth:`Store.claim`,
  or handed off): each delivery counts, so a job retried, deferred by a limit, handed back or
  whose lease ran out counts again when it is leased again;
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
    unique_key: str | None = None
    parents: tuple[str, ...] = ()
    """The jobs it depends on, in the order given (ids; a purged one's id stays)."""
    children: tuple[str, ...] = ()
    """The jobs that depend on it, oldest first (ids of jobs the store still holds)."""
    on_dependency_failure: str = "cancel"
    due_at: float | None = None
    """For a scheduled job, when it becomes ready; None in every other status."""
    worker: str | None = None
    """The worker (the lease owner) running it while its status is "running"; in every other
    status, the owner of its last run that ended -- settled (succeeded, failed, retried) or
    cancelled while its lease was live -- and None when none of its runs has ended that way
    since it was enqueued or requeued (a lease that ran out ends no run here). A deferred run (a limit held
    it back) did not run and changes nothing."""


class JobPlace(NamedTuple):
    """A job's record and where it stands, read at one moment (:meth:`Store.job_snapshot`); a
    scheduled job's time is the record's ``due_at``."""

    record: JobRecord
    rank: int | None
    """How many ready items are ahead of it when its status is "queued" (0 = next), else None
    (None too, for a queued job, on a store that cannot tell: see ``position`` in
    :data:`~baozi.backends.base.FEATURES`)."""


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
    waiting: int = 0
    """Jobs waiting for the jobs they depend on."""

    @property
    def total(self) -> int:
        return self.ready + self.leased + self.scheduled + self.waiting
