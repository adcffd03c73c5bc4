"""Coroutines on one event loop (uvloop's where it is installed): for many slow connections. Plain
functions run in threads so they never block the loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from ..errors import Cancelled
from ..jobs import _current
from ._interrupt import Interrupts
from .base import Call, Pool
from .context import run_with_job

__all__ = ["AsyncPool"]


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (the same asyncio, with less CPU per socket
    event, which is most of what a job that talks to the network costs), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class AsyncPool(Pool):
    kind: ClassVar[str] = "async"
    default_concurrency: ClassVar[int] = 100

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        self._loop = _new_loop()
        # Threads for plain functions, made on demand: one per slot, so none waits for a thread,
        # and as many spares to stand in for threads stuck in timed-out calls.
        self._threads = ThreadPoolExecutor(2 * concurrency, thread_name_prefix="baozi-sync")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stops: dict[Future[Any], Future[None]] = {}  # a call's future -> its stop signal
        self._running: dict[Future[None], asyncio.Task[Any]] = {}  # (on the loop's thread)
        self._interrupts = Interrupts()
        self._lock = threading.Lock()
        self._inbox: list[tuple[Call, Future[None], Future[Any]]] = []  # submitted, not started
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, name="baozi-async-loop", daemon=True)
        self._thread.start()
        self._started.wait()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()

    def submit(self, call: Call) -> Future[Any]:
        stop: Future[None] = Future()  # done once the call is cancelled
        future: Future[Any] = Future()
        with self._lock:
            self._stops[future] = stop
            self._inbox.append((call, stop, future))
            wake = len(self._inbox) == 1
        # One wake-up of the loop's thread per batch of calls, not per call (each costs a
        # write to the loop's self-pipe, and the loop a turn to read it): a worker that takes a
        # thousand jobs in one store call hands them over in one go.
        if wake:
            self._loop.call_soon_threadsafe(self._start_inbox)
        future.add_done_callback(self._forget)
        return future

    def _start_inbox(self) -> None:
        """On the loop: a task for each call submitted since the last turn."""
        with self._lock:
            calls, self._inbox = self._inbox, []
        for call, stop, future in calls:
            if future.cancelled():  # Future.cancel before it started
                continue
            task = self._loop.create_task(self._run(call, stop))
            # Chained as run_coroutine_threadsafe chains them: the task's outcome becomes the
            # future's, and cancelling the future cancels the task.
            task.add_done_callback(functools.partial(_settle, future))
            future.add_done_callback(functools.partial(self._cancel_if_cancelled, task))

    def _cancel_if_cancelled(self, task: asyncio.Task[Any], future: Future[Any]) -> None:
        if future.cancelled():
            self._loop.call_soon_threadsafe(task.cancel)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._stops.pop(future, None)

    def cancel(self, future: Future[Any]) -> bool:
        """Cancel the call's task (``Cancelled`` is what its future then raises); a plain
        function running in one of the pool's threads is interrupted there."""
        with self._lock:
            stop = self._stops.get(future)
            if stop is None or future.done() or stop.done():
                return False  # (not this pool's, done, or cancelled already)
            stop.set_result(None)
        self._interrupts.interrupt(stop)
        self._loop.call_soon_threadsafe(self._cancel_task, stop)
        return True

    def _cancel_task(self, stop: Future[None]) -> None:
        task = self._running.get(stop)
        if task is not None:
            task.cancel()

    async def _run(self, call: Call, stop: Future[None]) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._running[stop] = task
        try:
            if stop.done():  # cancelled before this task first ran
                raise asyncio.CancelledError
            if asyncio.iscoroutinefunction(call.fn):
                _current.set(call if call.job_id else None)  # this task's own context
                work: Any = call.fn(*call.args, **call.kwargs)
            else:
                ctx = contextvars.copy_context()
                plain = functools.partial(run_with_job, call)
                work = self._loop.run_in_executor(
                    self._threads, ctx.run, self._interrupts.run, stop, plain
                )
            if call.timeout is None:
                return await work
            try:
                return await asyncio.wait_for(work, call.timeout)
            except TimeoutError:
                self._interrupts.interrupt(stop)  # a plain function's thread stops too
                raise TimeoutError(f"the job ran past its {call.timeout} s timeout") from None
        except asyncio.CancelledError:
            if stop.done():  # cancel(), not terminate()
                raise Cancelled("the job was cancelled") from None
            raise
        finally:
            self._tasks.discard(task)
            self._running.pop(stop, None)

    def close(self) -> None:
        async def drain() -> None:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            # As asyncio.run does before it closes a loop: async generators the tasks left
            # suspended get to run their cleanup (close a client, a pool...).
            await self._loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(drain(), self._loop).result()
        self._stop()
        self._threads.shutdown(wait=True)

    def terminate(self) -> None:
        def cancel_all() -> None:
            for task in list(self._tasks):
                task.cancel()

        self._loop.call_soon_threadsafe(cancel_all)
        self._stop()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


def _settle(future: Future[Any], task: asyncio.Task[Any]) -> None:
    """Give ``task``'s outcome to the call's ``future``, as run_coroutine_threadsafe does."""
    if task.cancelled():
        future.cancel()
    if not future.set_running_or_notify_cancel():
        return  # cancelled, by the task or by Future.cancel
    if (exc := task.exception()) is not None:
        future.set_exception(exc)
    else:
        future.set_result(task.result())
