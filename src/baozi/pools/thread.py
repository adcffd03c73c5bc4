"""Threads: for jobs that wait on I/O.

A thread cannot be stopped: a call past its timeout fails at the deadline, its slot is given to the
next call -- the pool keeps spare threads for that -- and its late result is dropped."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, ClassVar

from .base import DEADLINES, Call, Pool, set_exception_once, set_result_once
from .context import run_with_job

__all__ = ["ThreadPool"]


class ThreadPool(Pool):
    kind: ClassVar[str] = "thread"
    default_concurrency: ClassVar[int] = 8

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        # Threads are made on demand and reused. The worker never has more than `concurrency`
        # calls in flight; the spare threads stand in for ones stuck in timed-out calls.
        self._executor = ThreadPoolExecutor(2 * concurrency, thread_name_prefix="baozi-job")
        self._live: set[Future[Any]] = set()  # calls whose futures are not done yet
        self._stuck = 0  # timed out, thread still busy
        self._lock = threading.Lock()

    def submit(self, call: Call) -> Future[Any]:
        outer: Future[Any] = Future()
        outer.set_running_or_notify_cancel()
        ctx = contextvars.copy_context()
        timeout = call.timeout

        def run() -> Any:
            if timeout is not None:  # the clock starts when a thread takes the call
                DEADLINES.at(timeout, lambda: self._time_out(outer, timeout))
            return ctx.run(run_with_job, call)

        inner = self._executor.submit(run)

        def copy(f: Future[Any]) -> None:
            with self._lock:
                if outer.done():  # it had timed out: its thread is free again
                    self._stuck -= 1
                self._live.discard(outer)
            exc = f.exception()
            if exc is not None:
                set_exception_once(outer, exc)
            else:
                set_result_once(outer, f.result())

        with self._lock:
            self._live.add(outer)
        inner.add_done_callback(copy)
        return outer

    def _time_out(self, outer: Future[Any], timeout: float) -> None:
        with self._lock:
            if outer.done() or outer not in self._live:
                return
            self._stuck += 1
            self._live.discard(outer)
        set_exception_once(outer, TimeoutError(f"the job ran past its {timeout} s timeout"))

    @property
    def abandoned(self) -> int:
        return self._stuck

    def close(self) -> None:
        """Wait for the calls in flight -- not for threads stuck in timed-out calls."""
        with self._lock:
            live = list(self._live)
        wait(live)
        self._executor.shutdown(wait=False)

    def terminate(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
