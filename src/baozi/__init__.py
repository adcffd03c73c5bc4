"""baozi: Python's queues, made durable and shared by threads, processes and machines."""

import os as _os

if _os.environ.get("BAOZI_GEVENT") == "1":  # a gevent worker: patch before anything else loads
    import sys as _sys

    from gevent import monkey as _monkey

    _monkey.patch_all()
    # trio cannot run under gevent (the patch removes select.epoll, which it needs at import);
    # libraries that try it and fall back on ImportError (httpcore) must get that instead.
    _sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

from importlib.metadata import PackageNotFoundError, version

from .app import App, Task
from .deques import Deque
from .errors import (
    BaoziError,
    Empty,
    EnqueueFailed,
    Full,
    JobCancelled,
    JobFailed,
    JobNotFound,
    NotABaoziStore,
    Retry,
    StoreError,
    StoreUnavailable,
    UndecodableItem,
    UnknownTask,
)
from .jobs import Job, current_job
from .queues import LifoQueue, PriorityQueue, Queue
from .sync import Condition, Dict, Event, Lock, Semaphore
from .worker import Worker

try:
    __version__ = version("baozi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "App",
    "BaoziError",
    "Condition",
    "Deque",
    "Dict",
    "Empty",
    "EnqueueFailed",
    "Event",
    "Full",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "LifoQueue",
    "Lock",
    "NotABaoziStore",
    "PriorityQueue",
    "Queue",
    "Retry",
    "Semaphore",
    "StoreError",
    "StoreUnavailable",
    "Task",
    "UndecodableItem",
    "UnknownTask",
    "Worker",
    "__version__",
    "current_job",
]
