"""Stopping a call that runs in a thread: :class:`~baozi.errors.Cancelled` raised in that thread
at its next Python bytecode (CPython's ``PyThreadState_SetAsyncExc``).

A thread cannot be stopped from outside any other way. The exception is sent only while the
thread is inside the call, and at most once per call; one that lands just as the call returns
is caught by :meth:`Interrupts.run`, so it never reaches the code that runs calls.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..errors import Cancelled

__all__ = ["Interrupts"]

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int


def _clear_async_exc(ident: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


class Interrupts:
    """Which thread runs which call (keyed by the call's future), and the means to raise
    :class:`Cancelled` in it. The future is failed first, by whoever stops the call; then
    :meth:`interrupt` stops the code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside: dict[Future[Any], int] = {}  # future -> the thread running its call
        self._sent: set[Future[Any]] = set()  # their threads have been sent the exception

    def run(self, future: Future[Any], fn: Callable[[], Any]) -> Any:
        """``fn()`` in this thread, interruptible through ``future``. Raises what ``fn`` raises,
        or :class:`Cancelled` when interrupted -- at once, without calling ``fn``, when the
        future is done already (stopped before it started)."""
        ident = threading.get_ident()
        with self._lock:
            if future.done():
                raise Cancelled
            self._inside[future] = ident
        try:
            try:
                return fn()
            finally:
                with self._lock:
                    del self._inside[future]
                    if future in self._sent:  # sent, maybe not raised yet: not after this
                        self._sent.discard(future)
                        _clear_async_exc(ident)
        except Cancelled:  # it may land anywhere up to the clearing above: tidy up here too
            with self._lock:
                self._inside.pop(future, None)
                self._sent.discard(future)
            raise

    def interrupt(self, future: Future[Any]) -> bool:
        """Raise :class:`Cancelled` in the thread running ``future``'s call (call it once the
        future is done: a call not started yet then never starts). False when no thread is in
        the call, or it was sent already."""
        with self._lock:
            ident = self._inside.get(future)
            if ident is None or future in self._sent:
                return False
            self._sent.add(future)
            # CPython raises the class in the thread (an instance is refused there).
            return bool(_set_async_exc(ident, Cancelled) == 1)
