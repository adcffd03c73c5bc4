"""What every handle on one store shares inside one process, counted so the last to let go
closes it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .._process import current_pid

K = TypeVar("K")
V = TypeVar("V")


class Registry(Generic[K, V]):
    """One ``V`` per key per process: made by ``make`` at the first :meth:`acquire`, handed to
    ``close`` at the last :meth:`release`.

    Keyed by the process too: a forked child gets its own, never its parent's sockets and
    connections (those it inherited are left alone, for the parent to close).
    """

    def __init__(self, make: Callable[[K], V], close: Callable[[V], None]) -> None:
        self._make = make
        self._close = close
        self._held: dict[tuple[int, K], tuple[V, int]] = {}  # the value, its handle count
        self._lock = threading.Lock()
        # A thread of the parent may have held the lock as it forked: the child starts over.
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, key: K) -> V:
        """The value for ``key`` in this process, made now if nobody holds it; one more holder."""
        at = (current_pid(), key)
        with self._lock:
            value, refs = self._held.get(at) or (self._make(key), 0)
            self._held[at] = (value, refs + 1)
            return value

    def release(self, key: K) -> None:
        """One holder fewer; the last one closes the value (outside the lock)."""
        at = (current_pid(), key)
        with self._lock:
            value, refs = self._held[at]
            if refs > 1:
                self._held[at] = (value, refs - 1)
                return
            del self._held[at]
        self._close(value)

    def __contains__(self, key: K) -> bool:
        return (current_pid(), key) in self._held
