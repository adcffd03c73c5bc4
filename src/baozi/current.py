"""current_job(): the job that the task running in this thread or coroutine is working on."""

from __future__ import annotations

import threading

from .app import App
from .jobs import Job, _current
from .pools.base import Call

__all__ = ["current_job"]

# One app per store URL and serializer, for the jobs this process runs outside the worker's app
# (in a process pool's child): made once, as a handle costs a connection.
_apps: dict[tuple[str, str], App] = {}
_apps_lock = threading.Lock()


def current_job() -> Job:
    """The job whose task is running in this thread or coroutine; RuntimeError outside a task."""
    job = _current.get()
    if job is None:
        raise RuntimeError("current_job() is only available inside a running task")
    if not isinstance(job, Job):
        job = _job_for(job)
        _current.set(job)
    return job


def _job_for(call: Call) -> Job:
    """A Job handle for the call's job, able to report progress (it carries the lease owner)."""
    key = (call.url, call.serializer)
    app = _apps.get(key)
    if app is None:
        with _apps_lock:
            app = _apps.get(key)
            if app is None:
                app = _apps[key] = App(call.url, serializer=call.serializer)
    return Job(app, call.job_id, owner=call.owner)
