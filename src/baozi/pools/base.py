"""The pool contract: where a worker's jobs actually run (threads, processes, coroutines).

A pool looks like a ``concurrent.futures`` executor with a fixed number of slots:

* :meth:`Pool.submit` starts a :class:`Call` -- at once if a slot is free, else as soon as one is --
  and returns a ``concurrent.futures.Future`` for its return value or exception. When the call has
  a ``timeout``, the future fails with ``TimeoutError`` at the deadline: process and async pools
  also stop the call then; a thread cannot be stopped, so its late result is simply dropped.
* :meth:`Pool.close` lets every submitted call finish, then frees the pool's resources.
* An exception raised in another process arrives as itself when it can be rebuilt there, else
  as a :class:`RemoteError` with its type name and traceback text.
* :meth:`Pool.cancel` stops one running call: its future fails with :class:`~baozi.Cancelled`
  at once, and its code stops -- the process pool kills the call's child and starts another, the
  async pool cancels the coroutine, the gevent pool kills the greenlet, and the thread pool
  raises ``Cancelled`` in the call's thread at its next Python bytecode.
* :meth:`Pool.terminate` stops at once. Futures of calls that did not finish are left pending --
  the worker puts their jobs back in their queues, so nothing is lost.

The worker never branches on the pool's kind. A pool runs ``current_job()`` for each call.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._process import current_pid

__all__ = ["Call", "DEADLINES", "Pool", "RemoteError", "WorkerLost"]


class RemoteError(Exception):
    """An exception raised where a call ran (another process), carried back as its type name,
    message and traceback text when the exception object itself could not make the trip."""

    def __init__(self, exc_type: str, message: str, tb: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.tb = tb


class WorkerLost(Exception):
    """The process running the call died before it returned (a crash, os._exit, the OOM killer)."""


@dataclass(slots=True)
class Call:
    """One run of a task function, with what a pool needs to run it anywhere."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None = None
    job_id: str = ""
    owner: str = ""
    url: str = ""
    """The store URL, so a child process can attach ``current_job()`` to the job."""
    serializer: str = "json"
    context: dict[str, Any] = field(default_factory=dict)


class Pool(ABC):
    """A fixed number of slots that run calls. See the module docstring for the contract."""

    kind: ClassVar[str]
    default_concurrency: ClassVar[int]
    options: ClassVar[frozenset[str]] = frozenset()
    """The keyword options the pool takes beside ``concurrency`` (e.g. ``max_tasks_per_child``)."""

    def __init__(self, concurrency: int) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, not {concurrency!r}")
        self.concurrency = concurrency

    @abstractmethod
    def submit(self, call: Call) -> Future[Any]:
        """Start ``call`` in a free slot (or the next one to free up); return its future."""

    def run_here(
        self,
        call: Call,
        on_done: Callable[[Future[Any]], object],
        on_start: Callable[[Future[Any]], object] = lambda future: None,
    ) -> None:
        """Run ``call`` -- in the calling thread where the pool can (threads) -- passing its
        future to ``on_start`` before it runs (so it can be cancelled) and to ``on_done`` when
        it is done or past its deadline. A pool whose calls run only in its own workers
        (processes, coroutines) submits it there."""
        future = self.submit(call)
        on_start(future)
        future.add_done_callback(on_done)

    @abstractmethod
    def cancel(self, future: Future[Any]) -> bool:
        """Stop the call whose future this is (see the module docstring): the future fails with
        ``Cancelled`` now. False when the future is done already, or is not this pool's."""

    @abstractmethod
    def close(self) -> None:
        """Finish every submitted call, then free the pool's threads or processes. Blocks."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop now; calls still running are abandoned (their futures stay pending)."""

    @property
    def abandoned(self) -> int:
        """Calls given up on (past their timeout) that still hold a thread that cannot be
        stopped. A process that wants to exit must not wait for those threads."""
        return 0


class Deadlines:
    """One thread per process that calls callbacks at their deadlines (:data:`DEADLINES`)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._cond = threading.Condition()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def at(self, seconds: float, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` ``seconds`` from now (it should do nothing if it is too late)."""
        with self._cond:
            if self._pid != current_pid():  # forked: the parent's deadlines are not ours
                self._heap.clear()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._ids), callback))
            if self._thread is None or self._pid != current_pid():  # none yet, or forked
                self._pid = current_pid()
                self._thread = threading.Thread(
                    target=self._run, name="baozi-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # a callback must never take the thread down
                pass


DEADLINES = Deadlines()
"""The process's deadline thread, shared by every pool."""


def set_exception_once(future: Future[Any], exc: BaseException) -> None:
    """Fail ``future`` unless it is already done (a deadline and a result may race)."""
    try:
        future.set_exception(exc)
    except Exception:  # InvalidStateError: it finished first
        pass


def set_result_once(future: Future[Any], value: Any) -> None:
    try:
        future.set_result(value)
    except Exception:
        pass
