"""Workflows: signatures, and the chains, groups and chords made of them.

A step's jobs depend on the jobs of the step before (``depends_on``), so the store releases each
one in the same atomic step that settles the last job it waits for: a chord's callback runs
once, and only once every member has succeeded, whatever workers die meanwhile. A job that
takes its dependencies' results carries a note in its call's meta (``baozi.feed``); its worker
reads those results from the store and passes them first: one value after a single job, the
list of values, in order, after a group.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from ._meta import FEED, WORKFLOW_META
from ._waiting import check_timeout
from .errors import JobFailed, JobNotFound
from .jobs import FINISHED, Job

if TYPE_CHECKING:
    from .app import App
    from .tasks import Task

__all__ = [
    "FEED",
    "Chain",
    "Chord",
    "ChordResult",
    "Group",
    "GroupResult",
    "Signature",
    "Workflow",
    "chain",
    "chord",
    "fed_results",
    "group",
]


_OPTIONS = frozenset(
    {"queue", "priority", "delay", "eta", "front", "unique_key", "unique_while", "unique_for"}
)


class Signature:
    """A task with its arguments, not yet enqueued: ``task.s(*args, **kwargs)``."""

    def __init__(
        self,
        task: Task[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.options = dict(options or {})

    def set(self, **options: Any) -> Signature:
        """A copy with these :meth:`Task.apply_async` options (queue, priority, delay, eta,
        front, unique_key, unique_while, unique_for)."""
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(
                f"a signature takes the options {sorted(_OPTIONS)}, not {sorted(unknown)}"
            )
        return Signature(self.task, self.args, self.kwargs, {**self.options, **options})

    def delay(self) -> Job:
        """Enqueue the job; return it."""
        return self.apply_async()

    def apply_async(self, **options: Any) -> Job:
        """Enqueue the job with these options too (those of :meth:`Task.apply_async`)."""
        return self.task.apply_async(self.args, self.kwargs, **{**self.options, **options})

    def _check(self, fed: bool) -> None:
        """Raise TypeError unless the task takes these arguments (after a result, if ``fed``)."""
        args = (None, *self.args) if fed else self.args
        self.task._check_call(args, self.kwargs, " (a workflow step)")

    def _enqueue(self, after: list[Job], feed: str | None) -> Job:
        if not after:
            return self.delay()
        token = WORKFLOW_META.set({FEED: feed} if feed else None)
        try:
            return self.task.apply_async(self.args, self.kwargs, depends_on=after, **self.options)
        finally:
            WORKFLOW_META.reset(token)

    def __repr__(self) -> str:
        call = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}.s({', '.join(call)})"


def _check(step: object) -> None:
    if not isinstance(step, (Signature, Group, Chain)):
        raise TypeError(
            f"a workflow step must be a signature (task.s(...)), a group or a chain, not {step!r}"
        )


class Workflow:
    """What ``.delay()`` on a chain, group or chord returns: the jobs it made, its status and
    its result. Its *ends* are its last step's jobs: a chain's or chord's last job, or every
    member of a group (or of a group that ends a chain)."""

    def __init__(self, app: App, jobs: list[Job], last: list[Job]) -> None:
        self.app = app
        self.jobs = jobs
        """Every job the workflow made, in the order they were enqueued."""
        self._last = last

    def ends(self) -> list[Job]:
        """The jobs whose end is the workflow's end (what ``depends_on=`` waits for)."""
        return list(self._last)

    def _statuses(self) -> dict[str, str]:
        ids = [j.id for j in self.jobs]
        found = self.app.store.statuses(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise JobNotFound(f"no job {missing[0]!r} in {self.app.url} (its record was purged)")
        return found

    def _status(self, statuses: dict[str, str]) -> str:
        found = {statuses[j.id] for j in self._last}
        if len(self._last) == 1:
            return found.pop()
        for end in ("failed", "cancelled"):
            if end in found:
                return end
        return "succeeded" if found == {"succeeded"} else "running"

    @property
    def status(self) -> str:
        """That of its last job: a chain's last step, a chord's callback. With several ends (a
        group): "failed" if one failed, "cancelled" if one was cancelled (and none failed),
        "succeeded" once all have, "running" until then."""
        return self._status(self._statuses())

    def _wait(self, timeout: float | None) -> dict[str, str]:
        timeout = check_timeout(timeout)
        store = self.app.store
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            token = store.change_token()
            statuses = self._statuses()
            status = self._status(statuses)
            if status in FINISHED:
                return statuses
            wait = 60.0
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise TimeoutError(f"the workflow is still {status} after {timeout} s")
            store.wait_for_change(token, wait)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the workflow's end and return its value -- the last job's, or the list of a
        group's values in order; if a step failed for good, raise that step's JobFailed (the
        first failed, in the order the jobs were made; JobCancelled if one was cancelled)."""
        statuses = self._wait(timeout)
        if self._status(statuses) != "succeeded":
            for status in ("failed", "cancelled"):
                for job in self.jobs:
                    if statuses[job.id] == status:
                        job.result(0)  # raises
        values = [j.result(0) for j in self._last]
        return values if len(self._last) > 1 or isinstance(self, GroupResult) else values[0]

    def cancel(self) -> int:
        """Cancel every job of the workflow that has not finished; return how many were."""
        return sum(job.cancel() for job in reversed(self.jobs))

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self.jobs)} jobs>"


class GroupResult(Workflow):
    """A group's handle: its members run in parallel; its result is their list of values."""


class Group:
    """Signatures to run in parallel: ``baozi.group(a.s(1), a.s(2))``."""

    def __init__(self, steps: Iterable[Signature]) -> None:
        self.steps = list(steps)
        if not self.steps:
            raise ValueError("a group needs at least one signature")
        for s in self.steps:
            if not isinstance(s, Signature):
                raise TypeError(f"a group holds signatures (task.s(...)), not {s!r}")

    def delay(self) -> GroupResult:
        """Enqueue every member; return the group's handle."""
        self._check(False)
        jobs = self._enqueue([], None)
        return GroupResult(self.steps[0].task.app, jobs, jobs)

    def _check(self, fed: bool) -> None:
        for s in self.steps:
            s._check(fed)

    def _enqueue(self, after: list[Job], feed: str | None) -> list[Job]:
        return [s._enqueue(after, feed) for s in self.steps]


class Chain:
    """Steps run one after the other, each given the result of the one before as its first
    argument: ``baozi.chain(a.s(1, 2), b.s(10))`` runs ``b(a(1, 2), 10)``. A group as a step
    runs its members in parallel, each given the result before; the step after it is given
    the list of the group's results."""

    def __init__(self, steps: Iterable[Any]) -> None:
        self.steps = list(steps)
        if not self.steps:
            raise ValueError("a chain needs at least one step")
        for s in self.steps:
            _check(s)

    def delay(self) -> Workflow:
        """Enqueue every step (each waits for the one before); return the chain's handle.
        Every step's arguments are checked first: a bad one raises TypeError, and nothing is
        enqueued."""
        self._check(False)
        jobs, last, _ = self._enqueue([], None)
        return Workflow(self._app(), jobs, last)

    def _check(self, fed: bool) -> bool:
        """Check every step; return whether a step after this chain is fed."""
        for step in self.steps:
            if isinstance(step, Chain):
                fed = step._check(fed)
            else:
                step._check(fed)
                fed = True
        return fed

    def _app(self) -> App:
        first = self.steps[0]
        while not isinstance(first, Signature):
            first = first.steps[0]
        return first.task.app

    def _enqueue(
        self, after: list[Job], feed: str | None
    ) -> tuple[list[Job], list[Job], str | None]:
        """Enqueue the steps after ``after``; return every job made, the last step's jobs, and
        how they feed a step after them."""
        made: list[Job] = []
        for step in self.steps:
            if isinstance(step, Signature):
                after, feed = [step._enqueue(after, feed)], "one"
                made += after
            elif isinstance(step, Group):
                after, feed = step._enqueue(after, feed), "list"
                made += after
            else:
                inner, after, feed = step._enqueue(after, feed)
                made += inner
        return made, after, feed


class Chord(Chain):
    """A group and a callback given the list of its results, called once every member has
    succeeded; if a member fails for good (or is cancelled), the callback is cancelled."""

    def __init__(self, header: Group | Iterable[Signature], body: Signature) -> None:
        header = header if isinstance(header, Group) else Group(header)
        if not isinstance(body, Signature):
            raise TypeError(f"a chord's callback is a signature (task.s(...)), not {body!r}")
        super().__init__([header, body])

    def delay(self) -> Workflow:
        """Enqueue the group, then the callback (waiting for every member)."""
        self._check(False)
        jobs, last, _ = self._enqueue([], None)
        return ChordResult(self._app(), jobs, last)


class ChordResult(Workflow):
    """A chord's handle: its status and result are its callback's."""


def chain(*steps: Any) -> Chain:
    """Steps run in turn, each given the previous one's result first (see :class:`Chain`)."""
    return Chain(steps)


def group(*steps: Signature | Iterable[Signature]) -> Group:
    """Signatures run in parallel (see :class:`Group`); ``group(iterable)`` works too."""
    if len(steps) == 1 and not isinstance(steps[0], Signature):
        return Group(steps[0])
    return Group(cast("tuple[Signature, ...]", steps))  # Group checks each


def chord(header: Group | Iterable[Signature], body: Signature) -> Chord:
    """A group and a callback given the list of its results once all succeed."""
    return Chord(header, body)


def fed_results(app: App, job_id: str, feed: str) -> Any:
    """The value a job with ``feed`` meta takes first: its one dependency's result ("one"), or
    the list of its dependencies' results in order ("list"). Raises JobFailed naming the
    dependency whose result is not there (it did not succeed, or its record was purged)."""
    store = app.store
    rec = store.record(job_id)
    parents = rec.parents if rec is not None else ()
    found = store.records_of(parents)  # one read for a chord's thousand members
    values = []
    for parent in parents:
        p = found.get(parent)
        if p is None or p.status != "succeeded":
            why = "its record was purged (result_ttl)" if p is None else f"it {p.status}"
            raise JobFailed(job_id, "DependencyFailed", f"no result of job {parent}: {why}", "")
        values.append(None if p.result is None else app.codec.loads(p.result))
    if feed == "one":
        if len(values) != 1:
            raise JobFailed(
                job_id, "DependencyFailed", f"expected one dependency, found {len(values)}", ""
            )
        return values[0]
    return values
