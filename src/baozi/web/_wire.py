"""The JSON the HTTP API reads and writes: request checking that names the bad field, and views."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import math
import re
import sys
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn, TypedDict

from .._names import BANNED
from ..backends.base import ON_DEPENDENCY_FAILURE, STATUSES, UNIQUE_WHILE, JobRecord, WorkerInfo
from ..serialize import Serializer
from ..snapshot import JobSnapshot

__all__ = [
    "MAX_BATCH_BODY",
    "MAX_BATCH_JOBS",
    "MAX_BODY",
    "MAX_DEPTH",
    "MAX_DELAY",
    "MAX_PRIORITY",
    "MAX_DEPENDENCIES",
    "MAX_JOB_ID",
    "MAX_UNIQUE_KEY",
    "NAME_PATTERN",
    "ApiError",
    "DEQUE_PREFIX",
    "check_name",
    "check_queue",
    "EnqueueRequest",
    "JobView",
    "parse_enqueue",
    "parse_batch",
    "parse_listing",
    "job_view",
    "worker_view",
]

MAX_BODY = 1024 * 1024
MAX_BATCH_JOBS = 1000
"""The most jobs one ``POST /api/jobs:batch`` may carry."""
MAX_BATCH_BODY = 16 * 1024 * 1024
"""The largest body of a ``POST /api/jobs:batch`` (bytes): a thousand jobs of about 16 KiB."""
"""The largest request body the server reads (1 MiB); a bigger one is answered 413."""
MAX_PRIORITY = 2**53
"""Priorities are numbers within +-2**53: exact in every store and in a browser's JSON."""
MAX_DELAY = 1e9
"""About 31 years: longer delays are surely mistakes."""
_BANNED = tuple(sorted(BANNED))  # the categories no name may hold (see baozi._names)


def _ranges(categories: tuple[str, ...]) -> str:
    """A regular expression character class body matching every character of ``categories``
    (for the OpenAPI document's pattern; about 0.1 s, once, when the web module loads)."""
    spans: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in categories:
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in spans)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


NAME_PATTERN = f"^[^{_ranges(_BANNED)}]{{1,200}}$"
"""Task and queue names: 1 to 200 characters, none a control, format or separator character
(Unicode categories Cc, Cf, Zl, Zp)."""
_NAME = re.compile(NAME_PATTERN)
_FIELDS = (
    "task",
    "args",
    "kwargs",
    "queue",
    "priority",
    "delay",
    "front",
    "unique_key",
    "unique_while",
    "unique_for",
    "depends_on",
    "on_dependency_failure",
)
MAX_UNIQUE_KEY = 1024
"""The longest unique key, in characters (as ``Task.apply_async`` allows)."""
MAX_DEPENDENCIES = 1000
"""The most jobs one job may depend on through the API."""
MAX_JOB_ID = 200
"""The longest job id the API reads: longer than any store issues."""
MAX_DEPTH = 64
"""How deeply arrays and objects may nest in ``args`` and ``kwargs``."""
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000


class ApiError(Exception):
    """An answer other than success: its HTTP status, a message, and the field at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


def _invalid(field: str, message: str) -> NoReturn:
    raise ApiError(422, f"{field}: {message}", field=field)


@dataclass(slots=True)
class EnqueueRequest:
    """A checked ``POST /api/jobs`` body."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    priority: int | float | None
    delay: float | None
    front: bool
    unique_key: str | None = None
    unique_while: str | None = None
    """None: the task's own (``@app.task(unique_while=...)``)."""
    unique_for: float | None = None
    depends_on: tuple[str, ...] = ()
    on_dependency_failure: str = "cancel"


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_DECODE = json.JSONDecoder(parse_constant=_refuse_constant).decode
"""``json.loads`` that refuses NaN and Infinity, without making a decoder each call."""


def _storable_text(value: Any) -> bool:
    """False when a string inside holds a lone surrogate, which no store can encode."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _fit_name(value: str) -> bool:
    # Cached: the same few task and queue names come with every request.
    return _NAME.match(value) is not None and _storable_text(value)


def check_name(value: str, field: str) -> str:
    """``value`` if it is a fit task or queue name; else ApiError(422) naming ``field``."""
    if not _fit_name(value):
        _invalid(
            field,
            "must be 1 to 200 characters, none of them a control, format or line or paragraph "
            "separator character (Unicode categories Cc, Cf, Zl, Zp)",
        )
    return value


DEQUE_PREFIX = "deque:"
"""The store keeps each Deque in a queue of this prefix: not a name for jobs' queues."""


def check_queue(value: str, field: str) -> str:
    """``value`` if it is a fit name for a queue of jobs; else ApiError(422) naming ``field``."""
    check_name(value, field)
    if value.startswith(DEQUE_PREFIX):
        _invalid(field, f"must not start with {DEQUE_PREFIX!r}: baozi keeps its Deques there")
    return value


def _name(data: dict[str, Any], field: str, required: bool) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            _invalid(field, "is required")
        return None
    if not isinstance(value, str):
        _invalid(field, f"must be a string, not {_kind(value)}")
    return check_queue(value, field) if field == "queue" else check_name(value, field)


def _number(data: dict[str, Any], field: str, low: float, high: float) -> int | float | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _invalid(field, f"must be a number, not {_kind(value)}")
    if not low <= value <= high:
        _invalid(field, f"must be between {low:g} and {high:g}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


_TOO_DEEP = f"is nested more than {MAX_DEPTH} arrays or objects deep"
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(value: Any) -> bool:
    """Whether arrays and objects nest more than MAX_DEPTH deep in ``value`` (the value itself
    is depth 1); walked with a stack of its own, so no depth is too much for the walk."""
    items = value.values() if type(value) is dict else value if type(value) is list else ()
    if not any(type(v) is list or type(v) is dict for v in items):  # flat: the common case
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                return True
            stack.extend(
                (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return False


def _deepest_field(text: str) -> str:
    """The field of the body whose value nests more than MAX_DEPTH deep, found in the text (for
    a body too deep for the JSON parser): "args" or "kwargs", else "body"."""
    depth, key = 0, ""
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char == '"':
            if depth == 1:  # a key of the body, or a string value after one
                key = token.group()
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH + 1:
                return key.strip('"') if key in ('"args"', '"kwargs"') else "body"
        else:
            depth -= 1
    return "body"


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""How a lone surrogate gets into parsed JSON: only by an escape (UTF-8 text cannot hold one)."""


def _decode_body(body: bytes) -> Any:
    try:
        return _DECODE(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:
        _invalid(_deepest_field(body.decode("utf-8", "replace")), _TOO_DEEP)
    except ValueError as exc:  # also a body that is not UTF-8
        _invalid("body", f"is not valid JSON ({exc})")


def parse_enqueue(body: bytes) -> EnqueueRequest:
    """Check a ``POST /api/jobs`` body; raise ApiError(422) naming the first field at fault."""
    data = _decode_body(body)
    if not isinstance(data, dict):
        _invalid("body", f"must be a JSON object, not {_kind(data)}")
    escaped = _SURROGATE_ESCAPE.search(body) is not None
    # Nothing can nest deeper than the body holds brackets (those in strings counted too).
    shallow = body.count(b"[") + body.count(b"{") <= MAX_DEPTH
    return _order(data, escaped, shallow)


def parse_batch(body: bytes) -> list[EnqueueRequest]:
    """Check a ``POST /api/jobs:batch`` body, ``{"jobs": [<a POST /api/jobs body>, ...]}``;
    raise ApiError(422) naming the first entry at fault by its index and field
    (``jobs[3].args``)."""
    data = _decode_body(body)
    if not isinstance(data, dict):
        _invalid("body", f"must be a JSON object, not {_kind(data)}")
    for key in data:
        if key != "jobs":
            _invalid(str(key)[:100], "is not a field of a batch (known: jobs)")
    entries = data.get("jobs")
    if not isinstance(entries, list):
        _invalid("jobs", f"must be an array of jobs, not {_kind(entries)}")
    if not 0 < len(entries) <= MAX_BATCH_JOBS:
        _invalid("jobs", f"must hold 1 to {MAX_BATCH_JOBS} jobs, not {len(entries)}")
    escaped = _SURROGATE_ESCAPE.search(body) is not None
    shallow = body.count(b"[") + body.count(b"{") <= MAX_DEPTH
    large = len(body) > MAX_BODY  # then one entry may be larger than POST /api/jobs takes
    orders = []
    for index, entry in enumerate(entries):
        where = f"jobs[{index}]"
        if not isinstance(entry, dict):
            _invalid(where, f"must be a JSON object, not {_kind(entry)}")
        if large and len(_SIZE_ENCODE(entry)) > MAX_BODY:
            raise ApiError(
                413,
                f"{where}: a job is at most {MAX_BODY} bytes, as POST /api/jobs takes it; "
                f"nothing was enqueued",
                field=where,
            )
        try:
            orders.append(_order(entry, escaped, shallow))
        except ApiError as exc:
            field = f"{where}.{exc.field}" if exc.field else where
            named = exc.field is not None and exc.message.startswith(f"{exc.field}:")
            message = f"{where}.{exc.message}" if named else f"{where}: {exc.message}"
            raise ApiError(422, f"{message}; nothing was enqueued", field=field) from None
    return orders


_SIZE_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _order(data: dict[str, Any], escaped: bool, shallow: bool) -> EnqueueRequest:
    """Check one job's fields (``escaped``: the body holds a surrogate escape; ``shallow``: it
    cannot nest too deeply)."""
    for key in data:
        if key not in _FIELDS:
            _invalid(str(key)[:100], f"is not a field of a job (known: {', '.join(_FIELDS)})")
    task = _name(data, "task", required=True)
    assert task is not None
    args = data.get("args", [])
    if not isinstance(args, list):
        _invalid("args", f"must be an array, not {_kind(args)}")
    kwargs = data.get("kwargs", {})
    if not isinstance(kwargs, dict):
        _invalid("kwargs", f"must be an object, not {_kind(kwargs)}")
    for field, value in (("args", args), ("kwargs", kwargs)):
        if not shallow and _too_deep(value):
            _invalid(field, _TOO_DEEP)
        if escaped and not _storable_text(value):
            _invalid(field, "holds a string that is not valid Unicode (a lone surrogate)")
    front = data.get("front", False)
    if front is None:
        front = False
    if not isinstance(front, bool):
        _invalid("front", f"must be a boolean, not {_kind(front)}")
    delay = _number(data, "delay", 0, MAX_DELAY)
    unique_for = _number(data, "unique_for", 0, MAX_DELAY)
    return EnqueueRequest(
        task=task,
        args=args,
        kwargs=kwargs,
        queue=_name(data, "queue", required=False),
        priority=_number(data, "priority", -MAX_PRIORITY, MAX_PRIORITY),
        delay=None if delay is None else float(delay),
        front=front,
        unique_key=_unique_key(data.get("unique_key")),
        unique_while=_choice(data, "unique_while", UNIQUE_WHILE),
        unique_for=None if unique_for is None else float(unique_for),
        depends_on=_job_ids(data.get("depends_on")),
        on_dependency_failure=_choice(data, "on_dependency_failure", ON_DEPENDENCY_FAILURE)
        or "cancel",
    )


def _text(value: Any, field: str, longest: int) -> str:
    """``value`` if it is a string of 1 to ``longest`` characters that every store can hold."""
    if not isinstance(value, str):
        _invalid(field, f"must be a string, not {_kind(value)}")
    if not 0 < len(value) <= longest:
        _invalid(field, f"must be 1 to {longest} characters long")
    if "\x00" in value or not _storable_text(value):
        _invalid(field, "must not hold a NUL character or a lone surrogate")
    return value


def _unique_key(value: Any) -> str | None:
    return None if value is None else _text(value, "unique_key", MAX_UNIQUE_KEY)


def _choice(data: dict[str, Any], field: str, choices: tuple[str, ...]) -> str | None:
    value = data.get(field)
    if value is not None and value not in choices:
        _invalid(field, f"must be one of {', '.join(choices)}")
    return value


def _job_ids(value: Any) -> tuple[str, ...]:
    """The ids of ``depends_on``, in order, each once."""
    if value is None:
        return ()
    if not isinstance(value, list):
        _invalid("depends_on", f"must be an array of job ids, not {_kind(value)}")
    if len(value) > MAX_DEPENDENCIES:
        _invalid("depends_on", f"must hold at most {MAX_DEPENDENCIES} job ids")
    for item in value:
        if not isinstance(item, str):
            _invalid("depends_on", f"must hold job ids (strings), not {_kind(item)}")
        _text(item, "depends_on", MAX_JOB_ID)
    return tuple(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class Listing:
    """Checked ``GET /api/jobs`` query parameters."""

    queue: str | None
    status: str | None
    limit: int
    offset: int | None
    """Given only by clients of the offset paging (``next_offset``); None for keyset paging."""
    task: str | None = None
    since: float | None = None
    until: float | None = None
    search: str | None = None
    cursor: str | None = None


def _int_param(params: dict[str, str], field: str, default: int, low: int, high: int) -> int:
    raw = params.get(field)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        _invalid(field, f"must be a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        _invalid(field, f"must be a whole number from {low} to {high}")
    return value


def parse_listing(params: dict[str, str]) -> Listing:
    """Check the ``GET /api/jobs`` query parameters: ``queue``, ``status``, ``task``, ``since``
    and ``until`` (epoch seconds, on the creation time), ``q`` (an id, or part of a task's
    name), ``limit``, and ``cursor`` (keyset paging) or ``offset`` (the older paging)."""
    status = params.get("status")
    if status is not None and status not in STATUSES:
        _invalid("status", f"must be one of {', '.join(STATUSES)}")
    queue, task = params.get("queue"), params.get("task")
    if task is not None:
        check_name(task, "task")
    search = params.get("q")
    if search is not None:
        _text(search, "q", 200)
    cursor = params.get("cursor")
    if cursor is not None:
        _text(cursor, "cursor", 200)
    since, until = _time_param(params, "since"), _time_param(params, "until")
    if since is not None and until is not None and since > until:
        _invalid("until", "must not be earlier than since")
    offset = None if "offset" not in params else _int_param(params, "offset", 0, 0, MAX_OFFSET)
    if offset is not None and (cursor or task or search or "since" in params or "until" in params):
        _invalid("offset", "pages only a listing by queue and status: use cursor with filters")
    return Listing(
        queue=None if queue is None else check_queue(queue, "queue"),
        status=status or None,
        limit=_int_param(params, "limit", 50, 1, MAX_LIMIT),
        offset=offset,
        task=task,
        since=since,
        until=until,
        search=search,
        cursor=cursor,
    )


def _time_param(params: dict[str, str], field: str) -> float | None:
    raw = params.get(field)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        _invalid(field, "must be a time in seconds since the epoch (e.g. 1765000000.5)")
    if not math.isfinite(value) or not 0 <= value < 1e11:
        _invalid(field, "must be a time in seconds since the epoch (e.g. 1765000000.5)")
    return value


WINDOWS = {"10m": 600, "1h": 3600, "24h": 86400}
"""The windows of the statistics and charts, by the name the API takes."""


def parse_window(raw: str | None) -> tuple[str, int]:
    """The ``window`` parameter (10m by default) and its length in seconds."""
    window = "10m" if raw is None else raw
    if window not in WINDOWS:
        _invalid("window", f"must be one of {', '.join(WINDOWS)}")
    return window, WINDOWS[window]


def parse_bulk(body: bytes, statuses: tuple[str, ...]) -> tuple[str, str | None]:
    """Check the body of a bulk action, ``{"status": ..., "queue": ...}`` (queue optional):
    the status, one of ``statuses``, and the queue."""
    data = _decode_body(body)
    if not isinstance(data, dict):
        _invalid("body", f"must be a JSON object, not {_kind(data)}")
    for key in data:
        if key not in ("status", "queue"):
            _invalid(str(key)[:100], "is not a field of a bulk action (known: status, queue)")
    status = data.get("status")
    if status not in statuses:
        _invalid("status", f"must be one of {', '.join(statuses)}")
    queue = data.get("queue")
    if "queue" in data:
        if not isinstance(queue, str):
            _invalid("queue", f"must be a string, not {_kind(queue)}")
        check_queue(queue, "queue")
    return status, queue


def attempt_history(rec: JobRecord, logged: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each run of a job, oldest first: the runs its workers logged as they ended without
    success (or succeeded after such), then its current or last run from its record when the
    log does not hold it, and -- for a job never run again by hand -- a "lost" entry for each
    other run: its worker stopped (killed, say) before it could tell how it ended."""
    runs: list[dict[str, Any]] = [
        {
            "attempt": entry.get("attempt"),
            "worker": entry.get("worker"),
            "started_at": entry.get("started_at"),
            "finished_at": entry.get("finished_at"),
            "outcome": entry.get("outcome"),
            "error": entry.get("error"),
        }
        for entry in logged
        if isinstance(entry.get("attempt"), int) and entry["attempt"] > 0
    ]
    numbers = [r["attempt"] for r in runs]
    # A job run again by hand starts counting its attempts anew: its log repeats numbers.
    restarted = len(set(numbers)) < len(numbers) or any(n > rec.attempts for n in numbers)
    last = rec.attempts
    if last and not any(_same_run(r, last, rec.started_at) for r in runs):
        ended = rec.status in ("succeeded", "failed", "cancelled")
        error = _error(rec.error) if rec.status in ("failed", "cancelled") else None
        runs.append(
            {
                "attempt": last,
                "worker": rec.worker,
                "started_at": rec.started_at,
                "finished_at": rec.finished_at if ended else None,
                "outcome": "running"
                if rec.status == "running"
                else rec.status
                if ended
                else "lost",
                "error": None if error is None else {k: error[k] for k in ("type", "message")},
            }
        )
    if not restarted:
        told = {r["attempt"] for r in runs}
        runs += [
            {
                "attempt": n,
                "worker": None,
                "started_at": None,
                "finished_at": None,
                "outcome": "lost",
                "error": None,
            }
            for n in range(1, last)
            if n not in told
        ]
        runs.sort(key=lambda r: r["attempt"])
    # The run's place among all of them: a job run again by hand numbers its attempts anew.
    return [{"run": k, **r} for k, r in enumerate(runs, 1)]


def _same_run(run: Mapping[str, Any], attempt: int, started_at: float | None) -> bool:
    """Whether a logged run is the record's run ``attempt``, begun at ``started_at`` (the
    worker's clock and the store's may differ by a little; a run again by hand, begun later,
    has the same number)."""
    began = run.get("started_at")
    if run.get("attempt") != attempt:
        return False
    return began is None or started_at is None or abs(began - started_at) < 1.0


def schedule_view(runs: Any, now: float) -> dict[str, Any]:
    """A periodic schedule as the API shows it (``runs``: a :class:`baozi.beat.ScheduleRuns`)."""
    schedule = runs.schedule
    return {
        "name": schedule.key,
        "task": schedule.task.name,
        "queue": schedule.task.queue,
        "schedule": schedule.describe(),
        "args": plain(list(schedule.args)),
        "kwargs": plain(schedule.kwargs),
        "last_run": runs.last_run,
        "next_run": runs.next_run,
        "overdue": runs.next_run < now - 1.0,
    }


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it: tuples and sets become arrays, dates ISO text, bytes
    base64 text, numbers JSON has no word for (nan, inf) and anything else their ``repr``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): plain(v) for k, v in value.items()}
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    return repr(value)


class ErrorView(TypedDict):
    type: str
    message: str
    traceback: str


class ProgressView(TypedDict):
    fraction: float
    message: str | None


class JobView(TypedDict, total=False):
    id: str
    task: str
    queue: str
    status: str
    priority: int | float
    position: int | None
    position_supported: bool
    summary: str
    scheduled_for: float | None
    waiting_for: int | None
    eta_seconds: float | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    args: Any
    kwargs: Any
    progress: ProgressView | None
    result: Any
    error: ErrorView | None
    url: str
    unique_key: str | None
    worker: str | None
    parents: list[str]
    children: list[str]
    on_dependency_failure: str
    deduplicated: bool


def _decoded(codec: Serializer, data: bytes | None) -> tuple[bool, Any]:
    if data is None:
        return True, None
    try:
        return True, codec.loads(data)
    except Exception:  # written by another serializer, or by a newer baozi: shown as unreadable
        return False, None


def job_view(rec: JobRecord, codec: Serializer, snap: JobSnapshot, *, full: bool = True) -> JobView:
    """A job as the API shows it: where it stands (``snap``, read with ``rec``), its call, and
    its result or error once finished; in full, the jobs it depends on and those that depend on
    it (their ids)."""
    eta = snap.eta_seconds
    view: JobView = {
        "id": rec.id,
        "task": rec.task,
        "queue": rec.queue,
        "status": rec.status,
        "priority": plain(rec.priority),
        "position": snap.position,
        "position_supported": snap.position_supported,
        "summary": snap.describe(),
        "scheduled_for": snap.scheduled_for,
        "waiting_for": snap.waiting_for,
        "eta_seconds": None if eta is None else round(eta, 3),
        "attempts": rec.attempts,
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "unique_key": rec.unique_key,
        "worker": rec.worker,
        "url": f"/api/jobs/{rec.id}",
    }
    ok, call = _decoded(codec, rec.payload)
    # [args, kwargs], or [args, kwargs, meta] when middleware added meta (see baozi.middleware)
    args, kwargs = (
        call[:2] if ok and isinstance(call, list) and len(call) in (2, 3) else (None, None)
    )
    view["args"], view["kwargs"] = plain(args), plain(kwargs)
    view["error"] = _error(rec.error)
    if not full:
        return view
    view["parents"], view["children"] = list(rec.parents), list(rec.children)
    view["on_dependency_failure"] = rec.on_dependency_failure
    view["progress"] = _progress(rec.progress)
    ok, result = _decoded(codec, rec.result if rec.status == "succeeded" else None)
    view["result"] = plain(result) if ok else "<a result this server cannot decode>"
    return view


def _error(raw: str | None) -> ErrorView | None:
    if not raw:
        return None
    try:
        error = json.loads(raw)
    except ValueError:
        return {"type": "Error", "message": raw, "traceback": ""}
    if not isinstance(error, dict):
        return {"type": "Error", "message": str(error), "traceback": ""}
    return {
        "type": str(error.get("type", "Error")),
        "message": str(error.get("message", "")),
        "traceback": str(error.get("traceback", "")),
    }


def _progress(raw: str | None) -> ProgressView | None:
    try:
        fraction, message = json.loads(raw) if raw else (None, None)
        return None if fraction is None else {"fraction": float(fraction), "message": message}
    except (ValueError, TypeError):
        return None


class WorkerView(TypedDict):
    id: str
    host: str
    pid: int
    pool: str
    concurrency: int
    busy: int
    queues: list[str]
    started_at: float
    last_heartbeat: float


def worker_view(info: WorkerInfo, *, busy: int) -> WorkerView:
    """A worker as the API shows it; ``busy``: the jobs it holds now, read from the store."""
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "pool": info.pool,
        "concurrency": info.concurrency,
        "busy": min(busy, info.concurrency),
        "queues": list(info.queues),
        "started_at": info.started_at,
        "last_heartbeat": info.last_seen,
    }
