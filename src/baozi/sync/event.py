"""Event: ``threading.Event`` for every process on a store."""

from __future__ import annotations

from .._waiting import check_timeout
from ._common import Owner, check_sync_name, shared_owner, wait_for

__all__ = ["Event"]


class Event:
    """A flag every process sees: ``wait()`` holds until someone calls ``set()``.
    ``app.event(name)`` makes one on the app's store; ``Event(name, url=...)`` on any store."""

    _NS = "baozi.event"
    _GENERATIONS = "baozi.event-set"

    def __init__(self, name: str, *, url: str | None = None, _owner: Owner | None = None) -> None:
        self.name = check_sync_name("event", name)
        self._owner = _owner if _owner is not None else shared_owner(url)

    @property
    def url(self) -> str:
        return self._owner.url

    def is_set(self) -> bool:
        return self._owner.store.kv_get(self._NS, self.name) is not None

    def set(self) -> None:
        store = self._owner.store
        store.kv_incr(self._GENERATIONS, self.name, 1)  # so a set() then clear() is still seen
        store.kv_set(self._NS, self.name, b"1")

    def clear(self) -> None:
        self._owner.store.kv_delete(self._NS, self.name)

    def _generation(self) -> bytes | None:
        return self._owner.store.kv_get(self._GENERATIONS, self.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set (True) or ``timeout`` seconds pass (False). A ``set()``
        during the wait counts even if a ``clear()`` follows before this waiter looks."""
        timeout = check_timeout(timeout)
        store = self._owner.store
        if self.is_set():
            return True
        start = self._generation()
        return wait_for(
            store, lambda: (self.is_set() or self._generation() != start, None), timeout
        )

    def __repr__(self) -> str:
        return f"<baozi.Event {self.name!r} on {self._owner.url}>"
