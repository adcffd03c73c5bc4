"""Job: a thin handle (an id and an app) on a job's record, read fresh from the store each time."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._outage import outage
from ._waiting import check_timeout
from .backends.base import DEPENDENCY_FAILED, Deduplicated, JobRecord
from .errors import DependencyFailed, JobCancelled, JobFailed, JobNotFound
from .snapshot import JobSnapshot, snapshot_of

if TYPE_CHECKING:
    from .app import App
    from .pools.base import Call

__all__ = ["FINISHED", "Job"]

log = logging.getLogger("baozi.job")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
_current: contextvars.ContextVar[Job | Call | None] = contextvars.ContextVar(
    "baozi_job", default=None
)
"""The running job: its handle, or the pool's call until a handle is asked for (see
:func:`baozi.current.current_job`, which sets it to the handle)."""


class Job:
    """A job in the store. Every attribute is read from the store when asked for."""

    def __init__(self, app: App, job_id: str, *, owner: str | None = None) -> None:
        self.app = app
        self.deduplicated = isinstance(job_id, Deduplicated)
        """Whether the enqueue that returned this handle made no job, because this one held
        its unique key (False on a handle made any other way)."""
        self.id = str(job_id)
        self._owner = owner  # set only inside the worker running it

    def record(self) -> JobRecord:
        """The whole record, read now. Raises JobNotFound if the store has no such job."""
        rec = self.app.store.record(self.id)
        if rec is None:
            raise JobNotFound(f"no job {self.id!r} in {self.app.url}")
        return rec

    @property
    def status(self) -> str:
        """One of waiting (for the jobs it depends on), scheduled, queued, running, succeeded,
        failed, cancelled."""
        return self.record().status

    @property
    def task(self) -> str:
        return self.record().task

    @property
    def queue(self) -> str:
        return self.record().queue

    @property
    def attempts(self) -> int:
        """How many times a worker has started this job."""
        return self.record().attempts

    @property
    def unique_key(self) -> str | None:
        return self.record().unique_key

    @property
    def parents(self) -> list[Job]:
        """The jobs this one depends on, in the order given."""
        return [Job(self.app, i) for i in self.record().parents]

    @property
    def children(self) -> list[Job]:
        """The jobs that depend on this one, oldest first."""
        return [Job(self.app, i) for i in self.record().children]

    @property
    def created_at(self) -> float:
        return self.record().created_at

    @property
    def started_at(self) -> float | None:
        return self.record().started_at

    @property
    def finished_at(self) -> float | None:
        return self.record().finished_at

    @property
    def progress(self) -> tuple[float, str | None] | None:
        """The last ``(fraction, message)`` the task reported, or None."""
        raw = self.record().progress
        if raw is None:
            return None
        fraction, message = json.loads(raw)
        return float(fraction), message

    def snapshot(self) -> JobSnapshot:
        """Where the job stands now: its status and its place read in one store call, so they
        agree (a queued job has its position), with its progress, attempts, times and an
        estimate of when it will be done. Raises JobNotFound if the store has no such job.
        ``snapshot().describe()`` says it in words."""
        place = self.app.store.job_snapshot(self.id)
        if place is None:
            raise JobNotFound(f"no job {self.id!r} in {self.app.url}")
        return snapshot_of(self.app.store, place)

    def position(self) -> int | None:
        """How many jobs will be served before this one in its queue (0 = next); None when it is
        not in line (waiting for its dependencies, scheduled, running or finished). To show it
        with the status, read both at once: :meth:`snapshot`."""
        self.app.store.require("position")
        place = self.app.store.job_snapshot(self.id)  # one read: the status and the rank agree
        if place is None:
            raise JobNotFound(f"no job {self.id!r} in {self.app.url}")
        return place.rank

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to finish and return its value.

        Raises JobFailed (with the remote exception's type, message and traceback), JobCancelled,
        or TimeoutError when ``timeout`` seconds pass first."""
        timeout = check_timeout(timeout)
        store = self.app.store
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            token = store.change_token()
            rec = self.record()
            if rec.status in FINISHED:
                return self._outcome(rec)
            wait = 60.0
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise TimeoutError(f"job {self.id} is still {rec.status} after {timeout} s")
            store.wait_for_change(token, wait)

    def _outcome(self, rec: JobRecord) -> Any:
        if rec.status == "succeeded":
            return None if rec.result is None else self.app.codec.loads(rec.result)
        if rec.status == "cancelled":
            raise JobCancelled(f"job {self.id} was cancelled")
        error = json.loads(rec.error or "{}")
        kind = DependencyFailed if error.get("type") == DEPENDENCY_FAILED else JobFailed
        raise kind(
            self.id,
            error.get("type", "Error"),
            error.get("message", ""),
            error.get("traceback", ""),
        )

    def done(self) -> bool:
        return self.status in FINISHED

    def cancel(self) -> bool:
        """Cancel the job unless it has finished; return whether it was. It is marked cancelled
        in the store at once, is never retried, and its late result, if any, is dropped. A
        running job's code is stopped by its worker within about half a second: its process is
        killed (process pool), its coroutine cancelled (async), its greenlet killed (gevent), or
        :class:`~baozi.Cancelled` raised in its thread at its next Python bytecode -- inside a
        long C call, once that returns (thread pool)."""
        self.app.store.require("cancel")
        return self.app.store.cancel(
            self.id, ttl=self.app.result_ttl, failed_ttl=self.app.failed_ttl
        )

    @property
    def cancelled(self) -> bool:
        """Whether the job has been cancelled (one store read): a job's own code may check
        ``current_job().cancelled`` between steps of long work, to stop cleanly."""
        return self.status == "cancelled"

    def retry(self) -> bool:
        """Run a failed or cancelled job again, from its original place in its queue."""
        return self.app.store.requeue(self.id)

    def forget(self) -> bool:
        """Remove the record of a finished job (a failed one is kept until this, unless the
        app sets ``failed_ttl``); False if it has not finished or is already gone."""
        return self.app.store.forget([self.id]) == 1

    async def status_async(self) -> str:
        """:attr:`status` for asyncio code: read in a thread, off the event loop."""
        return await asyncio.to_thread(lambda: self.status)

    async def snapshot_async(self) -> JobSnapshot:
        """:meth:`snapshot` for asyncio code, off the event loop."""
        return await asyncio.to_thread(self.snapshot)

    async def position_async(self) -> int | None:
        """:meth:`position` for asyncio code, off the event loop."""
        return await asyncio.to_thread(self.position)

    async def result_async(self, timeout: float | None = None) -> Any:
        """:meth:`result` for asyncio code. Waiting holds no thread: the app's watcher (which
        sees every job of the process with one store call per change) resolves it."""
        timeout = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not finished.done():
                finished.set_result(None)

        def done(_: Job) -> None:
            loop.call_soon_threadsafe(resolve)

        await asyncio.to_thread(self.add_done_callback, done)
        try:
            await asyncio.wait_for(finished, timeout)
        except TimeoutError:
            status = await self.status_async()
            raise TimeoutError(f"job {self.id} is still {status} after {timeout} s") from None
        return await asyncio.to_thread(self.result, 0)

    def add_done_callback(self, fn: Callable[[Job], Any]) -> None:
        """Call ``fn(job)`` once the job has finished (at once if it already has), from a
        background thread of this process."""
        self.app._watcher().watch(self, fn)

    def set_progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress from inside the running task; every reader sees it as ``progress``."""
        if self._owner is None:
            raise RuntimeError("set_progress() works on current_job(), inside the running task")
        if not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1 or math.isnan(fraction):
            raise ValueError(f"progress must be a fraction between 0 and 1, not {fraction!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"a progress message must be a str, not {type(message).__qualname__}")
        self.app.store.set_progress(self.id, self._owner, json.dumps([fraction, message]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and other.app is self.app

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<Job {self.id}>"


class Watcher:
    """One thread per app that calls done-callbacks when jobs finish (it sleeps on the store's
    change signal, so it costs nothing while nothing changes)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Job, list[Callable[[Job], Any]]]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, job: Job, fn: Callable[[Job], Any]) -> None:
        with self._lock:
            entry = self._pending.setdefault(job.id, (job, []))
            entry[1].append(fn)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="baozi-watcher", daemon=True)
                self._thread.start()
        # It may have finished before the thread looked: check once here too.
        if self._finished(job):
            self._fire(job)

    @staticmethod
    def _finished(job: Job) -> bool:
        try:
            return job.status in FINISHED
        except JobNotFound:
            return True  # purged: it finished long ago
        except Exception:  # the store may be back next round
            log.exception("checking job %s failed", job.id)
            return False

    def _fire(self, job: Job) -> None:
        with self._lock:
            _, fns = self._pending.pop(job.id, (job, []))
        for fn in fns:
            try:
                fn(job)
            except Exception:
                log.exception("done-callback %r of job %s raised", fn, job.id)

    def _run(self) -> None:
        store = self.app.store
        while True:
            token = store.change_token()
            with self._lock:
                pending = list(self._pending.values())
                if not pending:
                    self._thread = None
                    return
            try:  # one read for all the jobs waited on
                statuses: dict[str, str] | None = store.statuses([job.id for job, _ in pending])
            except Exception as exc:  # the store may be back next round: said once per outage
                outage(store.url).failed(exc, "the done-callback watcher")
                statuses = None
            else:
                outage(store.url).ok("the done-callback watcher")
            for job, _ in pending:
                # A job the store no longer has finished long ago (its record was purged).
                if statuses is not None and statuses.get(job.id, "succeeded") in FINISHED:
                    self._fire(job)
            store.wait_for_change(token, 1.0)
