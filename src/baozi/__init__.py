"""baozi: Python's queues, made durable and shared by threads, processes and machines."""

import os as _os
import typing as _typing
from importlib import import_module as _import_module

if _os.environ.get("BAOZI_GEVENT") == "1":  # a gevent worker: patch before anything else loads
    import sys as _sys

    from gevent import monkey as _monkey

    _monkey.patch_all()
    # trio cannot run under gevent (the patch removes select.epoll, which it needs at import);
    # libraries that try it and fall back on ImportError (httpcore) must get that instead.
    _sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

# The public names are imported when first used (PEP 562), so a command that needs a few of
# them (the URL monitor) does not pay for importing them all at start-up.
if _typing.TYPE_CHECKING:
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

_WHERE = {
    "App": ".app",
    "AppNotFound": ".errors",
    "Array": ".sync",
    "BaoziError": ".errors",
    "Cancelled": ".errors",
    "Chain": ".workflows",
    "Chord": ".workflows",
    "Condition": ".sync",
    "DependencyFailed": ".errors",
    "Deque": ".deques",
    "Dict": ".sync",
    "Empty": ".errors",
    "EnqueueFailed": ".errors",
    "Event": ".sync",
    "Full": ".errors",
    "Group": ".workflows",
    "Hold": ".middleware",
    "Job": ".jobs",
    "JobCancelled": ".errors",
    "JobExecutor": ".executor",
    "JobFailed": ".errors",
    "JobNotFound": ".errors",
    "JobSnapshot": ".snapshot",
    "LifoQueue": ".queues",
    "Lock": ".sync",
    "Message": ".middleware",
    "Middleware": ".middleware",
    "NotABaoziStore": ".errors",
    "NotSupported": ".errors",
    "PriorityQueue": ".queues",
    "Queue": ".queues",
    "Retry": ".errors",
    "Run": ".middleware",
    "Semaphore": ".sync",
    "Signature": ".workflows",
    "Store": ".backends.base",
    "StoreError": ".errors",
    "StoreUnavailable": ".errors",
    "Task": ".tasks",
    "TaskOptions": ".tasks",
    "UndecodableItem": ".errors",
    "UnknownTask": ".errors",
    "Value": ".sync",
    "Worker": ".worker",
    "Workflow": ".workflows",
    "chain": ".workflows",
    "chord": ".workflows",
    "current_job": ".current",
    "group": ".workflows",
    "open_store": ".backends",
}
"""Each public name and the module it lives in."""


def __getattr__(name: str) -> _typing.Any:
    module = _WHERE.get(name)
    if module is not None:
        value = getattr(_import_module(module, __name__), name)
        globals()[name] = value  # once: later reads do not come here
        return value
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


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
