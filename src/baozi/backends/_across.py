"""What every store's ``enqueue_across`` shares: the groups checked before anything is written,
and the ``Full`` that names the queue without room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import Full
from .base import JobPlace, JobRecord, NewJob

Group = tuple[str, Sequence[NewJob], int]
"""(queue, plain jobs, maxsize): one group of :meth:`JobStore.enqueue_across`."""


def check_groups(groups: Sequence[Group]) -> None:
    """Raise ValueError for a job with a unique key or dependencies, or a negative maxsize."""
    for queue, jobs, maxsize in groups:
        if maxsize < 0:
            raise ValueError(f"maxsize is 0 (no bound) or more, not {maxsize!r} (queue {queue!r})")
        for job in jobs:
            if job.unique_key is not None or job.depends_on:
                raise ValueError(
                    f"enqueue_across files plain jobs: a job for queue {queue!r} has a unique "
                    "key or dependencies (enqueue it with enqueue)"
                )


def bounded(groups: Sequence[Group]) -> list[str]:
    """The queues whose ready count the check needs: those of groups with jobs and a maxsize."""
    return list(dict.fromkeys(q for q, jobs, maxsize in groups if jobs and maxsize))


def full(groups: Sequence[Group], k: int, held: int) -> Full:
    """The error for group ``k``, whose queue holds ``held`` ready items before the call."""
    queue, jobs, maxsize = groups[k]
    before = sum(len(j) for q, j, _ in groups[:k] if q == queue)
    room = max(maxsize - held - before, 0)
    earlier = f", and {before} of this call's jobs go there first" if before else ""
    return Full(
        f"queue {queue!r} has room for {room} more ready items (it holds {held} of at most "
        f"{maxsize}{earlier}), not {len(jobs)}"
    )


def over(groups: Sequence[Group], held: Mapping[str, int]) -> Full | None:
    """The error for the first group whose queue would go over its maxsize, given the ready
    count of each of :func:`bounded`'s queues; None when every group fits."""
    filed: dict[str, int] = {}
    for k, (queue, jobs, maxsize) in enumerate(groups):
        before = filed.get(queue, 0)
        filed[queue] = before + len(jobs)
        if maxsize and jobs and held[queue] + before + len(jobs) > maxsize:
            return full(groups, k, held[queue])
    return None


def filed_place(job_id: str, queue: str, job: NewJob, created: float, rank: int | None) -> JobPlace:
    """The place of a job just filed, ready, created at ``created``: its record as written."""
    record = JobRecord(
        id=job_id,
        queue=queue,
        task=job.task,
        status="queued",
        priority=job.priority,
        payload=job.payload,
        attempts=0,
        failures=0,
        created_at=created,
        started_at=None,
        finished_at=None,
        result=None,
        error=None,
        progress=None,
    )
    return JobPlace(record, rank)
