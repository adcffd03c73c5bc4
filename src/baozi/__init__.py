"""baozi: Python's queues, made durable and shared by threads, processes and machines."""

import os as _os

if _os.environ.get("BAOZI_GEVENT") == "1":  # a gevent worker: patch before anything else loads
    import sys as _sys

    from gevent import monkey as _monkey

    _monkey.patch_all()
    # trio cannot run under gevent (the patch removes select.epoll, which it needs at import);
    # libraries that try it and fall back on ImportError (httpcore) must get that instead.
    _sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

from .app import App
from .backends import open_store
from .backends.base import Store
from .current import current_job
from .deques import Deque
from .errors import (
    AppNotFound,
    BaoziError,
    Cancelled,
    DependencyFailed,
    Empty,
    EnqueueFailed,
    Full,
    JobCancelled,
    JobFailed,
    JobNotFound,
    NotABaoziStore,
    NotSupported,
    Retry,
    StoreError,
    StoreUnavailable,
    UndecodableItem,
    UnknownTask,
)
from .executor import JobExecutor
from .jobs import Job
from .middleware import Hold, Message, Middleware, Run
from .queues import LifoQueue, PriorityQueue, Queue
from .snapshot import JobSnapshot
from .sync import Array, Condition, Dict, Event, Lock, Semaphore, Value
from .tasks import Task, TaskOptions
from .worker import Worker
from .workflows import Chain, Chord, Group, Signature, Workflow, chain, chord, group


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata on first use: importlib.metadata costs a
    # command's start-up some 25 ms, and most commands never show the version.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import metadata

    try:
        version = metadata.version("baozi")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        version = "0.0.0+unknown"
    globals()["__version__"] = version
    return version


__all__ = [
    "App",
    "AppNotFound",
    "Array",
    "BaoziError",
    "Chain",
    "Chord",
    "Condition",
    "DependencyFailed",
    "Deque",
    "Dict",
    "Empty",
    "EnqueueFailed",
    "Event",
    "Full",
    "Group",
    "Hold",
    "Job",
    "JobSnapshot",
    "Cancelled",
    "JobCancelled",
    "JobExecutor",
    "JobFailed",
    "JobNotFound",
    "LifoQueue",
    "Lock",
    "Message",
    "Middleware",
    "NotABaoziStore",
    "NotSupported",
    "PriorityQueue",
    "Queue",
    "Retry",
    "Run",
    "Semaphore",
    "Signature",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Task",
    "TaskOptions",
    "UndecodableItem",
    "UnknownTask",
    "Value",
    "Worker",
    "Workflow",
    "__version__",
    "chain",
    "chord",
    "current_job",
    "group",
    "open_store",
]
