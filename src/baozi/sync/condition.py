"""Condition: ``threading.Condition`` for every process on a store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._waiting import check_timeout
from ._common import Owner, check_sync_name, shared_owner, wait_for
from .lock import Lock

__all__ = ["Condition"]


class Condition:
    """``threading.Condition`` across processes, over a store lock (its own unless given one, on
    the same store).

    Each waiter puts a ticket in a queue of the store and waits for it to leave; ``notify(n)``
    takes the first ``n`` tickets, so exactly ``n`` waiters go through. A waiter that dies while
    waiting leaves its ticket behind, and a later notify spends one wake-up on it.
    ``app.condition(name)`` makes one on the app's store; ``Condition(name, url=...)`` on any
    store."""

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        lock: Lock | None = None,
        ttl: float = 30.0,
        _owner: Owner | None = None,
    ) -> None:
        self.name = check_sync_name("condition", name)
        if _owner is None:
            _owner = lock._owner if lock is not None and url is None else shared_owner(url)
        self._owner = _owner
        if lock is not None and lock.url != _owner.url:
            raise ValueError(
                f"condition {name!r} is on {_owner.url}, its lock {lock.name!r} on {lock.url}: "
                f"give a lock on the same store"
            )
        self._lock = lock if lock is not None else Lock(f"cond:{name}", ttl=ttl, _owner=_owner)
        self._queue = f"baozi.cond.{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify (True) or ``timeout`` seconds (False), and take the
        lock again before returning."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        timeout = check_timeout(timeout)
        store = self._owner.store
        (ticket,) = store.push(self._queue, [b""])
        depth = self._lock._release_save()
        try:
            try:
                notified = wait_for(
                    store, lambda: (store.rank(self._queue, ticket) is None, None), timeout
                )
            except BaseException:
                store.discard(self._queue, [ticket])  # no wake-up may be spent on it
                raise
            if not notified and not store.discard(self._queue, [ticket]):
                notified = True  # notified as it timed out: the wake-up is not lost
        finally:
            self._lock._acquire_restore(depth)
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Wait until ``predicate()`` is true (checked with the lock held); return its last value."""
        timeout = check_timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            wait = None
            if end is not None:
                wait = end - time.monotonic()
                if wait <= 0:
                    break
            self.wait(wait)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Let ``n`` waiters through (fewer if fewer wait)."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, not {n!r}")
        if n:
            self._owner.store.pop(self._queue, n)

    def notify_all(self) -> None:
        """Let every waiter through."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        store = self._owner.store
        while store.pop(self._queue, 10_000):
            pass

    def __repr__(self) -> str:
        return f"<baozi.Condition {self.name!r} on {self._owner.url}>"
