"""App and Task: the registry of task functions, and how jobs get into their queues."""

from __future__ import annotations

import asyncio
import datetime
import functools
import importlib
import inspect
import math
import re
import string
import threading
import types
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from ._names import check_name
from ._process import current_pid
from ._waiting import check_timeout, wait_until
from .backends import open_store, resolve_url
from .backends.base import NewJob, Store
from .errors import Full
from .jobs import Job, Watcher
from .serialize import Serializer, get_serializer
from .sync import Condition, Dict, Event, Lock, Semaphore

if TYPE_CHECKING:
    from .beat import Schedule
    from .executor import JobExecutor

__all__ = ["App", "QueueSpec", "Task"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A job queue's discipline: its order for equal priorities, and its bound (0 = none)."""

    name: str
    order: str = "fifo"
    maxsize: int = 0


_UNDECLARED = QueueSpec("")
"""The discipline of a queue the app never declared: FIFO, unbounded."""


_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*/\s*([smh])\s*$")


def _rate_interval(rate: object) -> float:
    """ "100/m" -> seconds between events (0.6)."""
    m = _RATE.match(rate) if isinstance(rate, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(
            f"rate_limit must look like '100/m' (a positive count per s, m or h), not {rate!r}"
        )
    return _PERIODS[m.group(2)] / float(m.group(1))


def _check_lock_template(fn: Callable[..., Any], template: object) -> None:
    """A lock template may name only the function's parameters: "account:{account_id}"."""
    if not isinstance(template, str) or not template:
        raise ValueError(f"lock must be a non-empty str template, not {template!r}")
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"lock template {template!r} is malformed: {exc}") from None
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            raise ValueError(
                f"lock template {template!r}: name the parameter, as in {{account_id}}, not {{{field}}}"
            )
        if name not in params and not takes_any:
            raise ValueError(
                f"lock template {template!r} names {name!r}, which is not a parameter of "
                f"{fn.__qualname__}{inspect.signature(fn)}"
            )


def _seconds_until(eta: object) -> float:
    if not isinstance(eta, datetime.datetime):
        raise TypeError(f"eta must be a datetime, not {type(eta).__name__} ({eta!r})")
    if eta.tzinfo is None or eta.utcoffset() is None:
        raise ValueError(
            f"eta {eta.isoformat()} has no time zone: give an aware datetime, such as "
            f"datetime.now(timezone.utc) + timedelta(minutes=5)"
        )
    return max((eta - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)


def _plain_names(dotted: str) -> list[str] | None:
    """The parts of a dotted name, or None if any is not an identifier or is a dunder name."""
    parts = dotted.split(".")
    if all(p.isidentifier() and not (p.startswith("__") and p.endswith("__")) for p in parts):
        return parts
    return None


def _allowed_function(name: str, packages: set[str]) -> Task[Any, Any] | Callable[..., Any] | None:
    """The function (or task) ``module:qualname`` names, if a worker may run it by that name."""
    module_name, _, qualname = name.partition(":")
    module_parts, path = _plain_names(module_name), _plain_names(qualname)
    if module_parts is None or path is None or module_parts[0] not in packages:
        return None
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception:  # a missing or broken module is an unknown task, nothing worse
        return None
    for i, part in enumerate(path):
        if i and not isinstance(obj, type):
            return None  # only a class of the module may be looked into, nothing else
        obj = inspect.getattr_static(obj, part, None)
        if isinstance(obj, staticmethod):
            obj = obj.__func__
        if isinstance(obj, types.ModuleType):
            return None
    fn = obj.fn if isinstance(obj, Task) else obj
    if not isinstance(fn, types.FunctionType):
        return None
    if fn.__module__.partition(".")[0] not in packages or fn.__qualname__ != qualname:
        return None
    return obj if isinstance(obj, Task) else fn


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # a callable Python cannot describe: the worker finds out
        return None


def _bare(sig: inspect.Signature) -> inspect.Signature:
    """The signature without its annotations (which may be strings): ``(a, b=2)``."""
    params = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=sig.empty)


def _positional_arity(sig: inspect.Signature | None) -> tuple[float, float] | None:
    """(fewest, most) positional arguments a call without keywords may pass, or None when only
    binding can tell (a keyword-only parameter is required)."""
    if sig is None:
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(sig.parameters.values())
    if any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params):
        return None
    required = sum(p.kind in positional and p.default is p.empty for p in params)
    most = (
        math.inf
        if any(p.kind is p.VAR_POSITIONAL for p in params)
        else len([p for p in params if p.kind in positional])
    )
    return float(required), float(most)


def _queue_name(queue: object) -> str:
    return check_name(queue, "queue", TypeError)


class Task(Generic[P, R]):
    """A registered function. Call it to run it here; ``delay``/``apply_async`` to enqueue a job."""

    def __init__(
        self,
        app: App,
        fn: Callable[P, R],
        *,
        name: str,
        queue: str,
        priority: int | float,
        retries: int,
        retry_backoff: float,
        timeout: float | None,
        on_success: Callable[[Job, Any], Any] | None,
        on_failure: Callable[[Job, BaseException], Any] | None,
        max_deliveries: int,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        lock: str | None = None,
    ) -> None:
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive int or None, not {concurrency!r}")
        check_name(queue, "queue")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative int, not {retries!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"timeout must be a positive number of seconds or None, not {timeout!r}"
            )
        if not isinstance(max_deliveries, int) or max_deliveries < 1:
            raise ValueError(f"max_deliveries must be a positive int, not {max_deliveries!r}")
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        self.timeout = timeout
        self.on_success = on_success
        self.on_failure = on_failure
        self.max_deliveries = max_deliveries
        self.is_async = inspect.iscoroutinefunction(fn)
        self.concurrency = concurrency
        self.rate_limit = rate_limit
        self.rate_interval = _rate_interval(rate_limit) if rate_limit is not None else None
        self.lock = lock
        if lock is not None:
            _check_lock_template(fn, lock)
        self._signature = _signature(fn)
        self._arity = _positional_arity(self._signature)
        functools.update_wrapper(self, fn)

    @property
    def limited(self) -> bool:
        """Whether a worker must ask the store before running a job of this task."""
        return bool(self.concurrency or self.rate_interval or self.lock)

    def lock_key(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str:
        """The task's ``lock`` template filled with a call's arguments (by parameter name)."""
        assert self.lock is not None
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        return self.lock.format(**bound.arguments)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any], where: str = "") -> None:
        """Raise TypeError, naming the task, when its function could not take these arguments."""
        arity = self._arity
        if self._signature is None or (arity and not kwargs and arity[0] <= len(args) <= arity[1]):
            return
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"task {self.name}{_bare(self._signature)}{where}: {exc}; nothing was enqueued"
            ) from None

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a job that runs this task with these arguments; return it at once."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | float | None = None,
        delay: float | None = None,
        front: bool = False,
        block: bool = True,
        timeout: float | None = None,
        eta: datetime.datetime | None = None,
    ) -> Job:
        """Enqueue a job. ``delay`` seconds (or ``eta``, an aware datetime) keeps it scheduled
        before it becomes ready; ``front`` puts it at the head of its queue. A full queue makes
        this wait (``block``, ``timeout``) and then raise ``queue.Full``."""
        if eta is not None:
            if delay is not None:
                raise ValueError("give delay= or eta=, not both")
            delay = _seconds_until(eta)
        call = (tuple(args), kwargs or {})
        self._check_call(*call)
        (job,) = self.app._enqueue(
            self.name,
            [call],
            queue or self.queue,
            self.priority if priority is None else priority,
            delay,
            front,
            block,
            timeout,
        )
        return job

    async def delay_async(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """:meth:`delay` for asyncio code: the store call runs in a thread, off the event loop."""
        return await asyncio.to_thread(self.apply_async, args, kwargs)

    async def map_async(self, iterable: Iterable[Any]) -> list[Job]:
        """:meth:`map` for asyncio code, off the event loop."""
        return await asyncio.to_thread(self.map, list(iterable))

    def map(self, iterable: Iterable[Any]) -> list[Job]:
        """Enqueue one job per item -- a tuple of positional arguments, or a single argument -- in
        one store transaction."""
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (a if isinstance(a, tuple) else (a,), {}) for a in iterable
        ]
        for i, (args, kwargs) in enumerate(calls):
            self._check_call(args, kwargs, f" (item {i} of map)")
        return self.app._enqueue(
            self.name, calls, self.queue, self.priority, None, False, True, None
        )

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue!r}>"


class App:
    """Tasks and the store their jobs live in. Every process that runs or enqueues jobs makes the
    same App (usually by importing the module that defines it)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        lease: float = 30.0,
        result_ttl: float = 86400.0,
        serializer: str | Serializer = "json",
        importable: Iterable[str] = (),
    ) -> None:
        if not isinstance(lease, (int, float)) or not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
        self.url = resolve_url(url)
        self.lease = float(lease)
        self.result_ttl = float(result_ttl)
        self.codec = get_serializer(serializer)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.queues: dict[str, QueueSpec] = {}
        self.schedules: list[Schedule] = []
        self._bounded: set[str] = set()  # queues whose maxsize is recorded in the store
        self.import_path: str | None = None  # "module:attribute", when known
        self._importable = tuple(importable)
        self._store: Store | None = None
        self._store_pid = 0
        self._lock = threading.Lock()
        self._watch: Watcher | None = None
        open_store(self.url).close()  # fail here, at once, on a bad URL or file

    def use_store(self, url: str) -> None:
        """Point the app at another store (what ``--url`` does for the worker command)."""
        open_store(url).close()
        with self._lock:
            self.url, self._store, self._watch = url, None, None
            self._bounded = set()

    @property
    def store(self) -> Store:
        """This process's handle on the store (re-opened after a fork)."""
        if self._store is None or self._store_pid != current_pid():
            with self._lock:
                if self._store is None or self._store_pid != current_pid():
                    self._store, self._store_pid = open_store(self.url), current_pid()
                    self._watch = None
        return self._store

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, fn: None = None, /, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
        """Register a function (plain or ``async def``) as a task: ``@app.task`` or
        ``@app.task(name=None, queue="default", priority=0, retries=0, retry_backoff=1.0,
        timeout=None, on_success=None, on_failure=None, max_deliveries=5, concurrency=None,
        rate_limit=None, lock=None)``.

        ``concurrency=N`` runs at most N jobs of the task at once across every worker;
        ``rate_limit="100/m"`` (per s, m or h) starts at most that many across every worker;
        ``lock="account:{account_id}"`` never runs two jobs whose arguments give the same key at
        once (the same lock as ``app.lock(key)``). A job held back stays in its place in its queue
        without taking a worker slot."""

        def register(f: Callable[P, R]) -> Task[P, R]:
            allowed = {
                "name",
                "queue",
                "priority",
                "retries",
                "retry_backoff",
                "timeout",
                "on_success",
                "on_failure",
                "max_deliveries",
                "concurrency",
                "rate_limit",
                "lock",
            }
            unknown = set(options) - allowed
            if unknown:
                raise TypeError(
                    f"unknown task option(s) {sorted(unknown)}; known: {sorted(allowed)}"
                )
            name = options.get("name") or f"{f.__module__}.{f.__qualname__}"
            task = Task(
                self,
                f,
                name=name,
                queue=options.get("queue", "default"),
                priority=options.get("priority", 0),
                retries=options.get("retries", 0),
                retry_backoff=options.get("retry_backoff", 1.0),
                timeout=options.get("timeout"),
                on_success=options.get("on_success"),
                on_failure=options.get("on_failure"),
                max_deliveries=options.get("max_deliveries", 5),
                concurrency=options.get("concurrency"),
                rate_limit=options.get("rate_limit"),
                lock=options.get("lock"),
            )
            self.tasks[name] = task
            return task

        return register(fn) if fn is not None else register

    @property
    def importable(self) -> set[str]:
        """Top-level packages whose functions a worker may import for ``executor().submit``: those
        given to ``App(importable=...)``, plus those that define this app's tasks."""
        found = {
            t.fn.__module__.partition(".")[0] for t in self.tasks.values() if ":" not in t.name
        }
        return found | set(self._importable)

    def queue(self, name: str, order: str = "fifo", maxsize: int = 0) -> QueueSpec:
        """Declare a job queue's order for equal priorities ("fifo" or "lifo") and its bound."""
        if order not in ("fifo", "lifo"):
            raise ValueError(f"order must be 'fifo' or 'lifo', not {order!r}")
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a non-negative int, not {maxsize!r}")
        check_name(name, "queue")
        spec = self.queues[name] = QueueSpec(name, order, maxsize)
        return spec

    def resolve(self, name: str) -> Task[Any, Any] | None:
        """The task registered under ``name``, or, for a ``module:qualname`` name (what
        ``executor().submit`` sends for plain functions), that function -- None for anything else.

        Whoever can write to the store chooses the name, so a function is accepted only when its
        own ``__module__`` is in a package of :attr:`importable` and its ``__qualname__`` is
        exactly the stored one: the look-up goes through the module's classes, never through
        another module, a function's attributes or a dunder name."""
        task = self.tasks.get(name)
        if task is not None or ":" not in name:
            return task
        fn = _allowed_function(name, self.importable)
        if fn is None or isinstance(fn, Task):
            return fn
        task = Task(
            self,
            fn,
            name=name,
            queue="default",
            priority=0,
            retries=0,
            retry_backoff=1.0,
            timeout=None,
            on_success=None,
            on_failure=None,
            max_deliveries=5,
        )
        self.tasks[name] = task
        return task

    def _enqueue(
        self,
        task_name: str,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        queue: str,
        priority: int | float,
        delay: float | None,
        front: bool,
        block: bool,
        timeout: float | None,
    ) -> list[Job]:
        if timeout is not None:
            timeout = check_timeout(timeout)
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError(f"delay must be a non-negative number of seconds, not {delay!r}")
        if isinstance(priority, bool) or not isinstance(priority, (int, float)):
            raise TypeError(f"priority must be a number, not {priority!r}")
        if isinstance(priority, float) and math.isnan(priority):
            raise ValueError("priority cannot be NaN")
        if isinstance(priority, int) and not -(2**63) <= priority < 2**63:
            raise ValueError(f"priority must fit in 64 bits, not {priority}")
        check_name(queue, "queue")
        for _, kwargs in calls:
            if kwargs and not all(isinstance(k, str) for k in kwargs):
                raise TypeError("keyword argument names must be strings")
        jobs = [NewJob(task_name, self.codec.dumps([list(a), k]), priority) for a, k in calls]
        spec = self.queues.get(queue) or _UNDECLARED
        store = self.store
        if spec.maxsize and len(jobs) > spec.maxsize:
            raise ValueError(
                f"{len(jobs)} jobs can never fit in queue {queue!r} (maxsize {spec.maxsize})"
            )
        if spec.maxsize and queue not in self._bounded:
            # Recorded in the store, so that taking a job from it wakes producers that wait.
            store.set_queue_options(queue, maxsize=spec.maxsize)
            self._bounded.add(queue)

        front = front or spec.order == "lifo"

        def attempt() -> list[str] | None:
            try:
                return store.enqueue(
                    queue, jobs, front=front, delay=delay or 0.0, maxsize=spec.maxsize
                )
            except Full:
                return None

        ids = attempt() if not spec.maxsize else wait_until(store, queue, attempt, block, timeout)
        if ids is None:
            raise Full(f"queue {queue!r} is full ({spec.maxsize} jobs waiting)")
        return [Job(self, i) for i in ids]

    def batch(self) -> AbstractContextManager[None]:
        """``with app.batch():`` -- jobs this thread enqueues in the block with ``delay`` or
        ``apply_async`` are sent without waiting for the store to confirm each one, and are all
        confirmed when the block ends. If the store refused any, the block's end raises
        :class:`~baozi.EnqueueFailed`, whose ``job_ids`` names them; the others are enqueued.
        Outside a block every enqueue returns only once the store has filed the job."""
        return self.store.batch()

    # -- coordination -------------------------------------------------------------------------

    def lock(self, name: str, ttl: float = 30.0) -> Lock:
        """A lock shared by every process on the store (reentrant for its holding thread). If the
        holder dies, it frees itself ``ttl`` seconds later; a live holder keeps renewing it."""
        return Lock(self, name, ttl)

    def semaphore(self, name: str, value: int = 1, ttl: float = 30.0) -> Semaphore:
        """A bounded semaphore of ``value`` slots shared by every process on the store."""
        return Semaphore(self, name, value, ttl)

    def event(self, name: str) -> Event:
        """A flag shared by every process on the store; ``wait()`` holds until it is set."""
        return Event(self, name)

    def condition(self, name: str, lock: Lock | None = None, ttl: float = 30.0) -> Condition:
        """A condition variable shared by every process on the store."""
        return Condition(self, name, lock, ttl)

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: float | datetime.timedelta | None = None,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        tz: str = "UTC",
    ) -> Callable[[Any], Any]:
        """Run a task on a schedule: ``@app.periodic(cron="*/5 * * * *")`` (in ``tz``, UTC by
        default) or ``@app.periodic(every=timedelta(seconds=30))``, above ``@app.task`` (or on a
        plain function, which it registers as a task). A scheduler -- ``baozi beat``, or
        ``baozi worker --beat`` -- enqueues one job per tick, with ``args`` and ``kwargs``."""
        from .beat import make_schedule

        def register(target: Any) -> Any:
            task = target if isinstance(target, Task) else self.task(target)
            self.schedules.append(make_schedule(task, cron, every, tuple(args), kwargs, tz))
            return task

        return register

    def pause(self, queue: str) -> None:
        """Stop workers taking jobs from ``queue`` (jobs running go on; enqueueing still works)."""
        self.store.set_queue_options(_queue_name(queue), paused=True)

    def resume(self, queue: str) -> None:
        """Let workers take jobs from ``queue`` again."""
        self.store.set_queue_options(_queue_name(queue), paused=False)

    def is_paused(self, queue: str) -> bool:
        return bool(self.store.queue_options(_queue_name(queue)).get("paused"))

    def job(self, job_id: str) -> Job:
        """Attach to a job by id, from any process. Raises JobNotFound for an unknown id."""
        job = Job(self, str(job_id))
        job.record()
        return job

    def executor(self, queue: str | None = None) -> JobExecutor:
        """A ``concurrent.futures.Executor`` whose work runs as jobs on this app's workers."""
        from .executor import JobExecutor

        return JobExecutor(self, queue)

    def _watcher(self) -> Watcher:
        self.store  # noqa: B018 -- re-opens after a fork, which also resets the watcher
        with self._lock:
            if self._watch is None:
                self._watch = Watcher(self)
            return self._watch

    def __repr__(self) -> str:
        return f"<App {self.url} tasks={len(self.tasks)}>"

    # Last in the class: below this, ``dict`` in an annotation would name this method.
    def dict(self, name: str) -> Dict:
        """A :class:`baozi.Dict` on this app's store."""
        return Dict(name, _owner=self)
