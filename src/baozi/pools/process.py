"""Processes: for CPU-bound jobs. Each child runs one call at a time; a child that dies mid-call
fails that call (WorkerLost) and is replaced; a call past its timeout, or cancelled, has its child
killed. A child is also replaced after ``max_tasks_per_child`` calls, or after a call during which
its memory (peak resident set) passed ``max_memory_per_child`` MB."""

from __future__ import annotations

import collections
import importlib
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any, ClassVar

from ..errors import Cancelled
from .base import Call, Pool, RemoteError, WorkerLost, set_exception_once, set_result_once

__all__ = ["ChildError", "ProcessPool"]


class ChildError(RemoteError):
    """An exception raised in a child process, carried back as its type name, message and
    traceback text (the exception object itself may not survive the trip)."""


def _revive(detail: tuple[str, str, str], pickled: bytes | None) -> BaseException:
    """The child's exception, rebuilt if it can be, carrying the child's traceback text."""
    exc: BaseException = ChildError(*detail)
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:  # e.g. an exception class whose __init__ takes other arguments
            pass
    try:
        exc.__baozi_traceback__ = detail[2]  # type: ignore[attr-defined]
    except Exception:
        pass
    return exc


def _import(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)  # a Task object wraps the function


def _leave_with_parent() -> None:
    """End this child at once when the worker that owns it dies (SIGKILL, a crash). Its job is no
    longer anyone's: the lease runs out and it runs again elsewhere, so finishing it here would
    only run it twice at the same time, and its answer would have no one to go to."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # the pipe the worker holds closes when the worker dies
        os._exit(0)

    threading.Thread(target=watch, name="baozi-parent-watch", daemon=True).start()


def _peak_kb() -> int:
    """This process's peak resident set so far, in KiB (Linux reports ``ru_maxrss`` so)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


def _send(conn: Connection, message: tuple[str, Any, Any, int]) -> None:
    """Send to the worker; a worker that is gone is no error of this child's: leave quietly."""
    try:
        conn.send(message)
    except OSError:  # BrokenPipeError, ConnectionResetError: the worker died
        os._exit(0)


def _child_main(conn: Connection) -> None:
    from .context import run_with_job

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when children stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _leave_with_parent()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the worker closed the pipe, or died
            return
        if msg is None:
            return
        module, qualname, call = msg
        try:
            call.fn = _import(module, qualname)
            if call.timeout is not None:  # the clock starts now, not while this process booted
                _send(conn, ("started", None, None, 0))
            result = run_with_job(call)
        except BaseException as exc:  # noqa: BLE001 -- everything goes back to the parent
            detail = (type(exc).__name__, str(exc), traceback.format_exc())
            try:  # pickled apart, so an exception that cannot be rebuilt still sends its text
                pickled: bytes | None = pickle.dumps(exc)
            except Exception:
                pickled = None
            _send(conn, ("error", detail, pickled, _peak_kb()))
        else:
            try:
                conn.send(("ok", result, None, _peak_kb()))
            except OSError:
                os._exit(0)  # the worker died while the job ran
            except Exception as exc:
                detail = (type(exc).__name__, f"the job's result cannot be sent back: {exc}", "")
                _send(conn, ("error", detail, None, _peak_kb()))


_BOOT_ALLOWANCE = 30.0
"""Seconds a call's deadline allows for its child to start and import the task's module."""


class _Child:
    def __init__(self, ctx: Any) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(child_conn,), daemon=True)
        self.process.start()
        child_conn.close()
        self.future: Future[Any] | None = None
        self.deadline: float | None = None
        self.timeout: float | None = None
        self.cancelled = False
        self.calls = 0
        self.peak_kb = 0  # its peak memory, as of its last call's end

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class ProcessPool(Pool):
    kind: ClassVar[str] = "process"
    default_concurrency: ClassVar[int] = os.cpu_count() or 1
    options: ClassVar[frozenset[str]] = frozenset({"max_tasks_per_child", "max_memory_per_child"})

    def __init__(
        self,
        concurrency: int,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: float | None = None,
    ) -> None:
        super().__init__(concurrency)
        for name, limit in (
            ("max_tasks_per_child", max_tasks_per_child),
            ("max_memory_per_child", max_memory_per_child),
        ):
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
            ):
                raise ValueError(f"{name} must be a positive number or None, not {limit!r}")
        self._max_kb = None if max_memory_per_child is None else max_memory_per_child * 1024
        method = "forkserver" if sys.platform.startswith("linux") else "spawn"
        self._ctx = multiprocessing.get_context(method)
        self._max_calls = max_tasks_per_child
        self._idle: list[_Child] = []
        self._busy: dict[Connection, _Child] = {}
        self._pending: collections.deque[tuple[Call, Future[Any]]] = collections.deque()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._stopping = False
        self._collector = threading.Thread(
            target=self._collect, name="baozi-process-pool", daemon=True
        )
        self._collector.start()

    def submit(self, call: Call) -> Future[Any]:
        module, qualname = (
            getattr(call.fn, "__module__", None),
            getattr(call.fn, "__qualname__", ""),
        )
        if not module or "<" in qualname:
            raise ValueError(
                f"the process pool runs only functions defined at the top level of a module, "
                f"not {call.fn!r}"
            )
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._pending.append((call, future))
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Hand pending calls to idle children, starting children up to the bound. Holds the lock."""
        while self._pending and not self._stopping:
            if self._idle:
                child = self._idle.pop()
            elif len(self._busy) + len(self._idle) < self.concurrency:
                child = _Child(self._ctx)
            else:
                return
            call, future = self._pending.popleft()
            fn = call.fn
            call.fn = None  # type: ignore[assignment]  # the child imports it by name
            try:
                child.conn.send((fn.__module__, fn.__qualname__, call))
            except OSError:  # the child died while idle: replace it, keep the call
                call.fn = fn
                child.kill()
                self._pending.appendleft((call, future))
                continue
            except Exception as exc:  # arguments that do not pickle
                set_exception_once(future, exc)
                self._idle.append(child)
                continue
            finally:
                call.fn = fn
            child.future = future
            child.timeout = call.timeout
            # Until the child says it started the call (a new child first boots and imports),
            # the deadline has room for that; then it is the call's own timeout.
            if call.timeout is not None:
                child.deadline = time.monotonic() + call.timeout + _BOOT_ALLOWANCE
            child.calls += 1
            self._busy[child.conn] = child
        self._wake_w.send(None)

    def _collect(self) -> None:
        while True:
            with self._lock:
                busy = list(self._busy.values())
                if self._stopping and not busy:
                    return
            deadlines = [c.deadline for c in busy if c.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait(
                [self._wake_r] + [c.conn for c in busy] + [c.process.sentinel for c in busy],
                timeout,
            )
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv()
            with self._lock:
                for child in busy:
                    self._check(child, ready)
                self._dispatch()
                self._settled.notify_all()

    def _check(self, child: _Child, ready: list[Any]) -> None:
        """Settle a busy child's call if it answered, died or ran out of time. Holds the lock."""
        future = child.future
        assert future is not None
        if child.conn in ready:
            try:
                status, value, pickled, child.peak_kb = child.conn.recv()
            except (EOFError, OSError):
                status = "died"
            except Exception as exc:  # a result that cannot be rebuilt here
                status, pickled = "error", None
                value = (type(exc).__name__, f"the job's result could not be read back: {exc}", "")
            if status == "started":
                assert child.timeout is not None
                if not child.cancelled:  # (a cancelled one keeps its deadline: now)
                    child.deadline = time.monotonic() + child.timeout
                return
            if status == "ok":
                set_result_once(future, value)
            elif status == "error":
                set_exception_once(future, _revive(value, pickled))
            if status != "died":
                self._free(child)
                return
        if child.process.sentinel in ready or not child.process.is_alive():
            code = child.process.exitcode
            set_exception_once(
                future, WorkerLost(f"the process running the job died (exit code {code})")
            )
            self._retire(child)
        elif child.deadline is not None and time.monotonic() >= child.deadline:
            child.kill()
            set_exception_once(
                future, TimeoutError("the job ran past its timeout and its process was killed")
            )
            self._retire(child)

    def cancel(self, future: Future[Any]) -> bool:
        """Fail the call now and have the collector kill its child, as at a deadline (a call
        still waiting for a child is dropped); the next call gets a new child."""
        with self._lock:
            if future.done():
                return False
            for n, (_, waiting) in enumerate(self._pending):
                if waiting is future:
                    del self._pending[n]
                    break
            else:
                child = next((c for c in self._busy.values() if c.future is future), None)
                if child is None:
                    return False
                child.deadline, child.cancelled = 0.0, True  # the collector kills it next
            set_exception_once(future, Cancelled("the job was cancelled and its process killed"))
            self._wake_w.send(None)  # (under the lock: dispatch writes to this pipe too)
        return True

    def _free(self, child: _Child) -> None:
        del self._busy[child.conn]
        child.future, child.deadline, child.cancelled = None, None, False
        if (self._max_calls is not None and child.calls >= self._max_calls) or (
            self._max_kb is not None and child.peak_kb > self._max_kb
        ):
            child.conn.send(None)  # replaced lazily by the next dispatch
            child.process.join(5)
            child.kill()
        else:
            self._idle.append(child)

    def _retire(self, child: _Child) -> None:
        self._busy.pop(child.conn, None)
        child.kill()

    def close(self) -> None:
        with self._lock:
            self._settled.wait_for(lambda: not self._pending and not self._busy)
            self._stopping = True
            idle, self._idle = self._idle, []
        self._wake_w.send(None)
        self._collector.join(10)
        for child in idle:
            try:
                child.conn.send(None)
            except OSError:
                pass
            child.process.join(5)
            child.kill()
        self._close_pipe()

    def terminate(self) -> None:
        with self._lock:
            self._stopping = True
            children = list(self._idle) + list(self._busy.values())
            self._idle, self._busy = [], {}
            self._pending.clear()
        self._wake_w.send(None)
        self._collector.join(10)
        for child in children:
            child.kill()
        self._close_pipe()

    def _close_pipe(self) -> None:
        self._wake_r.close()
        self._wake_w.close()
