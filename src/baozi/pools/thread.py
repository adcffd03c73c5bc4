"""Threads: for jobs that wait on I/O.

A call that is cancelled, or runs past its timeout, fails at once, and :class:`~baozi.Cancelled`
is raised in its thread at the thread's next Python bytecode (see :mod:`._interrupt`); inside a
long C call -- a sleep, a blocking read -- that is when the call returns. Meanwhile its slot is
given to the next call (the pool keeps spare threads for that), and its late result is dropped.

The threads are the pool's own rather than a ``ThreadPoolExecutor``'s: a call is one future and
one queue entry, where wrapping an executor would cost a second future, callbacks and locks.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, ClassVar

from ..errors import Cancelled
from ._interrupt import Interrupts
from .base import DEADLINES, Call, Pool, set_exception_once, set_result_once
from .context import run_with_job

__all__ = ["ThreadPool"]

_Entry = tuple[Call, Future[Any], contextvars.Context] | None


class ThreadPool(Pool):
    kind: ClassVar[str] = "thread"
    default_concurrency: ClassVar[int] = 8

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        # Threads are made on demand and reused. The worker never has more than `concurrency`
        # calls in flight; the spare threads stand in for ones stuck in timed-out calls.
        self._max_threads = 2 * concurrency
        self._queue: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a call
        self._live: set[Future[Any]] = set()  # calls whose futures are not done yet
        self._stuck = 0  # timed out, thread still busy
        self._lock = threading.Lock()
        self._stopped = False
        self._interrupts = Interrupts()

    def submit(self, call: Call) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the pool is closed")
            self._live.add(future)
            if self._idle:
                self._idle -= 1  # an idle thread takes this call
            elif len(self._threads) < self._max_threads:
                thread = threading.Thread(
                    target=self._serve, name=f"baozi-job-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put((call, future, contextvars.copy_context()))
        return future

    def _serve(self) -> None:
        # A thread starts for a call submitted to it, and counts as idle again after each call
        # (submit() claims idle threads, so a call never waits behind a busy one while another
        # thread could be made).
        get, lock = self._queue.get, self._lock
        while True:
            entry = get()
            if entry is None:
                return
            self._run(*entry)
            del entry
            with lock:
                self._idle += 1

    def _run(self, call: Call, future: Future[Any], ctx: contextvars.Context) -> None:
        timeout = call.timeout
        if timeout is not None:  # the clock starts when a thread takes the call
            DEADLINES.at(timeout, lambda f=future, t=timeout: self._time_out(f, t))  # type: ignore[misc]
        try:
            value = self._interrupts.run(future, lambda: ctx.run(run_with_job, call))
        except BaseException as exc:  # noqa: BLE001 -- the call's outcome, whatever it is
            self._settled(future)
            set_exception_once(future, exc)
        else:
            self._settled(future)
            set_result_once(future, value)

    def run_here(
        self,
        call: Call,
        on_done: Callable[[Future[Any]], object],
        on_start: Callable[[Future[Any]], object] = lambda future: None,
    ) -> None:
        """Run ``call`` in the calling thread, as one of the pool's calls (its timeout, its place
        among the calls :meth:`close` waits for, its cancel); ``on_start`` gets its future
        first, ``on_done`` when it is done -- at its deadline, if it runs past it."""
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        future.add_done_callback(on_done)
        on_start(future)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the pool is closed")
            self._live.add(future)
        self._run(call, future, contextvars.copy_context())

    def _settled(self, future: Future[Any]) -> None:
        with self._lock:
            if future in self._live:
                self._live.remove(future)
            else:  # it had timed out (and left _live then): its thread is free again
                self._stuck -= 1

    def _time_out(self, future: Future[Any], timeout: float) -> None:
        self._stop_call(future, TimeoutError(f"the job ran past its {timeout} s timeout"))

    def cancel(self, future: Future[Any]) -> bool:
        return self._stop_call(future, Cancelled("the job was cancelled"))

    def _stop_call(self, future: Future[Any], exc: BaseException) -> bool:
        with self._lock:  # failed under the lock, so _settled sees it done and frees the slot
            if future.done() or future not in self._live:
                return False
            self._stuck += 1
            self._live.discard(future)
            set_exception_once(future, exc)
        self._interrupts.interrupt(future)  # its code stops too (or never starts)
        return True

    @property
    def abandoned(self) -> int:
        return self._stuck

    def close(self) -> None:
        """Wait for the calls in flight -- not for threads stuck in timed-out calls."""
        with self._lock:
            live = list(self._live)
        wait(live)
        self._stop()

    def terminate(self) -> None:
        """Stop now: calls not yet started are dropped (their futures stay pending)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._stopped = True
            threads = len(self._threads)
        for _ in range(threads):
            self._queue.put(None)  # each thread ends after the call it is in, if any
