"""Every exception baozi raises, under one root.

::

    BaoziError
    ├── Empty           (also queue.Empty)  nothing to get within the timeout
    ├── Full            (also queue.Full)   no room to put within the timeout
    ├── JobFailed       the job raised (or died) and has no retries left: ``exc_type``,
    │                   ``exc_message`` and ``traceback`` describe the remote exception
    ├── JobCancelled    the job was cancelled before it started
    ├── JobNotFound     (also LookupError) no job with that id in the store
    ├── Retry           raised by a task to ask for another run, after ``delay`` seconds
    ├── UnknownTask     (also LookupError) a job names no task the worker's app registers or may
    │                   import; the job fails with it and nothing runs
    ├── UndecodableItem (also ValueError) an item the handle's serializer cannot read; it was
    │                   moved aside, intact, so the items behind it keep flowing
    ├── AppNotFound     (also LookupError) a ``module:attribute`` path names no App: the
    │                   module cannot be imported (``__cause__`` says why) or holds none there
    └── StoreError      the store could not do what was asked
        ├── EnqueueFailed      jobs pushed in an ``app.batch()`` block were refused (or could
        │                      not be confirmed); ``job_ids`` names them
        ├── StoreUnavailable   the store cannot be opened or reached (a bad path, a server down)
        ├── NotSupported       the store cannot do this at all (``feature``, ``store``, ``hint``)
        └── NotABaoziStore     the file or database holds something that is not a baozi store

Outside the tree, as ``asyncio.CancelledError`` is: ``Cancelled`` (a ``BaseException``) is raised
inside a running job's code when the job is cancelled, so an ``except Exception:`` in the job does
not swallow it.

``TypeError`` (an item the serializer refuses) and ``ValueError`` (a bad argument, an unknown URL
scheme) are raised as themselves, at the call site, like the standard library does.
"""

from __future__ import annotations

import queue as _stdlib_queue

__all__ = [
    "AppNotFound",
    "Cancelled",
    "BaoziError",
    "Empty",
    "EnqueueFailed",
    "Full",
    "JobCancelled",
    "DependencyFailed",
    "JobFailed",
    "JobNotFound",
    "Retry",
    "UndecodableItem",
    "UnknownTask",
    "NotABaoziStore",
    "NotSupported",
    "StoreError",
    "StoreUnavailable",
]


class BaoziError(Exception):
    """Root of every exception defined by baozi."""


class Empty(BaoziError, _stdlib_queue.Empty):
    """No item arrived within the timeout; ``except queue.Empty`` catches it too."""


class Full(BaoziError, _stdlib_queue.Full):
    """The queue stayed at its maxsize for the whole timeout; ``except queue.Full`` catches it too."""


class JobFailed(BaoziError):
    """The job failed for good. Its exception happened in a worker, maybe on another machine."""

    def __init__(self, job_id: str, exc_type: str, exc_message: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {exc_type}: {exc_message}")
        self.job_id = job_id
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback = traceback


class DependencyFailed(JobFailed):
    """The job was failed without running: a job it depends on did not succeed, and it was
    enqueued with ``on_dependency_failure="fail"``."""


class JobCancelled(BaoziError):
    """The job was cancelled, so it has no result."""


class Cancelled(BaseException):  # noqa: N818 -- named as asyncio.CancelledError's peer
    """Raised inside a running job's code when the job is cancelled: in a thread at its next
    Python bytecode (inside a long C call -- a sleep, a blocking read -- once that returns). It
    derives from ``BaseException``, like ``asyncio.CancelledError``, so that ``except
    Exception:`` does not swallow it; let it propagate."""


class JobNotFound(BaoziError, LookupError):
    """The store holds no job with this id (never had one, or its record was purged)."""


class Retry(BaoziError):
    """Raise inside a task to have it run again ``delay`` seconds from now (counts as a failure
    toward the task's ``retries``)."""

    def __init__(self, delay: float | None = None, message: str = "retry requested") -> None:
        super().__init__(message)
        self.delay = delay


class UnknownTask(BaoziError, LookupError):
    """A job names a task that is not registered, nor a function the app allows by name."""


class UndecodableItem(BaoziError, ValueError):
    """An item its reader's serializer cannot decode (it was written with another one)."""


class AppNotFound(BaoziError, LookupError):
    """A ``module:attribute`` path that names no App: malformed, a module that raised while it
    was imported (its exception is the ``__cause__``), or an attribute that is something else."""


class StoreError(BaoziError):
    """The store failed to carry out an operation."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot be opened or reached (also a ConnectionError)."""


class NotABaoziStore(StoreError):
    """The target exists but holds data that baozi did not write; baozi leaves it untouched."""


class EnqueueFailed(StoreError):
    """Jobs enqueued inside an ``app.batch()`` block that the store did not file: refused (out
    of memory, a read-only replica), or not confirmed before the store became unreachable.
    ``job_ids`` lists them; every other job of the block was filed."""

    def __init__(self, message: str, job_ids: list[str]) -> None:
        super().__init__(message)
        self.job_ids = list(job_ids)


class NotSupported(StoreError):
    """The store cannot do what was asked, by design (not a failure): ``feature`` names it,
    ``store`` is the store's URL (no password) and ``hint`` says what to use instead."""

    def __init__(self, feature: str, store: str, hint: str) -> None:
        super().__init__(f"{store} does not support {feature}: {hint}")
        self.feature = feature
        self.store = store
        self.hint = hint
