"""Semaphore: ``threading.BoundedSemaphore`` for every process on a store."""

from __future__ import annotations

import os
import threading
import uuid

from .._renewer import Slots, renewer
from .._waiting import check_timeout
from ._common import Owner, check_sync_name, check_ttl, process_token, shared_owner, wait_for

__all__ = ["Semaphore"]

# The slots this process holds, by (store URL, semaphore name): a slot's token and its renewal
# group (which holds the store it was taken in). Any handle on the semaphore may release them.
_held: dict[tuple[str, str], list[tuple[str, Slots]]] = {}
_held_lock = threading.Lock()


def _forked() -> None:
    # A forked child holds none of its parent's slots; a thread may have held _held_lock.
    global _held_lock
    _held.clear()
    _held_lock = threading.Lock()


os.register_at_fork(after_in_child=_forked)


class Semaphore:
    """A bounded semaphore shared by every process on the store: at most ``value`` holders at once.

    Released too often (more than this process acquired), it raises ValueError, as
    ``threading.BoundedSemaphore`` does. A slot whose holder's process dies frees itself ``ttl``
    seconds later. ``app.semaphore(name)`` makes one on the app's store; ``Semaphore(name,
    url=...)`` on any store."""

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        value: int = 1,
        ttl: float = 30.0,
        _owner: Owner | None = None,
    ) -> None:
        self.name = check_sync_name("semaphore", name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"semaphore value must be a positive int, not {value!r}")
        self.value = value
        self.ttl = check_ttl(ttl)
        self._owner = _owner if _owner is not None else shared_owner(url)
        self._slot = f"sem:{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; with ``blocking`` wait for one (up to ``timeout`` seconds). Returns whether
        one was taken."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        timeout = check_timeout(timeout)
        store = self._owner.store
        token = f"{process_token()}:{uuid.uuid4().hex[:12]}"

        def attempt() -> tuple[bool, float | None]:
            wait = store.acquire_slot(self._slot, token, self.value, self.ttl)
            return wait is None, wait

        got = attempt()[0] if not blocking else wait_for(store, attempt, timeout)
        if got:
            group = Slots(store, self._slot, self.ttl)
            renewer().register(group, token)  # before anyone can release it
            with _held_lock:
                _held.setdefault((self._owner.url, self.name), []).append((token, group))
        return got

    def release(self, n: int = 1) -> None:
        """Give back ``n`` slots this process holds."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, not {n!r}")
        with _held_lock:
            held = _held.get((self._owner.url, self.name), [])
            if len(held) < n:
                raise ValueError(
                    f"semaphore {self.name!r} released too many times (this process holds "
                    f"{len(held)} of its slots)"
                )
            slots = [held.pop() for _ in range(n)]
        for token, group in slots:
            renewer().unregister(group, token)
            group.store.release_slot(group.slot, token)

    def holders(self) -> int:
        """How many slots are held now, by every process."""
        return len(self._owner.store.slot_holders(self._slot))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<baozi.Semaphore {self.name!r} value={self.value} on {self._owner.url}>"
