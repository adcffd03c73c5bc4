"""App: the registry of tasks, the store their jobs live in, and how jobs get into their queues."""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from ._names import check_name
from ._process import current_pid
from ._transaction import ENQUEUE_CONNECTION
from ._waiting import check_timeout, wait_until
from .backends import check_transport, open_store, resolve_url, with_transport
from .backends.base import JobPlace, NewJob, Store
from .config import load_settings
from .errors import Full
from .executor import JobExecutor
from .jobs import Job, Watcher
from .middleware import Message, Middleware, overrides
from .middleware.callbacks import Callbacks
from .middleware.limits import Limits
from .middleware.retries import Retries
from .serialize import Serializer, get_serializer
from .sync import Array, Condition, Dict, Event, Lock, Semaphore, Value
from .tasks import Task, TaskKeywords, TaskOptions, check_priority, find_function

if TYPE_CHECKING:
    from .beat import Schedule

# Task is defined in .tasks; it is named here too for modules that import it beside App.
__all__ = ["App", "QueueSpec", "Task"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A job queue's discipline: its order for equal priorities, and its bound (0 = none)."""

    name: str
    order: str = "fifo"
    maxsize: int = 0

    @property
    def plain(self) -> bool:
        """Whether a job goes at the back, with no bound to check: what a bare delay() does."""
        return not self.maxsize and self.order != "lifo"


_UNDECLARED = QueueSpec("")
"""The discipline of a queue the app never declared: FIFO, unbounded."""


def _queue_name(queue: object) -> str:
    return check_name(queue, "queue", TypeError)


_log = logging.getLogger("baozi")


def _call_of(args: tuple[Any, ...], kwargs: dict[str, Any], meta: dict[str, str]) -> list[Any]:
    """A job's call as its record holds it: [args, kwargs], and its meta when it has any."""
    return [list(args), kwargs, meta] if meta else [list(args), kwargs]


def _check_enqueue(
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    queue: str,
    priority: int | float,
    delay: float | None,
    timeout: float | None,
) -> float | None:
    """Refuse what no store should be asked to file; return the timeout, checked."""
    timeout = check_timeout(timeout)
    if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
        raise ValueError(f"delay must be a non-negative number of seconds, not {delay!r}")
    check_priority(priority)
    check_name(queue, "queue")
    for _, kwargs in calls:
        if kwargs and not all(isinstance(k, str) for k in kwargs):
            raise TypeError("keyword argument names must be strings")
    return timeout


def _linked(jobs: list[NewJob], links: dict[str, Any] | list[dict[str, Any]]) -> list[NewJob]:
    if isinstance(links, dict):
        return [j._replace(**links) for j in jobs]
    return [j._replace(**extra) for j, extra in zip(jobs, links, strict=True)]


def _ttl(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


class App:
    """Tasks and the store their jobs live in. Every process that runs or enqueues jobs makes the
    same App (usually by importing the module that defines it)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        lease: float = 30.0,
        result_ttl: float = 86400.0,
        failed_ttl: float | None = None,
        serializer: str | Serializer = "json",
        importable: Iterable[str] = (),
        middleware: Iterable[Middleware] = (),
        transport: str | None = None,
    ) -> None:
        if not isinstance(lease, (int, float)) or not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
        self.url = resolve_url(url)
        transport = transport if transport is not None else load_settings().transport
        self.transport = check_transport(transport) if transport else None
        self.lease = float(lease)
        self.result_ttl = _ttl(result_ttl, "result_ttl")
        # Jobs that failed for good are kept until someone removes them, unless asked otherwise.
        self.failed_ttl = math.inf if failed_ttl is None else _ttl(failed_ttl, "failed_ttl")
        self.codec = get_serializer(serializer)
        # The defaults first: limits, retries, callbacks (see baozi.middleware).
        self.middleware: list[Middleware] = [Limits(), Retries(), Callbacks()]
        self._enqueue_hooks: tuple[Middleware, ...] = ()
        for m in middleware:
            self.add_middleware(m)
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

    def add_middleware(self, middleware: Middleware) -> None:
        """Run ``middleware`` after those already added (see :mod:`baozi.middleware`). Add it
        before workers start: a running worker keeps the middleware it started with."""
        if not isinstance(middleware, Middleware):
            raise TypeError(
                f"middleware must be a baozi.middleware.Middleware, not {type(middleware).__name__}"
            )
        self.middleware.append(middleware)
        before = overrides(self.middleware, "before_enqueue")
        after = overrides(self.middleware, "after_enqueue")
        # In the app's order, like every other hook.
        self._enqueue_hooks = tuple(m for m in self.middleware if m in before or m in after)

    def use_store(self, url: str) -> None:
        """Point the app at another store (what ``--url`` does for the worker command)."""
        open_store(url).close()
        with self._lock:
            self.url, self._store, self._watch = url, None, None
            self._bounded = set()

    def use_transport(self, url: str | None) -> None:
        """Have jobs delivered by the broker at ``url`` (None: by the store), as
        ``--transport`` does."""
        url = check_transport(url) if url else None
        with self._lock:
            self.transport, self._store, self._watch = url, None, None

    def _delivery_limit(self, queue: str) -> int:
        """How often the transport delivers a job of ``queue``: its tasks' largest
        ``max_deliveries``."""
        return max((t.max_deliveries for t in self.tasks.values() if t.queue == queue), default=5)

    @property
    def store(self) -> Store:
        """This process's handle on the store (re-opened after a fork)."""
        if self._store is None or self._store_pid != current_pid():
            with self._lock:
                if self._store is None or self._store_pid != current_pid():
                    store = open_store(self.url)
                    if self.transport:
                        store = with_transport(store, self.transport, self._delivery_limit)
                    self._store, self._store_pid = store, current_pid()
                    self._watch = None
        return self._store

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, fn: None = None, /, **options: Unpack[TaskKeywords]
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[P, R] | None = None, /, **options: Unpack[TaskKeywords]) -> Any:
        """Register a function (plain or ``async def``) as a task: ``@app.task`` or
        ``@app.task(name=None, queue="default", priority=0, retries=0, retry_backoff=1.0,
        timeout=None, on_success=None, on_failure=None, max_deliveries=5, concurrency=None,
        rate_limit=None, lock=None)`` -- the fields of :class:`~baozi.TaskOptions`.

        ``concurrency=N`` runs at most N jobs of the task at once across every worker;
        ``rate_limit="100/m"`` (per s, m or h) starts at most that many across every worker;
        ``lock="account:{account_id}"`` never runs two jobs whose arguments give the same key at
        once (the same lock as ``app.lock(key)``). A job held back stays in its place in its queue
        without taking a worker slot."""
        settings = TaskOptions.from_keywords(options)

        def register(f: Callable[P, R]) -> Task[P, R]:
            task = Task(self, f, settings)
            self.tasks[task.name] = task
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

    def queue(self, name: str, *, order: str = "fifo", maxsize: int = 0) -> QueueSpec:
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
        fn = find_function(name, self.importable)
        if fn is None or isinstance(fn, Task):
            return fn
        task = self.tasks[name] = Task(self, fn, TaskOptions(name=name))
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
        *,
        links: dict[str, Any] | list[dict[str, Any]] | None = None,
        meta: dict[str, str] | None = None,
    ) -> list[Job]:
        """Enqueue one job per call; ``links`` are :class:`NewJob` fields (a unique key,
        dependencies) every job gets, or one such dict per call; ``meta`` is stored with each
        call."""
        timeout = _check_enqueue(calls, queue, priority, delay, timeout)
        if front or (self.queues.get(queue) or _UNDECLARED).order == "lifo":
            self.store.require("lifo")  # before anything is done: NotSupported at the call
        if priority:
            self.store.require("priority")
        hooks = self._enqueue_hooks
        if not hooks:
            jobs = [
                NewJob(task_name, self.codec.dumps(_call_of(a, k, meta or {})), priority)
                for a, k in calls
            ]
            if links:
                jobs = _linked(jobs, links)
            ids = self._file(jobs, queue, delay, front, block, timeout)
            return [Job(self, i) for i in ids]
        messages = [
            Message(task_name, a, k, queue, priority, delay, dict(meta or {})) for a, k in calls
        ]
        begun = 0  # (message, middleware) pairs whose before_enqueue returned
        try:
            for message in messages:
                for m in hooks:
                    m.before_enqueue(self, message)  # raising: nothing is enqueued
                    begun += 1
            jobs = [
                NewJob(task_name, self.codec.dumps(_call_of(m.args, m.kwargs, m.meta)), priority)
                for m in messages
            ]
            if links:
                jobs = _linked(jobs, links)
            ids = self._file(jobs, queue, delay, front, block, timeout)
        except BaseException:
            # Whatever failed, each middleware that saw a message hears it was not enqueued.
            self._after_enqueue(hooks, messages, [None] * len(messages), begun)
            raise
        self._after_enqueue(hooks, messages, ids, begun)
        return [Job(self, i) for i in ids]

    def _file(
        self,
        jobs: list[NewJob],
        queue: str,
        delay: float | None,
        front: bool,
        block: bool,
        timeout: float | None,
    ) -> list[str]:
        """Put ``jobs`` in ``queue``, waiting for room in a bounded one; return their ids."""
        spec = self._spec_for(queue, len(jobs))
        store = self.store

        front = front or spec.order == "lifo"
        connection = ENQUEUE_CONNECTION.get()

        def attempt() -> list[str] | None:
            try:
                if connection is not None:
                    return store.enqueue_in(
                        connection,
                        queue,
                        jobs,
                        front=front,
                        delay=delay or 0.0,
                        maxsize=spec.maxsize,
                    )
                return store.enqueue(
                    queue, jobs, front=front, delay=delay or 0.0, maxsize=spec.maxsize
                )
            except Full:
                return None

        ids = attempt() if not spec.maxsize else wait_until(store, queue, attempt, block, timeout)
        if ids is None:
            raise Full(f"queue {queue!r} is full ({spec.maxsize} jobs waiting)")
        return ids

    def _spec_for(self, queue: str, n: int) -> QueueSpec:
        """The queue's spec, for filing ``n`` jobs: a bounded queue's size is recorded in the
        store first, so that taking a job from it wakes producers that wait."""
        spec = self.queues.get(queue) or _UNDECLARED
        if spec.maxsize and n > spec.maxsize:
            raise ValueError(f"{n} jobs can never fit in queue {queue!r} (maxsize {spec.maxsize})")
        if spec.maxsize and queue not in self._bounded:
            self.store.set_queue_options(queue, maxsize=spec.maxsize)
            self._bounded.add(queue)
        return spec

    def _file_placed(self, jobs: list[NewJob], queue: str) -> list[tuple[str, JobPlace | None]]:
        """Put plain ``jobs`` at the back of ``queue`` at once (``Full`` when a bounded one has
        no room for all), with each one's id and place as of the filing (see
        ``Store.enqueue_placed``)."""
        spec = self._spec_for(queue, len(jobs))
        if spec.order != "fifo":
            raise ValueError(f"queue {queue!r} is {spec.order}: its jobs are not filed at the back")
        try:
            return self.store.enqueue_placed(queue, jobs, maxsize=spec.maxsize)
        except Full:
            raise Full(f"queue {queue!r} is full ({spec.maxsize} jobs waiting)") from None

    def _after_enqueue(
        self,
        hooks: tuple[Middleware, ...],
        messages: list[Message],
        ids: list[str] | list[None],
        begun: int,
    ) -> None:
        """Call ``after_enqueue`` for the first ``begun`` (message, middleware) pairs, in the
        order their ``before_enqueue`` ran; a hook that raises is logged."""
        pairs = [(msg, i, m) for msg, i in zip(messages, ids, strict=True) for m in hooks]
        for message, job_id, m in pairs[:begun]:
            try:
                m.after_enqueue(self, message, job_id)
            except Exception:
                _log.exception("middleware %s: after_enqueue failed", type(m).__name__)

    @contextlib.contextmanager
    def transaction(self, connection: object) -> Iterator[None]:
        """Enqueue inside ``connection``'s transaction for the code in the block (this thread,
        or this asyncio task): each ``delay``, ``apply_async`` and ``map`` there makes jobs that
        exist if, and only if, that transaction commits, and workers see them at its commit.
        ``connection`` is a psycopg 3 connection, a SQLAlchemy ``Connection`` or ``Session`` on
        psycopg 3, or Django's connection on psycopg 3, to the store's own database. Stores
        other than PostgreSQL raise :class:`~baozi.NotSupported` here."""
        self.store.check_connection(connection)
        token = ENQUEUE_CONNECTION.set(connection)
        try:
            yield
        finally:
            ENQUEUE_CONNECTION.reset(token)

    def batch(self) -> AbstractContextManager[None]:
        """``with app.batch():`` -- jobs this thread enqueues in the block with ``delay`` or
        ``apply_async`` are sent without waiting for the store to confirm each one, and are all
        confirmed when the block ends. If the store refused any, the block's end raises
        :class:`~baozi.EnqueueFailed`, whose ``job_ids`` names them; the others are enqueued.
        Outside a block every enqueue returns only once the store has filed the job."""
        return self.store.batch()

    # -- coordination -------------------------------------------------------------------------

    def lock(self, name: str, *, ttl: float = 30.0) -> Lock:
        """A :class:`baozi.Lock` on this app's store: reentrant for its holding thread; if the
        holder dies, it frees itself ``ttl`` seconds later (a live holder keeps renewing it)."""
        return Lock(name, ttl=ttl, _owner=self)

    def semaphore(self, name: str, *, value: int = 1, ttl: float = 30.0) -> Semaphore:
        """A :class:`baozi.Semaphore` of ``value`` slots on this app's store."""
        return Semaphore(name, value=value, ttl=ttl, _owner=self)

    def event(self, name: str) -> Event:
        """A :class:`baozi.Event` on this app's store; ``wait()`` holds until it is set."""
        return Event(name, _owner=self)

    def condition(self, name: str, *, lock: Lock | None = None, ttl: float = 30.0) -> Condition:
        """A :class:`baozi.Condition` on this app's store (over ``lock``, or one of its own)."""
        return Condition(name, lock=lock, ttl=ttl, _owner=self)

    def array(self, name: str, typecode_or_type: Any, size_or_initializer: Any) -> Array:
        """A :class:`baozi.Array` on this app's store: ``multiprocessing.Array``, durable and
        shared by every process on the store."""
        return Array(name, typecode_or_type, size_or_initializer, _owner=self)

    def value(self, name: str, typecode_or_type: Any, value: Any = 0) -> Value:
        """A :class:`baozi.Value` on this app's store: ``multiprocessing.Value``, durable and
        shared by every process on the store."""
        return Value(name, typecode_or_type, value, _owner=self)

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
        from .beat import make_schedule  # croniter is imported only by apps that schedule

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
