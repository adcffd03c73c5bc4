"""The job part of the store contract: records that outlive their runs, and workers.

**Jobs** are items that keep a record after they are done. :meth:`Store.enqueue` adds them with a
task name and a creation time; reserving one marks it started; :meth:`Store.settle` finishes it --
succeeded or failed, with its result or error, kept for a time to live -- or schedules it again
for a retry, in the same atomic step that ends its lease, so a job can never look "running" without
a lease behind it. Its status is derived from its state: waiting, scheduled, queued, running (a
lease that has run out reads "queued"), then succeeded, failed or cancelled.

**Unique jobs and dependencies** (see :class:`~baozi.backends.contract.records.NewJob`). A job
may carry a unique key, global in the store: :meth:`enqueue` makes no job while another holds it
(:func:`~baozi.backends.contract.records.unique_holds`) and returns that job's id as a
:class:`~baozi.backends.contract.records.Deduplicated` -- decided atomically, so that any number
of racing enqueues of one key make one job. A job may depend on others: it is "waiting" until
they have all succeeded, and the step that ends the last of them (:meth:`settle`,
:meth:`cancel`) makes it ready in the same transaction, so a dependent is released exactly once.
A waiting job is an item of its queue that is not ready: :meth:`Store.counts` counts it as
``waiting``, it has no rank, nothing reserves it, and (like a scheduled job) it is not one of
the ready items ``maxsize`` bounds.

**Time to live.** A finished job's record is kept ``ttl`` seconds, a failed one's
``failed_ttl`` seconds (``math.inf``: until :meth:`forget` removes it), each at least as long as
its ``unique_for`` when it has a unique key.

**Publish-pending marks.** A transport that hands job ids to a broker (RabbitMQ) while the store
keeps the records notes with a mark that a job's message may not have been published yet: a
mark maps (queue, job id) to a time (a float, epoch seconds) at or after which to publish it.
A job has at most one. Marks are independent of the job's state -- settling, retrying,
cancelling or requeueing it leaves its mark as it is -- and go with its record (:meth:`forget`,
:meth:`purge_expired`, ``clear``, and whatever removes its item: ``ack``, ``discard``, ``pop``,
``splice``), so that none names a job the store no longer holds. Times come back exactly as
they were written, so that :meth:`clear_pending` can compare with a time :meth:`pending`
returned.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence

from .records import JobPlace, JobRecord, NewJob, Outcome, Priority, WorkerInfo

__all__ = ["JobStore"]


class JobStore(ABC):
    """Jobs -- items with a task and a record -- and the workers that run them (see the module
    docstring). Every method is atomic."""

    @abstractmethod
    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        pending: float | None = None,
    ) -> list[str]:
        """Add jobs as :meth:`push` adds items (same order, atomicity and ``maxsize`` rule), each
        with a record: its task name and creation time. Returns their ids. With ``pending``,
        every job this call files (not one returned as a ``Deduplicated``, filed before) gets a
        publish-pending mark at that time, in the same atomic step."""

    def enqueue_one(self, queue: str, task: str, payload: bytes, priority: Priority = 0) -> str:
        """:meth:`enqueue` of one job at the back of ``queue``, ready now, with no ``maxsize``:
        what ``task.delay()`` does, which a store may do with less work. Returns its id."""
        return self.enqueue(queue, [NewJob(task, payload, priority)])[0]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """A block in which :meth:`enqueue` calls of the thread that entered it may return before
        the store confirms them; all are confirmed when the block ends, which then raises
        :class:`~baozi.errors.EnqueueFailed` naming every job the store did not file. Outside
        a block, :meth:`enqueue` returns only once its jobs are filed. A nested block joins the
        outer one. A store whose writes cost no round trip confirms each at once (the default).
        """
        yield

    @abstractmethod
    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        """End the runs of jobs ``owner`` holds, all in one step: finished ones keep their record for
        ``ttl`` seconds (failed ones ``failed_ttl``), retried ones are scheduled again; jobs that
        depend on the finished ones are released (or cancelled, or failed) in the same step.
        Jobs ``owner`` no longer holds are left alone. Returns how many were settled."""

    @abstractmethod
    def cancel(
        self,
        job_id: str,
        ttl: float = 86400.0,
        *,
        running: bool = True,
        failed_ttl: float = math.inf,
    ) -> bool:
        """Mark a job that has not finished -- waiting, scheduled, queued or running --
        cancelled, its record kept ``ttl`` seconds; False once it has finished. A running job's
        lease ends in the same step: its owner's :meth:`settle` and ``extend`` leave it alone
        (its worker learns of it through :meth:`statuses`). With ``running=False`` a job whose
        lease is live is left alone too (False), as ``concurrent.futures`` cancels. Jobs that
        depend on it are cancelled, failed (kept ``failed_ttl``) or released in the same step,
        as each one's ``on_dependency_failure`` says."""

    @abstractmethod
    def forget(self, job_ids: Sequence[str]) -> int:
        """Remove the records of these jobs that have finished (jobs not yet finished are left
        alone); return how many were removed. How failed jobs kept without end leave."""

    @abstractmethod
    def requeue(self, job_id: str) -> bool:
        """Put a failed or cancelled job back in its queue, at its original place, starting over
        (its failure and delivery counts cleared, ready at once); False if it is not failed or
        cancelled. Its dependencies are not waited for again, and the jobs that depended on it
        keep what became of them."""

    @abstractmethod
    def record(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store holds no job with this id."""

    def records_of(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """The records of these jobs, by id, in as few calls as the store can (a chord's
        callback reads every member's result); ids with no job are left out."""
        out = {}
        for job_id in dict.fromkeys(job_ids):
            rec = self.record(job_id)
            if rec is not None:
                out[job_id] = rec
        return out

    @abstractmethod
    def job_snapshot(self, job_id: str) -> JobPlace | None:
        """The job's record with its place, both read at one moment (one transaction or script):
        its rank when its status is "queued" -- never None then, on a store that serves
        ``position`` -- and None otherwise. None if the store holds no job with this id. What a reader shows as "where the job stands" is read with this, so that
        its status and its place cannot disagree."""

    def job_snapshots(self, job_ids: Sequence[str]) -> dict[str, JobPlace]:
        """:meth:`job_snapshot` of each of these jobs, in one call; ids with no job are left
        out. Each job's status and rank agree, as in ``job_snapshot``; a store that can reads
        them all at one moment, and ranks the jobs of a queue by one count ahead of the first
        and a walk to the last, rather than one count each (this default asks job by job)."""
        out: dict[str, JobPlace] = {}
        for job_id in dict.fromkeys(job_ids):
            place = self.job_snapshot(job_id)
            if place is not None:
                out[job_id] = place
        return out

    def enqueue_placed(
        self, queue: str, jobs: Sequence[NewJob], *, maxsize: int = 0
    ) -> list[tuple[str, JobPlace | None]]:
        """:meth:`enqueue` of plain jobs (no unique key, no dependencies) at the back of
        ``queue``, with each one's id and place as :meth:`job_snapshots` gives it: None for a
        job gone already (forgotten, or expired). Raises as ``enqueue`` does, ``Full`` too. A
        store that can tell the places in the enqueue's own step -- the records it just wrote
        and their ranks at its commit -- does so; this default reads them afterwards."""
        ids = self.enqueue(queue, jobs, maxsize=maxsize)
        places = self.job_snapshots(ids)
        return [(job_id, places.get(job_id)) for job_id in ids]

    @abstractmethod
    def enqueue_across(
        self,
        groups: Sequence[tuple[str, Sequence[NewJob], int]],
        *,
        pending: float | None = None,
    ) -> list[list[tuple[str, JobPlace | None]]]:
        """:meth:`enqueue_placed` of several groups at once, all in one atomic step (one
        transaction, one script): each group is (queue, plain jobs, maxsize -- 0 for none), its
        jobs filed at the back of its queue, ready now, in order, the groups one after the
        other. Returns, per group in order, each job's id and place as ``enqueue_placed`` gives
        them (a store that can tells them from the same step).

        All or nothing: when some group's queue would hold more than its ``maxsize`` ready
        items (as ``enqueue`` counts them; groups naming one queue count together, each checked
        as it comes), raises :class:`~baozi.errors.Full` naming that queue and its room, and
        files no job of any group. A job with a unique key or dependencies raises ValueError
        before anything is written. With ``pending``, every job gets a publish-pending mark at
        that time in the same step (see the module docstring). Every queue filed wakes its
        waiters (and, where the store hands jobs to idle workers, those waiting on it)."""

    @abstractmethod
    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these jobs, in one call; ids with no job are left out."""

    @abstractmethod
    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally of one queue and one status."""

    @abstractmethod
    def records_page(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        task: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[JobRecord], str | None]:
        """One page of jobs, newest first (the order of :meth:`records`), and the cursor of the
        next page: None once there is none.

        Only jobs that pass every filter given are listed: of ``queue``; in ``status`` (one of
        :data:`STATUSES`); whose task is named ``task`` exactly; created at or after ``since``
        and before ``until``; and, with ``search``, whose id is ``search`` or whose task name
        contains it, ASCII letters matched in either case (other characters exactly).

        Pages are read by key, not by offset: ``cursor`` (what the call for the page before
        returned) names where the last page stopped, and a page holds only jobs older than
        that. So jobs enqueued meanwhile, newer than all of them, never appear on later pages,
        and no job is listed twice or skipped while jobs are added (a job removed meanwhile,
        finished and purged, is not listed; its status may change between pages, and with it
        whether it passes a status filter). A store that finds the jobs by walking its records
        rather than by an index examines a bounded number of them per call and may return a
        short page, even an empty one, with a cursor to go on from: a short page is not the
        end; only a None cursor is. A cursor is text to pass back as it is, to the store and
        the listing that made it (the filters given again); text that is not of a cursor's
        form raises ``ValueError``, as do a ``status`` that is not one of :data:`STATUSES`
        and a ``limit`` below 1."""

    @abstractmethod
    def oldest_ready(self, queues: Sequence[str]) -> dict[str, float]:
        """For each of these queues holding ready jobs (status "queued"), the creation time of
        the oldest of them (the first one enqueued of those ready now, whatever their
        priorities), read at one moment: the queue's latency is the time since. Queues with no
        ready job, and plain items, are left out. Read from the head of each priority's line
        (or an index), never by a walk over every ready job."""

    @abstractmethod
    def running_jobs(self, queues: Sequence[str]) -> dict[str, list[str]]:
        """The ids of the items of these queues (jobs, and the plain items of a queue) each
        owner holds under a lease that has not run out, as of one moment: what
        :meth:`lease_holders` counts, by id (owners holding none are left out; the ids in no
        set order)."""

    @abstractmethod
    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        """Store a running job's progress (JSON text) if ``owner`` holds it."""

    @abstractmethod
    def job_counts(self, queue: str) -> dict[str, int]:
        """How many jobs of the queue are in each of :data:`STATUSES`."""

    @abstractmethod
    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        """How many of each :data:`COUNTED` event the queue's jobs have had, by task: every task
        with a count maps every event to its total (0 included). Read in one step: the totals
        are as of one moment. Totals since the store began counting (files made by an older
        baozi count from their upgrade on)."""

    @abstractmethod
    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        """How many items of these queues each owner holds under a lease that has not run out,
        as of one moment (owners holding none are left out)."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Remove finished jobs whose time to live has run out; return how many."""

    @abstractmethod
    def mark_pending(self, queue: str, marks: Mapping[str, float]) -> int:
        """Set the publish-pending mark of each of these jobs of ``queue`` to its time (a new
        mark, or one moved); ids that name no job of the queue (unknown, another queue's,
        forgotten) are left alone. Returns how many marks were set."""

    @abstractmethod
    def clear_pending(self, queue: str, marks: Mapping[str, float | None]) -> int:
        """Remove the marks of these jobs of ``queue``: each one whose time equals the time
        given (a compare-and-delete: a mark someone moved since stays), or whatever its time
        when None is given. Returns how many were removed."""

    @abstractmethod
    def pending(self, queue: str, before: float, limit: int = 100) -> list[tuple[str, float]]:
        """The marks of ``queue`` whose time is at most ``before``, earliest first (equal times
        in no set order), at most ``limit`` of them: (job id, time) pairs."""

    @abstractmethod
    def next_pending(self, queue: str) -> float | None:
        """The earliest time of the marks of ``queue``; None when it has none."""

    @abstractmethod
    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        """Record that ``worker`` is alive; it counts as gone ``ttl`` seconds after its last beat."""

    @abstractmethod
    def workers(self) -> list[WorkerInfo]:
        """The workers whose last heartbeat is recent enough."""

    @abstractmethod
    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped."""
