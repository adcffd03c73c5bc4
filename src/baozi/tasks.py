"""Task and TaskOptions: a registered function, the options its jobs run with, and how a call
becomes a job in its queue."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import functools
import hashlib
import importlib
import inspect
import math
import re
import string
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict, TypeVar

from ._names import check_name
from ._transaction import ENQUEUE_CONNECTION
from .backends.base import ON_DEPENDENCY_FAILURE, UNIQUE_WHILE
from .jobs import Job

if TYPE_CHECKING:
    from .app import App
    from .workflows import Signature

__all__ = [
    "Task",
    "TaskKeywords",
    "TaskOptions",
    "WORKFLOW_META",
    "check_priority",
    "find_function",
    "job_ids",
]

P = ParamSpec("P")
R = TypeVar("R")

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*/\s*([smh])\s*$")
_INT64 = 2**63


def _rate_interval(rate: object) -> float:
    """ "100/m" -> seconds between events (0.6)."""
    m = _RATE.match(rate) if isinstance(rate, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(
            f"rate_limit must look like '100/m' (a positive count per s, m or h), not {rate!r}"
        )
    return _PERIODS[m.group(2)] / float(m.group(1))


def check_priority(priority: object) -> int | float:
    """``priority`` if it is a number a store can order by: not a bool, not NaN, 64 bits."""
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        raise TypeError(f"priority must be a number, not {priority!r}")
    if isinstance(priority, float) and math.isnan(priority):
        raise ValueError("priority cannot be NaN")
    if isinstance(priority, int) and not -_INT64 <= priority < _INT64:
        raise ValueError(f"priority must fit in 64 bits, not {priority}")
    return priority


def _is_count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


class TaskKeywords(TypedDict, total=False):
    """The keywords of ``@app.task(...)``: the fields of :class:`TaskOptions`."""

    name: str | None
    queue: str
    priority: int | float
    retries: int
    retry_backoff: float
    timeout: float | None
    on_success: Callable[[Job, Any], Any] | None
    on_failure: Callable[[Job, BaseException], Any] | None
    max_deliveries: int
    concurrency: int | None
    rate_limit: str | None
    lock: str | None
    unique: bool
    unique_while: str
    unique_for: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """How a task's jobs are queued and run; each field is a keyword of ``@app.task``.

    ``name`` defaults to the function's ``module.qualname``. ``retries`` more runs follow a
    failure, ``retry_backoff`` seconds apart (doubling, with jitter); ``timeout`` seconds stop a
    run; a job delivered ``max_deliveries`` times without finishing (its workers died) fails.
    ``concurrency``, ``rate_limit`` ("100/m") and ``lock`` (a template of the function's
    parameters, "account:{account_id}") hold jobs back across every worker. ``unique=True``
    gives each job a unique key made of the task's name and its arguments (bound to the
    signature, defaults applied), held as ``unique_while`` and ``unique_for`` say (see
    :meth:`Task.apply_async`)."""

    name: str | None = None
    queue: str = "default"
    priority: int | float = 0
    retries: int = 0
    retry_backoff: float = 1.0
    timeout: float | None = None
    on_success: Callable[[Job, Any], Any] | None = None
    on_failure: Callable[[Job, BaseException], Any] | None = None
    max_deliveries: int = 5
    concurrency: int | None = None
    rate_limit: str | None = None
    lock: str | None = None
    unique: bool = False
    unique_while: str = "queued_or_running"
    unique_for: float | None = None
    rate_interval: float | None = field(init=False, default=None, repr=False, compare=False)
    """Seconds between two starts, from ``rate_limit``."""

    def __post_init__(self) -> None:
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"a task name must be a str, not {self.name!r}")
        check_name(self.queue, "queue")
        check_priority(self.priority)
        if not _is_count(self.retries, 0):
            raise ValueError(f"retries must be a non-negative int, not {self.retries!r}")
        object.__setattr__(self, "retry_backoff", float(self.retry_backoff))
        if not self.retry_backoff >= 0:
            raise ValueError(
                f"retry_backoff must be a non-negative number of seconds, not {self.retry_backoff!r}"
            )
        if self.timeout is not None and not _is_seconds(self.timeout):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, not {self.timeout!r}"
            )
        for hook in ("on_success", "on_failure"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise TypeError(f"{hook} must be callable or None, not {getattr(self, hook)!r}")
        if not _is_count(self.max_deliveries, 1):
            raise ValueError(f"max_deliveries must be a positive int, not {self.max_deliveries!r}")
        if self.concurrency is not None and not _is_count(self.concurrency, 1):
            raise ValueError(
                f"concurrency must be a positive int or None, not {self.concurrency!r}"
            )
        if self.rate_limit is not None:
            object.__setattr__(self, "rate_interval", _rate_interval(self.rate_limit))
        if self.lock is not None and (not isinstance(self.lock, str) or not self.lock):
            raise ValueError(f"lock must be a non-empty str template, not {self.lock!r}")
        if not isinstance(self.unique, bool):
            raise TypeError(f"unique must be True or False, not {self.unique!r}")
        check_unique(None, self.unique_while, self.unique_for)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> TaskOptions:
        """The options ``@app.task(**keywords)`` asks for; TypeError names an unknown keyword."""
        known = {f.name for f in fields(cls) if f.init}
        unknown = set(keywords) - known
        if unknown:
            raise TypeError(f"unknown task option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**keywords)


def _check_lock_template(fn: Callable[..., Any], template: str) -> None:
    """A lock template may name only the function's parameters: "account:{account_id}"."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"lock template {template!r} is malformed: {exc}") from None
    for name in names:
        param = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not param or param.isdigit():
            raise ValueError(
                f"lock template {template!r}: name the parameter, as in {{account_id}}, not {{{name}}}"
            )
        if param not in params and not takes_any:
            raise ValueError(
                f"lock template {template!r} names {param!r}, which is not a parameter of "
                f"{fn.__qualname__}{inspect.signature(fn)}"
            )


_MAX_KEY = 1024

WORKFLOW_META: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "baozi_workflow_meta", default=None
)
"""Meta a workflow step adds to the jobs it enqueues: how its dependencies' results feed it
(see :mod:`baozi.workflows`)."""


def job_ids(jobs: Any) -> tuple[str, ...]:
    """The ids of ``depends_on``: jobs, ids, or workflow handles (their last jobs)."""
    if isinstance(jobs, (str, Job)) or hasattr(jobs, "ends"):
        jobs = [jobs]
    out: list[str] = []
    try:
        items = list(jobs)
    except TypeError:
        raise TypeError(
            f"depends_on must be jobs, job ids or workflow handles, not {jobs!r}"
        ) from None
    for item in items:
        if isinstance(item, Job):
            out.append(item.id)
        elif isinstance(item, str) and item:
            out.append(item)
        elif hasattr(item, "ends"):
            out.extend(j.id for j in item.ends())
        else:
            raise TypeError(f"depends_on must hold jobs, job ids or workflow handles, not {item!r}")
    return tuple(dict.fromkeys(out))


def check_unique(key: object, unique_while: object, unique_for: object) -> float:
    """Refuse a bad unique key, ``unique_while`` or ``unique_for``; return ``unique_for`` in
    seconds (0 for None)."""
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= _MAX_KEY):
        raise ValueError(
            f"unique_key must be a non-empty str of at most {_MAX_KEY} characters, not {key!r}"
        )
    if unique_while not in UNIQUE_WHILE:
        raise ValueError(
            f"unique_while must be one of {', '.join(map(repr, UNIQUE_WHILE))}, "
            f"not {unique_while!r}"
        )
    if unique_for is None:
        return 0.0
    if (
        isinstance(unique_for, bool)
        or not isinstance(unique_for, (int, float))
        or not 0 <= unique_for < math.inf
    ):
        raise ValueError(
            f"unique_for must be a non-negative number of seconds or None, not {unique_for!r}"
        )
    return float(unique_for)


def seconds_until(eta: object) -> float:
    """Seconds from now to ``eta``, an aware datetime (0 once it has passed)."""
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


def find_function(name: str, packages: set[str]) -> Task[Any, Any] | Callable[..., Any] | None:
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


class Task(Generic[P, R]):
    """A registered function. Call it to run it here; ``delay``/``apply_async`` to enqueue a job.

    Its options are ``options``, and each is an attribute of the task too (``task.queue``)."""

    def __init__(self, app: App, fn: Callable[P, R], options: TaskOptions | None = None) -> None:
        options = options if options is not None else TaskOptions()
        if options.lock is not None:
            _check_lock_template(fn, options.lock)
        self.app = app
        self.fn = fn
        self.options = options
        self.name = options.name or f"{fn.__module__}.{fn.__qualname__}"
        # Read on every enqueue and every run: plain attributes, not look-ups through options.
        self.queue, self.priority = options.queue, options.priority
        self.retries, self.retry_backoff = options.retries, options.retry_backoff
        self.timeout, self.max_deliveries = options.timeout, options.max_deliveries
        self.on_success, self.on_failure = options.on_success, options.on_failure
        self.concurrency, self.lock = options.concurrency, options.lock
        self.rate_limit, self.rate_interval = options.rate_limit, options.rate_interval
        self.unique = options.unique
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = _signature(fn)
        self._arity = _positional_arity(self._signature)
        # The queue and priority that a plain enqueue has checked (see delay()).
        self._checked: tuple[str, int | float] | None = None
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

    def unique_key(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str:
        """The key ``unique=True`` gives a call: the task's name and a digest of its arguments
        bound to the signature, defaults applied -- so ``f(1, 2)``, ``f(1, b=2)`` and
        ``f(a=1, b=2)`` share one, while ``f(1)`` and ``f(1.0)`` do not (the app's serializer
        tells them apart)."""
        sig = self._signature
        if sig is None:
            parts: Any = [list(args), sorted(kwargs.items())]
        else:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            parts = []
            for name, value in bound.arguments.items():
                if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    value = sorted(value.items())
                parts.append([name, value])
        try:
            encoded = self.app.codec.dumps([self.name, parts])
        except Exception as exc:
            raise TypeError(
                f"task {self.name}: unique=True needs arguments the app's serializer can store "
                f"({exc}); nothing was enqueued"
            ) from None
        return f"{self.name}:{hashlib.sha256(encoded).hexdigest()[:32]}"

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task with these arguments, to enqueue later (``sig.delay()``) or
        as a step of :func:`baozi.chain`, :func:`baozi.group` or :func:`baozi.chord`."""
        from .workflows import Signature

        sig = self._signature
        if sig is not None:
            try:
                sig.bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"task {self.name}{_bare(sig)}: {exc}") from None
        return Signature(self, tuple(args), kwargs)

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
        """Enqueue a job that runs this task with these arguments; return it once the store has
        filed it."""
        app, queue, priority = self.app, self.queue, self.priority
        checked = self._checked
        if (
            checked is not None
            and not self.unique
            and checked[0] is queue
            and checked[1] is priority
            and not app._enqueue_hooks
            and ENQUEUE_CONNECTION.get() is None
        ):
            spec = app.queues.get(queue)
            if spec is None or spec.plain:
                # What apply_async() does, less the checks already passed: paid once per job.
                self._check_call(args, kwargs)
                payload = app.codec.dumps([list(args), kwargs])
                return Job(app, app.store.enqueue_one(queue, self.name, payload, priority))
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
        connection: object | None = None,
        unique_key: str | None = None,
        unique_while: str | None = None,
        unique_for: float | None = None,
        depends_on: Iterable[Any] = (),
        on_dependency_failure: str = "cancel",
    ) -> Job:
        """Enqueue a job. ``delay`` seconds (or ``eta``, an aware datetime) keeps it scheduled
        before it becomes ready; ``front`` puts it at the head of its queue. A full queue makes
        this wait (``block``, ``timeout``) and then raise ``queue.Full``. With ``connection``
        (PostgreSQL stores: a psycopg 3 connection, or SQLAlchemy's on psycopg 3) the job is
        enqueued in that connection's transaction, and exists if, and only if, it commits
        (see :meth:`App.transaction`).

        ``unique_key`` (global in the store) makes no second job while a job with that key holds
        it -- while "queued" (waiting, scheduled, queued), "running", or "queued_or_running"
        (``unique_while``), and ``unique_for`` seconds after it finished -- and returns that
        job instead, with ``job.deduplicated`` True. ``depends_on`` (jobs, ids, or workflow
        handles) keeps the job "waiting" until every one of them has succeeded; if one fails
        for good or is cancelled, ``on_dependency_failure`` "cancel" cancels this job, "fail"
        fails it with DependencyFailed, and "run" runs it anyway."""
        if eta is not None:
            if delay is not None:
                raise ValueError("give delay= or eta=, not both")
            delay = seconds_until(eta)
        call = (tuple(args), kwargs or {})
        meta = WORKFLOW_META.get()
        if meta is None:
            self._check_call(*call)
        else:  # a workflow step: its dependencies' result comes first
            self._check_call((None, *call[0]), call[1], " (a workflow step)")
        opts = self.options
        unique_while = opts.unique_while if unique_while is None else unique_while
        unique_for = opts.unique_for if unique_for is None else unique_for
        hold_for = check_unique(unique_key, unique_while, unique_for)
        if unique_key is None and self.unique:
            unique_key = self.unique_key(*call)
        if on_dependency_failure not in ON_DEPENDENCY_FAILURE:
            raise ValueError(
                f"on_dependency_failure must be one of "
                f"{', '.join(map(repr, ON_DEPENDENCY_FAILURE))}, not {on_dependency_failure!r}"
            )
        after = job_ids(depends_on)
        links: dict[str, Any] = {}
        if unique_key is not None:
            links.update(unique_key=unique_key, unique_while=unique_while, unique_for=hold_for)
        if after:
            links.update(depends_on=after, on_dependency_failure=on_dependency_failure)
        if connection is not None:
            with self.app.transaction(connection):
                return self.apply_async(
                    args,
                    kwargs,
                    queue=queue,
                    priority=priority,
                    delay=delay,
                    front=front,
                    block=block,
                    timeout=timeout,
                    unique_key=unique_key,
                    unique_while=unique_while,
                    unique_for=unique_for,
                    depends_on=after,
                    on_dependency_failure=on_dependency_failure,
                )
        (job,) = self.app._enqueue(
            self.name,
            [call],
            queue or self.queue,
            self.priority if priority is None else priority,
            delay,
            front,
            block,
            timeout,
            links=links,
            meta=meta,
        )
        if queue is None and priority is None and delay is None and not front and not links:
            self._checked = (self.queue, self.priority)
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
        links = None
        if self.unique:
            opts = self.options
            hold_for = check_unique(None, opts.unique_while, opts.unique_for)
            links = [
                {
                    "unique_key": self.unique_key(args, kwargs),
                    "unique_while": opts.unique_while,
                    "unique_for": hold_for,
                }
                for args, kwargs in calls
            ]
        return self.app._enqueue(
            self.name, calls, self.queue, self.priority, None, False, True, None, links=links
        )

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue!r}>"
