"""The JSON endpoints: enqueue a job and follow it, list jobs, queues and workers, act on them.

Every store call runs in a worker thread (``run_in_threadpool``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import _runstats as runstats
from .._eta import RATE_FINISHES, Estimator
from ..app import App
from ..backends.base import JobPlace, JobRecord, NewJob
from ..errors import Full, JobNotFound
from ..jobs import FINISHED
from ..snapshot import snapshot_of
from ._graph import job_graph
from ._intake import Intake
from ._wire import (
    DEQUE_PREFIX,
    MAX_BATCH_BODY,
    MAX_BODY,
    ApiError,
    EnqueueRequest,
    Listing,
    attempt_history,
    check_queue,
    job_view,
    parse_batch,
    parse_bulk,
    parse_enqueue,
    parse_listing,
    parse_window,
    schedule_view,
    worker_view,
)
from .metrics import CONTENT_TYPE, Metrics
from .stats import THROUGHPUT_BUCKET, Observer

__all__ = ["Api"]

T = TypeVar("T")
_PAUSE_METHODS = ("pause", "resume", "is_paused")
EVENT_EVERY = 2.0
"""Seconds between two ticks of ``GET /api/events``."""
BULK_PAGE = 500
"""Jobs a bulk action reads and acts on at a time."""
DEAD_KEPT = 600.0
"""Seconds a worker whose heartbeats stopped is still shown, as dead."""
STALE_BEATS = 2
"""Heartbeats a worker may miss before it shows as stale (it beats every third of a lease)."""


def _entry_error(index: int, exc: ApiError) -> ApiError:
    """``exc``, raised by the batch's entry ``index``, as the batch's answer: 422 naming the
    entry's place and field, and saying that nothing was enqueued."""
    where = f"jobs[{index}]"
    field = f"{where}.{exc.field}" if exc.field else where
    named = exc.field is not None and exc.message.startswith(f"{exc.field}:")
    message = f"{where}.{exc.message}" if named else f"{where}: {exc.message}"
    if "nothing was enqueued" not in message:
        message += "; nothing was enqueued"
    return ApiError(422, message, field=field)


def _not_in_batch(index: int, order: EnqueueRequest) -> str:
    """Why an order that cannot be filed with others is refused in a batch."""
    for field, given in (
        ("depends_on", order.depends_on),
        ("unique_key", order.unique_key is not None),
        ("delay", order.delay is not None),
        ("front", order.front),
    ):
        if given:
            return (
                f"jobs[{index}].{field}: a batch files plain jobs, ready now, at the back of "
                f"their queues; send this job with POST /api/jobs; nothing was enqueued"
            )
    return (
        f"jobs[{index}]: its task or queue is not filed with others (a unique task, a queue "
        f"that is not FIFO, or a priority the store cannot keep); send it with POST /api/jobs; "
        f"nothing was enqueued"
    )


class _Anything(Convertor[str]):
    """A path parameter that may hold any character, a newline and "/" included: a queue name
    is checked by the API (which answers 422 with the reason), not refused by the router."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anything", _Anything())


def _check_json(content_type: str) -> None:
    # Required: a page of another site may send a body of no type, or text/plain, to any
    # server without asking; it cannot send application/json without the server's leave.
    kind = content_type.split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        sent = f"application/json, not {kind[:100]!r}" if kind else "Content-Type: application/json"
        raise ApiError(415, f"send the job as {sent}")


async def _read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    _check_json(request.headers.get("content-type", ""))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
"""``json.dumps`` with these options, without making an encoder each call."""


async def _send_json(send: Send, status: int, value: Any, *headers: tuple[bytes, bytes]) -> None:
    """Answer with ``value`` as JSONResponse would, without making one."""
    body = _ENCODE(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Gone(Exception):
    """The client went away before its request's body arrived."""


async def _read_raw_body(scope: Scope, receive: Receive) -> bytes:
    """``_read_body`` on the bare ASGI interface."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
            break
    _check_json(content_type.decode("latin-1"))
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class Api:
    """The endpoints, bound to one App, the observer watching its store, and its metrics."""

    def __init__(self, app: App, observer: Observer, metrics: Metrics) -> None:
        self.app = app
        self.observer = observer
        self.metrics = metrics
        # Run times and worker slots, read at most once a second for every request's estimate;
        # while one is not known (no run reported, no worker), at most five times a second.
        self.estimator = Estimator(app.store, self._rate, ttl=1.0, unknown_ttl=0.2)
        self.intake = Intake(self)
        """Files concurrent enqueue orders in batches (group commit)."""
        self._seen_workers: dict[str, dict[str, Any]] = {}
        """The workers /api/workers listed, by id, to show the ones that stop as dead."""
        self._tick_lock = asyncio.Lock()
        self._last_tick: tuple[float, str] = (-math.inf, "")
        self.pausable = all(callable(getattr(app, m, None)) for m in _PAUSE_METHODS)
        """Whether this App can pause queues (``App.pause``/``resume``/``is_paused``)."""

    def routes(self) -> list[Route]:
        return [
            Route("/api/jobs", self._jobs, methods=["GET", "POST"]),
            Route("/api/jobs:batch", self.batch, methods=["POST"]),
            Route("/api/jobs:retry", self.retry_all, methods=["POST"]),
            Route("/api/jobs:forget", self.forget_all, methods=["POST"]),
            Route("/api/jobs/{job_id}/attempts", self.attempts, methods=["GET"]),
            Route("/api/jobs/{job_id}", self._job, methods=["GET", "DELETE"]),
            Route("/api/jobs/{job_id}/retry", self.retry, methods=["POST"]),
            Route("/api/jobs/{job_id}/forget", self.forget, methods=["POST"]),
            Route("/api/jobs/{job_id}/graph", self.graph, methods=["GET"]),
            Route("/api/queues", self.queues, methods=["GET"]),
            # The name in the query: for names a browser rewrites in a path ("." and "..").
            Route("/api/queues/pause", self.pause, methods=["POST"]),
            Route("/api/queues/resume", self.resume, methods=["POST"]),
            # A queue name may hold "/" (sent as %2F): the name runs up to the last segment.
            Route("/api/queues/purge", self.purge, methods=["POST"]),
            Route("/api/queues/depth", self.depth, methods=["GET"]),
            Route("/api/queues/{name:anything}/purge", self.purge, methods=["POST"]),
            Route("/api/queues/{name:anything}/depth", self.depth, methods=["GET"]),
            Route("/api/queues/{name:anything}/pause", self.pause, methods=["POST"]),
            Route("/api/queues/{name:anything}/resume", self.resume, methods=["POST"]),
            Route("/api/queues/{name:anything}", self.delete_queue, methods=["DELETE"]),
            Route("/api/workers", self.workers, methods=["GET"]),
            Route("/api/throughput", self.throughput, methods=["GET"]),
            Route("/api/tasks", self.tasks, methods=["GET"]),
            Route("/api/schedules", self.schedules, methods=["GET"]),
            Route("/api/events", self.events, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ]

    @staticmethod
    async def _off_loop(fn: Callable[[], T]) -> T:
        return await run_in_threadpool(fn)

    # -- jobs ---------------------------------------------------------------------------------

    async def _jobs(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.enqueue(request)
        return await self.list_jobs(request)

    async def _job(self, request: Request) -> Response:
        if request.method == "DELETE":
            return await self.cancel(request)
        return await self.get_job(request)

    async def enqueue(self, request: Request) -> Response:
        order = parse_enqueue(await _read_body(request))
        status, view = await self.intake.submit(order, request.scope.get("root_path", ""))
        return JSONResponse(view, status_code=status, headers={"Location": view["url"]})

    async def post_job(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        on_error: Callable[[Request, Exception], Awaitable[Response]],
    ) -> None:
        """``POST /api/jobs`` on the bare ASGI interface: the hot path of a burst, without the
        router's and middlewares' layers. It answers as :meth:`enqueue` does; an error goes to
        ``on_error``, the application's handler for it."""
        try:
            order = parse_enqueue(await _read_raw_body(scope, receive))
            status, view = await self.intake.submit(order, scope.get("root_path", ""))
        except _Gone:
            return
        except Exception as exc:
            await (await on_error(Request(scope), exc))(scope, receive, send)
            return
        await _send_json(send, status, view, (b"location", view["url"].encode("latin-1")))

    async def batch(self, request: Request) -> Response:
        """``POST /api/jobs:batch``: up to MAX_BATCH_JOBS jobs, of any tasks and queues, filed
        all or nothing in one store step; 202 with each job's view in the request's order."""
        orders = parse_batch(await _read_body(request, MAX_BATCH_BODY))
        root = request.scope.get("root_path", "")
        views = await self._off_loop(lambda: self._file_batch(orders, root))
        return JSONResponse({"jobs": views}, status_code=202)

    def _file_batch(self, orders: list[EnqueueRequest], root: str) -> list[dict[str, Any]]:
        app = self.app
        if app._enqueue_hooks:
            raise ApiError(
                409,
                "this app has enqueue middleware, which runs job by job: send each job with "
                "POST /api/jobs",
            )
        groups: dict[str, list[NewJob]] = {}
        slots: list[tuple[str, int]] = []  # each order's queue and index in its group
        for index, order in enumerate(orders):
            try:
                filed = self.intake.plain(order)
            except ApiError as exc:  # an unknown task (404 alone) is a bad entry here too
                raise _entry_error(index, exc) from None
            if filed is None:
                raise ApiError(422, _not_in_batch(index, order), field=f"jobs[{index}]")
            queue, job = filed
            members = groups.setdefault(queue, [])
            slots.append((queue, len(members)))
            members.append(job)
        names = list(groups)
        try:
            specs = {q: app._spec_for(q, len(groups[q])) for q in names}
        except ValueError as exc:  # more jobs than a bounded queue can ever hold
            raise ApiError(422, f"jobs: {exc}; nothing was enqueued", field="jobs") from exc
        try:
            filed_groups = app.store.enqueue_across(
                [(q, groups[q], specs[q].maxsize) for q in names]
            )
        except Full as exc:
            bounded = [q for q in names if specs[q].maxsize] or names
            retry_after = max(int(self._retry_after(q)) for q in bounded)
            raise ApiError(
                429, f"{exc}; nothing was enqueued", headers={"Retry-After": str(retry_after)}
            ) from exc
        placed = dict(zip(names, filed_groups, strict=True))
        views = []
        for queue, k in slots:
            job_id, place = placed[queue][k]
            views.append(
                self._placed_view(job_id, root) if place is None else self._brief(place, root)
            )
        return views

    def _brief(self, place: JobPlace, root: str) -> dict[str, Any]:
        """A job's view without its arguments: where it stands, as a batch's answer gives it."""
        rec = place.record
        snap = snapshot_of(self.app.store, place, estimator=self.estimator)
        eta = snap.eta_seconds
        return {
            "id": rec.id,
            "task": rec.task,
            "queue": rec.queue,
            "status": rec.status,
            "position": snap.position,
            "position_supported": snap.position_supported,
            "summary": snap.describe(),
            "eta_seconds": None if eta is None else round(eta, 3),
            "url": f"{root}/api/jobs/{rec.id}",
        }

    async def retry_all(self, request: Request) -> Response:
        """``POST /api/jobs:retry``: run again every job of a status (failed or cancelled),
        of one queue or all: ``{"retried": n}``."""
        status, queue = parse_bulk(await _read_body(request), ("failed", "cancelled"))

        def act() -> dict[str, Any]:
            done = 0
            for ids in self._pages(queue, status):
                done += sum(self.app.store.requeue(i) for i in ids)
            return {"status": status, "queue": queue, "retried": done}

        return JSONResponse(await self._off_loop(act))

    async def forget_all(self, request: Request) -> Response:
        """``POST /api/jobs:forget``: remove the records of every finished job of a status,
        of one queue or all: ``{"forgotten": n}``."""
        status, queue = parse_bulk(await _read_body(request), tuple(FINISHED))

        def act() -> dict[str, Any]:
            done = sum(self.app.store.forget(ids) for ids in self._pages(queue, status))
            return {"status": status, "queue": queue, "forgotten": done}

        return JSONResponse(await self._off_loop(act))

    def _pages(self, queue: str | None, status: str) -> Iterator[list[str]]:
        """The ids of the jobs of ``status`` (and ``queue``), a page at a time, newest first."""
        cursor: str | None = None
        while True:
            recs, cursor = self.app.store.records_page(
                queue=queue, status=status, cursor=cursor, limit=BULK_PAGE
            )
            if recs:
                yield [r.id for r in recs]
            if cursor is None:
                return

    async def attempts(self, request: Request) -> Response:
        """``GET /api/jobs/{id}/attempts``: each run of the job, with its worker, its times and
        how it ended, oldest first."""
        job_id = request.path_params["job_id"]

        def read() -> dict[str, Any]:
            rec = self._record(job_id)
            logged = runstats.attempt_log(self.app.store, rec.id, rec.created_at)
            return {"id": rec.id, "attempts": attempt_history(rec, logged)}

        return JSONResponse(await self._off_loop(read))

    def _unknown_task(self, name: str) -> ApiError:
        known = ", ".join(sorted(self.app.tasks)[:20]) or "none"
        return ApiError(404, f"no task named {name!r} (known: {known})", field="task")

    def _enqueue_view(self, order: EnqueueRequest, root: str) -> tuple[int, Any]:
        """Enqueue one order on its own: its status (202, or 200 when deduplicated) and view."""
        task = self.app.tasks.get(order.task)
        if task is None:
            raise self._unknown_task(order.task)
        try:
            job = task.apply_async(
                order.args,
                order.kwargs,
                queue=order.queue,
                priority=order.priority,
                delay=order.delay,
                front=order.front,
                block=False,
                unique_key=order.unique_key,
                unique_while=order.unique_while,
                unique_for=order.unique_for,
                depends_on=order.depends_on,
                on_dependency_failure=order.on_dependency_failure,
            )
        except JobNotFound as exc:  # a job it depends on: the store made nothing
            raise self._no_dependency(order.depends_on) from exc
        except Full as exc:
            retry_after = self._retry_after(order.queue or task.queue)
            raise ApiError(429, str(exc), headers={"Retry-After": retry_after}) from exc
        except TypeError as exc:  # an argument the app's serializer refuses
            raise ApiError(422, f"args: {exc}", field="args") from exc
        except RecursionError as exc:  # nested past what the app's serializer can follow
            raise ApiError(422, "args: nested too deeply to store", field="args") from exc
        except ValueError as exc:
            if order.depends_on and self._missing(order.depends_on):  # an id no store issues
                raise self._no_dependency(order.depends_on) from exc
            raise ApiError(422, str(exc), field="body") from exc
        view = self._view(self._place(job.id), root=root)
        # The same job again when another held the unique key: 200, as nothing was made.
        view["deduplicated"] = job.deduplicated
        return 200 if job.deduplicated else 202, view

    def _lookup(self, job_id: str) -> JobRecord | None:
        try:
            return self.app.store.record(job_id)
        except (ValueError, OverflowError, UnicodeError):  # no store could hold such an id
            return None

    def _missing(self, job_ids: tuple[str, ...]) -> str | None:
        """The first of ``job_ids`` the store holds no job for."""
        return next((i for i in job_ids if self._lookup(i) is None), None)

    def _no_dependency(self, job_ids: tuple[str, ...]) -> ApiError:
        missing = self._missing(job_ids)
        which = f"no job {missing[:100]!r}" if missing else "a job it names is gone"
        return ApiError(
            422,
            f"depends_on: {which}: a job can only depend on jobs the store holds; "
            f"nothing was enqueued",
            field="depends_on",
        )

    def _retry_after(self, queue: str) -> str:
        stats = self.observer.stats(queue)
        if stats is None or not stats.rate:
            return "5"
        return str(max(1, math.ceil(1 / stats.rate)))

    def _record(self, job_id: str) -> JobRecord:
        rec = self._lookup(job_id)
        if rec is None:
            raise ApiError(404, f"no job {job_id[:100]!r}")
        return rec

    def _place(self, job_id: str) -> JobPlace:
        """The job's record and place, read at one moment; 404 if there is no such job."""
        try:
            place = self.app.store.job_snapshot(job_id)
        except (ValueError, OverflowError, UnicodeError):  # no store could hold such an id
            place = None
        if place is None:
            raise ApiError(404, f"no job {job_id[:100]!r}")
        return place

    def _placed_view(self, job_id: str, root: str) -> Any:
        return self._view(self._place(job_id), root=root)

    def _rate(self, queue: str) -> float | None:
        """The queue's completion rate, once enough of its jobs finished in the last minute."""
        stats = self.observer.stats(queue)
        if stats is None or stats.finished_last_minute < RATE_FINISHES:
            return None
        return stats.rate

    def _view(
        self,
        place: JobPlace,
        *,
        root: str = "",
        full: bool = True,
        estimator: Estimator | None = None,
    ) -> Any:
        estimator = estimator or self.estimator
        snap = snapshot_of(self.app.store, place, estimator=estimator)
        view = job_view(place.record, self.app.codec, snap, full=full)
        view["url"] = root + view["url"]
        return view

    async def get_job(self, request: Request) -> Response:
        job_id, root = request.path_params["job_id"], request.scope.get("root_path", "")
        return JSONResponse(await self.intake.look_up(job_id, root))

    async def get_job_raw(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        job_id: str,
        on_error: Callable[[Request, Exception], Awaitable[Response]],
    ) -> None:
        """``GET /api/jobs/{id}`` on the bare ASGI interface (see :meth:`post_job`): what a
        thousand clients polling for their place ask, each once a second."""
        try:
            view = await self.intake.look_up(job_id, scope.get("root_path", ""))
        except Exception as exc:
            await (await on_error(Request(scope), exc))(scope, receive, send)
            return
        await _send_json(send, 200, view)

    async def cancel(self, request: Request) -> Response:
        job_id, root = request.path_params["job_id"], request.scope.get("root_path", "")

        def cancel() -> Any:
            self._record(job_id)
            if not self.app.store.cancel(
                job_id, ttl=self.app.result_ttl, failed_ttl=self.app.failed_ttl
            ):
                status = self._record(job_id).status
                raise ApiError(
                    409,
                    f"job {job_id} is {status}: only a job that has not finished can be cancelled",
                )
            return self._view(self._place(job_id), root=root)

        return JSONResponse(await self._off_loop(cancel))

    async def retry(self, request: Request) -> Response:
        job_id, root = request.path_params["job_id"], request.scope.get("root_path", "")

        def retry() -> Response:
            self._record(job_id)
            if not self.app.store.requeue(job_id):
                status = self._record(job_id).status
                raise ApiError(
                    409, f"job {job_id} is {status}: only a failed or cancelled job can be retried"
                )
            view = self._view(self._place(job_id), root=root)
            return JSONResponse(view, status_code=202, headers={"Location": view["url"]})

        return await self._off_loop(retry)

    async def forget(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]

        def forget() -> dict[str, Any]:
            status = self._record(job_id).status
            if status in FINISHED and self.app.store.forget([job_id]):
                return {"id": job_id, "forgotten": True}
            status = self._record(job_id).status  # 404 if it went meanwhile
            raise ApiError(
                409,
                f"job {job_id} is {status}: only a finished job's record can be forgotten "
                f"(cancel it first)",
            )

        return JSONResponse(await self._off_loop(forget))

    async def graph(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        return JSONResponse(
            await self._off_loop(lambda: job_graph(self._lookup, self._record(job_id)))
        )

    async def list_jobs(self, request: Request) -> Response:
        query = parse_listing(dict(request.query_params))
        root = request.scope.get("root_path", "")
        if query.offset is None:
            return JSONResponse(await self._off_loop(lambda: self._page(query, root)))
        offset = query.offset

        def listing() -> dict[str, Any]:
            store = self.app.store
            recs = store.records(query.queue, query.status, query.limit + 1, offset)
            more = len(recs) > query.limit
            # Each job's status and place are read again together (the listing read them at
            # another moment); one whose record went meanwhile is left out.
            places = [store.job_snapshot(rec.id) for rec in recs[: query.limit]]
            estimator = self.estimator
            return {
                "jobs": [
                    self._view(p, root=root, full=False, estimator=estimator)
                    for p in places
                    if p is not None
                ],
                "limit": query.limit,
                "offset": offset,
                "next_offset": offset + query.limit if more else None,
            }

        return JSONResponse(await self._off_loop(listing))

    def _page(self, query: Listing, root: str) -> dict[str, Any]:
        """A page of jobs by keyset (``cursor``): new jobs arriving meanwhile do not shift it."""
        store = self.app.store
        try:
            recs, cursor = store.records_page(
                queue=query.queue,
                status=query.status,
                task=query.task,
                since=query.since,
                until=query.until,
                search=query.search,
                cursor=query.cursor,
                limit=query.limit,
            )
        except ValueError as exc:  # a cursor this store did not make
            raise ApiError(422, f"cursor: {exc}", field="cursor") from exc
        places = store.job_snapshots([rec.id for rec in recs])
        estimator = self.estimator
        return {
            "jobs": [
                self._view(places[rec.id], root=root, full=False, estimator=estimator)
                for rec in recs
                if rec.id in places
            ],
            "limit": query.limit,
            "next_cursor": cursor,
        }

    # -- queues and workers -------------------------------------------------------------------

    async def queues(self, request: Request) -> Response:
        return JSONResponse(await self._off_loop(self._queues))

    def _queues(self) -> dict[str, Any]:
        store = self.app.store
        names = {n for n in store.queues() if not n.startswith(DEQUE_PREFIX)} | set(self.app.queues)
        oldest = store.oldest_ready(sorted(names)) if names else {}
        now = time.time()
        out = []
        for name in sorted(names):
            counts = store.job_counts(name)
            stats = self.observer.stats(name)
            spec = self.app.queues.get(name)
            maxsize = spec.maxsize if spec else int(store.queue_options(name).get("maxsize") or 0)
            out.append(
                {
                    "name": name,
                    "waiting": counts.get("waiting", 0),
                    "ready": counts.get("queued", 0),
                    "scheduled": counts.get("scheduled", 0),
                    "running": counts.get("running", 0),
                    "succeeded": counts.get("succeeded", 0),
                    "failed": counts.get("failed", 0),
                    "cancelled": counts.get("cancelled", 0),
                    "finished_last_minute": stats.finished_last_minute if stats else 0,
                    "rate_per_second": None
                    if stats is None or stats.rate is None
                    else round(stats.rate, 3),
                    "maxsize": maxsize,
                    "oldest_ready_at": oldest.get(name),
                    "latency_seconds": None
                    if name not in oldest
                    else round(max(0.0, now - oldest[name]), 3),
                    "pausable": self.pausable,
                    "paused": self._is_paused(name),
                }
            )
        return {"queues": out}

    def _is_paused(self, name: str) -> bool | None:
        if not self.pausable:
            return None
        return bool(getattr(self.app, "is_paused")(name))  # noqa: B009 -- not on every App

    async def pause(self, request: Request) -> Response:
        return await self._pause_or_resume(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._pause_or_resume(request, "resume")

    @staticmethod
    def _queue_name(request: Request) -> str:
        name = request.path_params.get("name")
        if name is None:
            name = request.query_params.get("name")
            if name is None:
                raise ApiError(422, "name: is required", field="name")
        return check_queue(name, "name")

    def _declared(self) -> set[str]:
        """The queues the app names: declared with ``app.queue``, or a task's."""
        return set(self.app.queues) | {task.queue for task in self.app.tasks.values()}

    def _known(self, name: str) -> None:
        """Raise ApiError(404) unless the store holds the queue or the app declares it: a
        name nobody uses makes no queue."""
        if name not in self._declared() and not self.app.store.has_queue(name):
            raise ApiError(
                404,
                f"no queue {name[:200]!r}: it has never held a job, and the app declares no "
                f"such queue (with app.queue or a task's queue)",
                field="name",
            )

    async def _pause_or_resume(self, request: Request, action: str) -> Response:
        name = self._queue_name(request)
        if not self.pausable:
            raise ApiError(409, "this version of baozi cannot pause queues")

        def act() -> dict[str, Any]:
            self._known(name)
            try:
                getattr(self.app, action)(name)
            except ValueError as exc:
                raise ApiError(422, str(exc), field="name") from exc
            return {"name": name, "paused": self._is_paused(name)}

        return JSONResponse(await self._off_loop(act))

    async def purge(self, request: Request) -> Response:
        """Remove every job of the queue -- waiting, scheduled, running and finished -- as
        ``baozi purge`` does: ``{"name", "purged": n}``."""
        name = self._queue_name(request)

        def act() -> dict[str, Any]:
            self._known(name)
            return {"name": name, "purged": self.app.store.clear(name)}

        return JSONResponse(await self._off_loop(act))

    async def delete_queue(self, request: Request) -> Response:
        name = self._queue_name(request)

        def delete() -> dict[str, Any]:
            store = self.app.store
            if not store.has_queue(name):
                raise ApiError(404, f"no queue {name[:200]!r}", field="name")
            if not store.delete_queue(name):
                raise ApiError(
                    409,
                    f"queue {name[:200]!r} is not empty: it holds jobs or their records "
                    f"(purge it first: baozi purge QUEUE --delete)",
                )
            return {"name": name, "deleted": True}

        return JSONResponse(await self._off_loop(delete))

    async def workers(self, request: Request) -> Response:
        def read() -> tuple[list[Any], list[Any]]:
            store = self.app.store
            found = store.workers()
            # What each holds now, from the store's leases: a heartbeat is up to a lease old.
            # Every queue, not only those live workers serve: a dead worker's jobs may be in
            # a queue nobody serves now.
            queues = sorted(
                {q for q in store.queues() if not q.startswith(DEQUE_PREFIX)}
                | {q for w in found for q in w.queues}
                | self._declared()
            )
            jobs = store.running_jobs(queues) if queues else {}
            now, stale_after = time.time(), self.app.lease * STALE_BEATS / 3
            views = []
            for w in found:
                view: dict[str, Any] = dict(worker_view(w, busy=len(jobs.get(w.id, ()))))
                view["jobs"] = sorted(jobs.get(w.id, ()))
                view["stale"] = now - w.last_seen > stale_after
                view["dead"] = False
                views.append(view)
            alive = {w.id for w in found}
            # Leases whose holder sends no heartbeat: a worker that died with jobs in hand,
            # which run again once their leases run out.
            gone = [
                {"id": owner, "jobs": sorted(ids)}
                for owner, ids in sorted(jobs.items())
                if owner not in alive
            ]
            return views, gone

        views, gone = await self._off_loop(read)
        views += self._dead(views)
        views.sort(key=lambda v: (v["host"], v["pid"], v["id"]))
        return JSONResponse({"workers": views, "gone": gone})

    def _dead(self, live: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The workers this server saw alive in the last DEAD_KEPT seconds that the store no
        longer lists (their heartbeats stopped), marked dead: the store forgets a worker one
        lease after its last beat."""
        now = time.time()
        for view in live:
            self._seen_workers[view["id"]] = view
        alive = {v["id"] for v in live}
        dead = []
        for worker_id, view in list(self._seen_workers.items()):
            if worker_id in alive:
                continue
            if now - view["last_heartbeat"] > DEAD_KEPT:
                del self._seen_workers[worker_id]
                continue
            dead.append({**view, "busy": 0, "jobs": [], "stale": True, "dead": True})
        return dead

    async def throughput(self, request: Request) -> Response:
        """Jobs finished per bucket, per queue: with ``window`` (10m, 1h, 24h), succeeded and
        failed apart, from the run statistics the workers keep in the store; without it, all
        finishes per 10 s over the last ten minutes, as this server saw them."""
        queue = request.query_params.get("queue")
        if queue is not None:
            check_queue(queue, "queue")
        if "window" not in request.query_params:
            end, series = self.observer.throughput()
            if queue is not None:
                series = {queue: series[queue]} if queue in series else {}
            return JSONResponse({"bucket_seconds": THROUGHPUT_BUCKET, "end": end, "queues": series})
        window, seconds = parse_window(request.query_params.get("window"))
        found = await self._off_loop(
            lambda: runstats.throughput(self.app.store, seconds, queue=queue)
        )
        return JSONResponse({"window": window, **found})

    # -- statistics kept in the store ---------------------------------------------------------

    async def tasks(self, request: Request) -> Response:
        window, seconds = parse_window(request.query_params.get("window"))
        found = await self._off_loop(lambda: runstats.task_stats(self.app.store, seconds))
        return JSONResponse({"window": window, "tasks": found})

    async def depth(self, request: Request) -> Response:
        name = self._queue_name(request)
        window, seconds = parse_window(request.query_params.get("window"))

        def read() -> Any:
            self._known(name)
            return runstats.depth_series(self.app.store, name, seconds)

        series = await self._off_loop(read)
        return JSONResponse({"window": window, "name": name, **series})

    async def schedules(self, request: Request) -> Response:
        from ..beat import schedule_runs

        def read() -> list[dict[str, Any]]:
            now = time.time()
            return [schedule_view(runs, now) for runs in schedule_runs(self.app, now)]

        return JSONResponse({"schedules": await self._off_loop(read)})

    # -- live updates -------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """Server-sent events: a ``tick`` every EVENT_EVERY seconds with the queues' counts and
        how many workers are alive, for as long as the client listens. A page refreshes what
        it shows on each tick; one that is hidden closes the stream."""

        async def ticks() -> AsyncIterator[str]:
            yield f"retry: {int(EVENT_EVERY * 1000)}\n\n"
            while True:
                try:
                    yield f"event: tick\ndata: {await self._tick()}\n\n"
                except Exception as exc:  # the store is away: say so, and go on trying
                    yield f"event: trouble\ndata: {_ENCODE({'error': type(exc).__name__})}\n\n"
                await asyncio.sleep(EVENT_EVERY)

        return StreamingResponse(
            ticks(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def _tick(self) -> str:
        """The events' tick, read from the store at most once per half tick however many
        dashboards listen: the ones that ask meanwhile share it."""
        async with self._tick_lock:
            at, data = self._last_tick
            if time.monotonic() - at >= EVENT_EVERY / 2:
                queues = await self._off_loop(self._queues)
                workers = await self._off_loop(lambda: len(self.app.store.workers()))
                tick = {"t": time.time(), "queues": queues["queues"], "workers": workers}
                data = _ENCODE(tick)
                self._last_tick = (time.monotonic(), data)
            return data

    # -- health and metrics -------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        await self._off_loop(self.app.store.queues)  # a store that is down answers 503
        warnings = await self._off_loop(self.app.store.warnings)  # e.g. Redis may evict jobs
        return JSONResponse({"status": "ok", "warnings": warnings})

    async def prometheus(self, request: Request) -> Response:
        body = await self._off_loop(self.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)
