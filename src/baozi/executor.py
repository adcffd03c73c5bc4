"""JobExecutor: ``concurrent.futures.Executor`` on top of jobs, so work outlives the process."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import JobCancelled
from .jobs import Job
from .tasks import Task

if TYPE_CHECKING:
    from .app import App

__all__ = ["JobExecutor", "JobFuture"]

T = TypeVar("T")


class JobFuture(concurrent.futures.Future[Any]):
    """A real ``concurrent.futures.Future``, completed from its job's state; ``job`` is the job."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def cancel(self) -> bool:
        """Cancel the job if it has not started (as ``concurrent.futures`` does: a running one
        is left to finish); then the future is cancelled too."""
        if self.done():
            return self.cancelled()
        store = self.job.app.store
        store.require("cancel")
        return store.cancel(
            self.job.id,
            ttl=self.job.app.result_ttl,
            running=False,
            failed_ttl=self.job.app.failed_ttl,
        ) and (super().cancel())


def _complete(future: JobFuture, job: Job) -> None:
    if future.done():
        return
    try:
        value = job.result(timeout=0)
    except JobCancelled:
        super(JobFuture, future).cancel()
        future.set_running_or_notify_cancel()
    except BaseException as exc:  # JobFailed, or the store failing: the future carries it
        future.set_exception(exc)
    else:
        future.set_result(value)


class JobExecutor(concurrent.futures.Executor):
    """``submit`` enqueues a job and returns a future that completes when a worker -- in this
    process or on another machine -- finishes it. A drop-in for ThreadPoolExecutor or
    ProcessPoolExecutor whose work survives restarts."""

    def __init__(self, app: App, queue: str | None = None) -> None:
        self.app = app
        self.queue = queue
        self._futures: list[JobFuture] = []
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` as a job. ``fn`` is a registered task, or a module-level
        function the workers can import."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        if isinstance(fn, Task):
            job = fn.apply_async(args, kwargs, queue=self.queue)
        else:
            name = _import_name(fn)
            (job,) = self.app._enqueue(
                name, [(args, kwargs)], self.queue or "default", 0, None, False, True, None
            )
        future = JobFuture(job)
        with self._lock:
            self._futures.append(future)
        job.add_done_callback(lambda j: _complete(future, j))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            futures = list(self._futures)
        if cancel_futures:
            for f in futures:
                f.cancel()
        if wait:
            concurrent.futures.wait(futures)


def _import_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise ValueError(
            f"{fn!r} cannot be sent to a worker: submit a registered task, or a function defined "
            f"at the top level of a module the workers can import (not in __main__, not a lambda "
            f"or a nested function)"
        )
    return f"{module}:{qualname}"
