"""Middleware: hooks around enqueueing and running jobs, the one way to extend both.

An App runs its middleware in order: the defaults -- :class:`~baozi.middleware.limits.Limits`
(concurrency, lock and rate limits), :class:`~baozi.middleware.retries.Retries` (retries and
backoff) and :class:`~baozi.middleware.callbacks.Callbacks` (``on_success``/``on_failure``) --
then those added with ``App(middleware=[...])`` or :meth:`App.add_middleware`. Every hook of
:class:`Middleware` does nothing; a middleware overrides the ones it needs. Tracing is an extra:
:class:`baozi.middleware.otel.OpenTelemetry` (``pip install 'baozi[otel]'``).

Producer side, in the enqueueing thread: :meth:`~Middleware.before_enqueue` may change a job's
:class:`Message` (its ``meta`` travels in the job record to the worker), and
:meth:`~Middleware.after_enqueue` sees the job's id -- or None when the enqueue failed, whatever
failed (a full queue, the store, a later middleware's ``before_enqueue``). A middleware hears
``after_enqueue`` for each message whose ``before_enqueue`` it returned from, and for no other.
Worker side:

* :meth:`~Middleware.worker_start` / :meth:`~Middleware.worker_stop`, in the worker's thread;
* :meth:`~Middleware.before_process`, before a job runs, in the thread that starts it: return a
  :class:`Hold` to hold the job back (it goes back to its place, scheduled, and its delivery is
  not counted); :meth:`~Middleware.on_hold` then hears of it;
* :meth:`~Middleware.after_process`, once the job's call ended, in the pool's thread: returns
  the :class:`~baozi.backends.base.Outcome` to settle (it may turn a failure into a retry);
* :meth:`~Middleware.job_ended`, once for every run that passed ``before_process``, before its
  outcome is settled or when the worker gives it back: release what ``before_process`` took;
* :meth:`~Middleware.after_settle`, once the store has settled the outcome;
* :meth:`~Middleware.renew`, every third of a lease while jobs run: keep what they hold.

A hook that raises is logged and skipped, except ``before_enqueue`` (the enqueue fails at the
call site, nothing enqueued) and ``before_process``: a store error holds the job back a second,
anything else fails the job with that error (it could never run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ..app import App, Task
    from ..backends.base import Item, Outcome
    from ..worker import Worker

__all__ = ["Hold", "Message", "Middleware", "Run", "overrides"]


@dataclass(slots=True)
class Message:
    """A job about to be enqueued. ``meta`` (str to str) is stored with the job's call."""

    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    priority: int | float
    delay: float | None = None
    meta: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    """Each middleware's own notes on the enqueue, under a key of its choosing (not stored)."""


@dataclass(slots=True)
class Run:
    """One run of a job in a worker: what the hooks see of it."""

    queue: str
    item: Item
    task: Task[Any, Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    """Each middleware's own notes on the run, under a key of its choosing."""


class Hold(NamedTuple):
    """Hold a job back: try again in ``delay`` seconds, or as soon as ``slot`` (one of ``limit``
    holders) is released."""

    delay: float
    slot: str | None = None
    limit: int = 0


class Middleware:
    """No-op hooks; see the module docstring for when each runs."""

    def before_enqueue(self, app: App, message: Message) -> None:
        """A job is about to be enqueued: change ``message`` (its ``meta``) if need be."""

    def after_enqueue(self, app: App, message: Message, job_id: str | None) -> None:
        """The job was enqueued (``job_id``), or the enqueue failed (None): called once for
        every ``before_enqueue`` of this middleware that returned."""

    def worker_start(self, worker: Worker) -> None:
        """The worker starts taking jobs."""

    def worker_stop(self, worker: Worker) -> None:
        """The worker has stopped: no job runs any more."""

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        """A job is about to run: None lets it, a :class:`Hold` holds it back."""
        return None

    def on_hold(self, worker: Worker, run: Run, hold: Hold) -> None:
        """A middleware held the job back."""

    def after_process(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None
    ) -> Outcome:
        """The job's call ended (``exc`` is what it raised): return the outcome to settle."""
        return outcome

    def job_ended(self, worker: Worker, run: Run) -> None:
        """The run is over (settled next, or given back): release what it held."""

    def after_settle(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None, value: Any
    ) -> None:
        """The store settled the run's outcome (``value`` is its result when it succeeded)."""

    def renew(self, worker: Worker, runs: Sequence[Run]) -> None:
        """Jobs are still running: keep what they hold (called every third of a lease)."""


def overrides(middleware: Sequence[Middleware], hook: str) -> tuple[Middleware, ...]:
    """The middleware whose ``hook`` does something (the rest are skipped on hot paths)."""
    base = getattr(Middleware, hook)
    return tuple(m for m in middleware if getattr(type(m), hook) is not base)
