"""Group commit for ``POST /api/jobs``: the orders that arrive while the store is busy with the
last batch are filed together, in one store transaction per queue, with their places
(``Store.enqueue_placed``); each order is answered only once its batch is stored.

An order alone is filed at once, as a batch of one: batching adds no wait, it only gathers what
queued up behind a store call anyway. One bad order (a wrong argument, an unstorable value) is
refused alone; the others of its batch are filed. A batch that would overfill a bounded queue is
filed order by order, so that what fits is stored and the rest is answered 429. A batch whose
store call is lost (the store went away: it may have filed it) is never filed again: each of its
orders is answered with the error (503), and only its client may try again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from ..app import _UNDECLARED, _call_of, _check_enqueue
from ..backends.base import NewJob
from ._wire import ApiError, EnqueueRequest

if TYPE_CHECKING:
    from .api import Api

__all__ = ["Intake"]

T = TypeVar("T")

MAX_BATCH = 500
"""The most orders filed in one batch."""

Outcome = tuple[int, dict[str, Any]] | BaseException
"""An order's answer: (status, view), or what to raise in its request."""


class _Batches(Generic[T]):
    """Requests of one server process gathered into batches: each batch is handled by one call
    in a worker thread, and the next gathers whatever arrived meanwhile. A request alone is
    handled at once, as a batch of one."""

    def __init__(self, handle: Callable[[list[T]], list[Outcome]]) -> None:
        self.handle = handle
        self.pending: list[tuple[T, asyncio.Future[Outcome]]] = []
        self.running = False

    async def submit(self, item: T) -> tuple[int, Any]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        self.pending.append((item, done))
        if not self.running:
            self.running = True
            loop.create_task(self._run())
        outcome = await done
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _run(self) -> None:
        try:
            while self.pending:
                batch = self.pending[:MAX_BATCH]
                del self.pending[:MAX_BATCH]
                try:
                    outcomes = await run_in_threadpool(self.handle, [item for item, _ in batch])
                except Exception as exc:  # the store failed the whole batch
                    outcomes = [exc] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if not done.done():  # its client may have gone
                        done.set_result(outcome)
        finally:
            self.running = False


class Intake:
    """Gathers concurrent enqueue orders, and reads of jobs, of one server process into
    batches (see the module)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._orders = _Batches(self.file)
        self._reads = _Batches(self.read)

    async def submit(self, order: EnqueueRequest, root: str) -> tuple[int, dict[str, Any]]:
        """File the order with those around it; its status (202, or 200 when deduplicated) and
        its view, or the ApiError or store error its own filing raised."""
        return await self._orders.submit((order, root))

    async def look_up(self, job_id: str, root: str) -> dict[str, Any]:
        """The job's view, read with the other reads of the moment (one ``job_snapshots``);
        ApiError(404) when there is no such job."""
        _, view = await self._reads.submit((job_id, root))
        return view  # type: ignore[no-any-return]

    def read(self, wanted: list[tuple[str, str]]) -> list[Outcome]:
        """Read a batch of jobs (in a worker thread) with one call to the store."""
        api = self.api
        try:
            places = api.app.store.job_snapshots([job_id for job_id, _ in wanted])
        except (ValueError, OverflowError, UnicodeError):  # an id no store could hold: alone
            places = {}
        out: list[Outcome] = []
        for job_id, root in wanted:
            place = places.get(job_id)
            if place is None:
                out.append(self._guard(api._placed_view, job_id, root))
            else:
                out.append((200, api._view(place, root=root)))
        return out

    def file(self, orders: list[tuple[EnqueueRequest, str]]) -> list[Outcome]:
        """File a batch (in a worker thread): plain orders together, the others one by one."""
        api = self.api
        app = api.app
        outcomes: list[Outcome | None] = [None] * len(orders)
        groups: dict[str, list[tuple[int, NewJob]]] = {}
        alone: list[int] = []
        for k, (order, _) in enumerate(orders):
            try:
                job = self.plain(order)
            except ApiError as exc:
                outcomes[k] = exc
                continue
            if job is None:
                alone.append(k)
            else:
                groups.setdefault(job[0], []).append((k, job[1]))
        for queue, members in groups.items():
            try:
                filed = app._file_placed([j for _, j in members], queue)
            except (ConnectionError, TimeoutError) as exc:
                # The store went away (StoreUnavailable is a ConnectionError): the batch may
                # have been filed with its reply lost, so it is not filed again here; each of
                # its orders is told, and its client may try again.
                for k, _ in members:
                    outcomes[k] = exc
                continue
            except Exception:  # e.g. Full: some may fit; each is tried alone, answered for itself
                alone.extend(k for k, _ in members)
                continue
            for (k, _), (job_id, place) in zip(members, filed, strict=True):
                root = orders[k][1]
                if place is None:  # gone already (forgotten, or expired): read it as one would
                    outcomes[k] = self._guard(api._placed_view, job_id, root)
                else:
                    view = api._view(place, root=root)
                    view["deduplicated"] = False
                    outcomes[k] = (202, view)
        for k in sorted(alone):
            order, root = orders[k]
            outcomes[k] = self._guard(api._enqueue_view, order, root)
        return [o if o is not None else RuntimeError("order not filed") for o in outcomes]

    @staticmethod
    def _guard(fn: Callable[..., Any], *args: Any) -> Outcome:
        try:
            result = fn(*args)
        except Exception as exc:
            return exc
        return result if isinstance(result, tuple) else (200, result)

    def plain(self, order: EnqueueRequest) -> tuple[str, NewJob] | None:
        """The order's queue and job, when it can be filed with others (no unique key, no
        dependencies, no delay, not to the front, no enqueue middleware, a FIFO queue); None
        for one filed alone. ApiError for an order refused outright."""
        app = self.api.app
        task = app.tasks.get(order.task)
        if task is None:
            raise self.api._unknown_task(order.task)
        if (
            order.unique_key is not None
            or order.depends_on
            or order.delay is not None
            or order.front
            or task.unique
            or app._enqueue_hooks
        ):
            return None
        queue = order.queue or task.queue
        if (app.queues.get(queue) or _UNDECLARED).order != "fifo":
            return None
        priority = task.priority if order.priority is None else order.priority
        if priority and "priority" in app.store.unsupported:
            return None  # refused alone, as the store says
        args, kwargs = tuple(order.args), order.kwargs
        try:
            _check_enqueue([(args, kwargs)], queue, priority, None, None)
            task._check_call(args, kwargs)
            payload = app.codec.dumps(_call_of(args, kwargs, {}))
        except TypeError as exc:  # an argument the app's serializer refuses
            raise ApiError(422, f"args: {exc}", field="args") from exc
        except RecursionError as exc:
            raise ApiError(422, "args: nested too deeply to store", field="args") from exc
        except ValueError as exc:
            raise ApiError(422, str(exc), field="body") from exc
        return queue, NewJob(task.name, payload, priority)
