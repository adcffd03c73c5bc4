"""The JSON endpoints: enqueue a job and follow it, list jobs, queues and workers, act on them.

Every store call runs in a worker thread (``run_in_threadpool``), never on the event loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .._eta import RATE_FINISHES, Estimator
from ..app import App
from ..backends.base import JobPlace, JobRecord
from ..errors import Full, JobNotFound
from ..jobs import FINISHED
from ..snapshot import snapshot_of
from ._graph import job_graph
from ._intake import Intake
from ._wire import (
    DEQUE_PREFIX,
    MAX_BODY,
    ApiError,
    EnqueueRequest,
    check_queue,
    job_view,
    parse_enqueue,
    parse_listing,
    worker_view,
)
from .metrics import CONTENT_TYPE, Metrics, busy_slots
from .stats import THROUGHPUT_BUCKET, Observer

__all__ = ["Api"]

T = TypeVar("T")
_PAUSE_METHODS = ("pause", "resume", "is_paused")


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


async def _read_body(request: Request) -> bytes:
    _check_json(request.headers.get("content-type", ""))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
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
        self.pausable = all(callable(getattr(app, m, None)) for m in _PAUSE_METHODS)
        """Whether this App can pause queues (``App.pause``/``resume``/``is_paused``)."""

    def routes(self) -> list[Route]:
        return [
            Route("/api/jobs", self._jobs, methods=["GET", "POST"]),
            Route("/api/jobs/{job_id}", self._job, methods=["GET", "DELETE"]),
            Route("/api/jobs/{job_id}/retry", self.retry, methods=["POST"]),
            Route("/api/jobs/{job_id}/forget", self.forget, methods=["POST"]),
            Route("/api/jobs/{job_id}/graph", self.graph, methods=["GET"]),
            Route("/api/queues", self.queues, methods=["GET"]),
            # The name in the query: for names a browser rewrites in a path ("." and "..").
            Route("/api/queues/pause", self.pause, methods=["POST"]),
            Route("/api/queues/resume", self.resume, methods=["POST"]),
            # A queue name may hold "/" (sent as %2F): the name runs up to the last segment.
            Route("/api/queues/{name:anything}/pause", self.pause, methods=["POST"]),
            Route("/api/queues/{name:anything}/resume", self.resume, methods=["POST"]),
            Route("/api/queues/{name:anything}", self.delete_queue, methods=["DELETE"]),
            Route("/api/workers", self.workers, methods=["GET"]),
            Route("/api/throughput", self.throughput, methods=["GET"]),
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

        def listing() -> dict[str, Any]:
            store = self.app.store
            recs = store.records(query.queue, query.status, query.limit + 1, query.offset)
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
                "offset": query.offset,
                "next_offset": query.offset + query.limit if more else None,
            }

        return JSONResponse(await self._off_loop(listing))

    # -- queues and workers -------------------------------------------------------------------

    async def queues(self, request: Request) -> Response:
        return JSONResponse(await self._off_loop(self._queues))

    def _queues(self) -> dict[str, Any]:
        store = self.app.store
        names = {n for n in store.queues() if not n.startswith(DEQUE_PREFIX)} | set(self.app.queues)
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
        def read() -> list[Any]:
            store = self.app.store
            found = store.workers()
            held = busy_slots(store, found)  # current, where a heartbeat is up to a lease old
            return [worker_view(w, busy=held.get(w.id, 0)) for w in found]

        views = sorted(await self._off_loop(read), key=lambda v: (v["host"], v["pid"], v["id"]))
        return JSONResponse({"workers": views})

    async def throughput(self, request: Request) -> Response:
        end, series = self.observer.throughput()
        return JSONResponse({"bucket_seconds": THROUGHPUT_BUCKET, "end": end, "queues": series})

    # -- health and metrics -------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        await self._off_loop(self.app.store.queues)  # a store that is down answers 503
        warnings = await self._off_loop(self.app.store.warnings)  # e.g. Redis may evict jobs
        return JSONResponse({"status": "ok", "warnings": warnings})

    async def prometheus(self, request: Request) -> Response:
        body = await self._off_loop(self.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)
