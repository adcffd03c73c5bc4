"""Threads: for jobs that wait on I/O. A timed-out thread cannot be stopped; its result is dropped."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from .base import Call, Deadlines, Pool, set_exception_once, set_result_once
from .context import run_with_job

__all__ = ["ThreadPool"]


class ThreadPool(Pool):
    kind: ClassVar[str] = "thread"
    default_concurrency: ClassVar[int] = 8

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        # Threads are made on demand up to the bound, and reused.
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="baozi-job")
        self._deadlines = Deadlines()

    def submit(self, call: Call) -> Future[Any]:
        outer: Future[Any] = Future()
        outer.set_running_or_notify_cancel()
        ctx = contextvars.copy_context()
        timeout = call.timeout

        def run() -> Any:
            if timeout is not None:  # the clock starts when a thread takes the call
                message = f"the job ran past its {timeout} s timeout"
                self._deadlines.at(
                    timeout, lambda: set_exception_once(outer, TimeoutError(message))
                )
            return ctx.run(run_with_job, call)

        inner = self._executor.submit(run)

        def copy(f: Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                set_exception_once(outer, exc)
            else:
                set_result_once(outer, f.result())

        inner.add_done_callback(copy)
        return outer

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def terminate(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
