"""Lock: ``threading.RLock`` for every process on a store."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .._renewer import Slots, renewer
from .._waiting import check_timeout
from ._common import Owner, check_sync_name, check_ttl, process_token, shared_owner, wait_for

__all__ = ["Lock"]


@dataclass
class _Hold:
    depth: int  # a lock is reentrant for its holder: how many times it holds it
    group: Slots  # what the renewer renews it with, and the store it was taken in


# Every hold of this process, by (store URL, lock name, holder), shared by every handle on the
# lock, so that a thread holding it through one handle holds it through all.
_holds: dict[tuple[str, str, str], _Hold] = {}
_holds_lock = threading.Lock()


def _forked() -> None:
    # A forked child holds none of its parent's locks; a thread may have held _holds_lock.
    global _holds_lock
    _holds.clear()
    _holds_lock = threading.Lock()


os.register_at_fork(after_in_child=_forked)


class Lock:
    """A reentrant lock shared by every process on the store (``threading.RLock`` semantics).

    The holder is a thread of a process: the same thread may acquire it again, and must release it
    as many times. If the holder's process dies, the lock frees itself ``ttl`` seconds later; while
    it lives, it renews the lock every third of the ttl. ``app.lock(name)`` makes one on the app's
    store; ``Lock(name, url=...)`` on any store."""

    def __init__(
        self, name: str, *, url: str | None = None, ttl: float = 30.0, _owner: Owner | None = None
    ) -> None:
        self.name = check_sync_name("lock", name)
        self.ttl = check_ttl(ttl)
        self._owner = _owner if _owner is not None else shared_owner(url)
        self._slot = f"lock:{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def _key(self) -> tuple[str, str, str]:
        return (self._owner.url, self.name, f"{process_token()}:{threading.get_ident()}")

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock; with ``blocking`` wait for it (up to ``timeout`` seconds; -1: forever).
        Returns whether it was taken."""
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout is None:
            timeout = -1  # threading.Lock takes -1 for "forever"; None is forgiven here
        if timeout != -1:
            check_timeout(timeout)
        key = self._key()
        with _holds_lock:
            hold = _holds.get(key)
            if hold is not None:
                hold.depth += 1
                return True
        store, holder = self._owner.store, key[2]

        def attempt() -> tuple[bool, float | None]:
            wait = store.acquire_slot(self._slot, holder, 1, self.ttl)
            return wait is None, wait

        if not blocking:
            got = attempt()[0]
        else:
            got = wait_for(store, attempt, None if timeout == -1 else float(timeout))
        if got:
            group = Slots(store, self._slot, self.ttl)
            with _holds_lock:
                _holds[key] = _Hold(1, group)
            renewer().register(group, holder)
        return got

    def release(self) -> None:
        """Release the lock once; the last release lets others take it."""
        key = self._key()
        with _holds_lock:
            hold = _holds.get(key)
            if hold is None:
                raise RuntimeError(f"cannot release un-acquired lock {self.name!r}")
            if hold.depth > 1:
                hold.depth -= 1
                return
            del _holds[key]
        if not self._give_back(hold, key[2]):
            raise RuntimeError(
                f"lock {self.name!r} was no longer held by this thread when released: its ttl "
                f"({hold.group.ttl:g}s) ran out without renewal, and another holder may have "
                f"taken it"
            )

    @staticmethod
    def _give_back(hold: _Hold, holder: str) -> bool:
        renewer().unregister(hold.group, holder)
        return hold.group.store.release_slot(hold.group.slot, holder)

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return bool(self._owner.store.slot_holders(self._slot))

    def _is_owned(self) -> bool:
        with _holds_lock:
            return self._key() in _holds

    def _release_save(self) -> int:
        """Release completely, whatever the depth; return the depth (for Condition.wait)."""
        key = self._key()
        with _holds_lock:
            hold = _holds.pop(key, None)
        if hold is None:
            return 0
        self._give_back(hold, key[2])
        return hold.depth

    def _acquire_restore(self, depth: int) -> None:
        self.acquire()
        with _holds_lock:
            _holds[self._key()].depth = depth

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<baozi.Lock {self.name!r} ttl={self.ttl:g}s on {self._owner.url}>"
