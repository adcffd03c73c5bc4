"""One job in the worker: reading its call, the outcome of its run, and the log line for it."""

from __future__ import annotations

import json
import logging
import traceback
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends.base import Item, Outcome
from ..errors import JobFailed, UnknownTask
from ..middleware import Run
from ..pools.base import RemoteError
from ..workflows import fed_results

if TYPE_CHECKING:
    from ..app import App, Task

__all__ = [
    "Done",
    "Refused",
    "decode_call",
    "error_text",
    "fed_args",
    "outcome_of",
    "report",
    "vetted",
]

log = logging.getLogger("baozi.worker")


@dataclass(slots=True)
class Done:
    """A run that ended, waiting for the loop to settle it."""

    run: Run
    outcome: Outcome
    exc: BaseException | None
    value: Any
    elapsed: float
    ended: bool = False
    """Whether the middleware's ``job_ended`` was called for it (once is all it may be)."""


class Refused(Exception):
    """A job that cannot run at all: it fails with this type name and message."""

    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type


def error_text(exc_type: str, message: str, tb: str = "") -> str:
    """A job's error as the store keeps it: JSON with its type, message and traceback."""
    return json.dumps({"type": exc_type, "message": message, "traceback": tb})


def _error(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return error_text(exc.exc_type, str(exc), exc.tb)
    tb = getattr(exc, "__baozi_traceback__", None) or "".join(  # a child process's own traceback
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    return error_text(type(exc).__name__, str(exc), tb)


def vetted(app: App, item: Item) -> Task[Any, Any]:
    """The task that runs ``item``; raises :class:`Refused` when the job may not run at all."""
    task = app.resolve(item.task or "")
    limit = task.max_deliveries if task is not None else 5
    # Deliveries that ended in neither a result nor an exception: its worker died.
    deaths = item.deliveries - 1 - item.failures
    if deaths >= limit:
        raise Refused(
            "WorkerLost",
            f"the job's worker died on each of its last {deaths} deliveries "
            f"(max_deliveries={limit}); it is not run again",
        )
    if task is None:
        raise Refused(
            UnknownTask.__name__,
            f"no task named {item.task!r} is registered in this worker's app "
            f"({app.import_path or app!r}); register it or check the name",
        )
    return task


def decode_call(app: App, item: Item) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, str]]:
    """A job's arguments and its meta (see :class:`~baozi.middleware.Message`)."""
    try:
        call = app.codec.loads(item.payload)
        args, kwargs, *rest = call
        meta = rest[0] if rest else {}
        if rest[1:] or not isinstance(kwargs, dict) or not isinstance(meta, dict):
            raise ValueError("not [args, kwargs] or [args, kwargs, meta]")
    except Exception as exc:
        raise Refused(type(exc).__name__, f"cannot decode the job's arguments: {exc}") from exc
    return tuple(args), kwargs, meta


def fed_args(app: App, item: Item, args: tuple[Any, ...], feed: str) -> tuple[Any, ...]:
    """A workflow step's arguments: its dependencies' results first (see
    :func:`~baozi.workflows.fed_results`); raises :class:`Refused` when they are not there."""
    try:
        return (fed_results(app, item.id, feed), *args)
    except JobFailed as exc:
        raise Refused(exc.exc_type, exc.exc_message) from exc


def outcome_of(app: App, run: Run, future: Future[Any]) -> Done:
    """What a run's future says: its outcome to settle, before the middleware sees it (a call
    the pool cancelled fails with CancelledError; on terminate the worker does not ask)."""
    item = run.item
    try:
        value = future.result()
        exc: BaseException | None = None
        payload = app.codec.dumps(value)
    except CancelledError as e:
        exc, payload, value = e, None, None
    except BaseException as e:  # noqa: BLE001 -- a job's exception, or an unstorable result
        exc, payload, value = e, None, None
    if exc is None:
        outcome = Outcome(item.id, "succeeded", result=payload)
    else:
        outcome = Outcome(item.id, "failed", error=_error(exc))
    return Done(run, outcome, exc, value, 0.0)


def report(done: Done) -> None:
    """The log line for a run that was settled."""
    run, outcome, exc = done.run, done.outcome, done.exc
    item, task = run.item, run.task
    if outcome.status == "deferred":
        log.debug("job %s %s held back for %.3fs", item.id, task.name, outcome.retry_in)
    elif outcome.status == "succeeded":
        log.info(
            "job %s %s succeeded in %.3fs (queue %s)", item.id, task.name, done.elapsed, run.queue
        )
    elif outcome.status == "retry":
        log.info(
            "job %s %s raised %r in %.3fs; retrying in %.1fs (queue %s)",
            item.id,
            task.name,
            exc,
            done.elapsed,
            outcome.retry_in,
            run.queue,
        )
    else:
        log.info(
            "job %s %s failed in %.3fs: %r (queue %s)",
            item.id,
            task.name,
            done.elapsed,
            exc,
            run.queue,
        )
