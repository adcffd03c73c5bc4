"""Renewer: the one thread per process that keeps its leases and slots alive while it lives.

Whatever this process holds in a store for a limited time -- items a queue handle got, a lock, a
semaphore slot, a worker's running jobs -- is registered here in a :class:`Group`: holds that one
store call renews together (the leases of one queue and owner, the holders of one slot). Every
third of its ttl, the thread renews each group with one call. A process that dies stops renewing,
and its holds run out on their own.

A forked child starts with a Renewer of its own, holding nothing: its parent's holds are not its.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from .backends.base import Store

__all__ = ["Group", "Leases", "Renewer", "Slots", "renewer"]

log = logging.getLogger("baozi.renew")


class Group(ABC):
    """Holds renewed together by one store call, every third of ``ttl`` seconds.

    A group is a value: equal groups (hashable, compared by their fields) share one set of
    members. Subclasses may override :meth:`lost` and :meth:`failed` to report elsewhere."""

    ttl: float

    @abstractmethod
    def renew(self, members: list[str]) -> int:
        """Extend the members' holds by ``ttl`` seconds; return how many the store still had."""

    def lost(self, count: int) -> None:
        """``count`` members were no longer held when renewed: their time ran out first."""
        log.warning("%s: %d hold(s) of this process ran out before they were renewed", self, count)

    def failed(self, exc: Exception, count: int) -> None:
        """Renewing ``count`` members raised; the next round tries again (holds have slack)."""
        log.warning("%s: renewing %d hold(s) failed: %s", self, count, exc)


@dataclass(frozen=True)
class Leases(Group):
    """Items of ``queue`` leased to ``owner``; members are item (or job) ids."""

    store: Store = field(repr=False)
    queue: str
    owner: str
    ttl: float

    def renew(self, members: list[str]) -> int:
        return self.store.extend(self.queue, members, self.owner, self.ttl)

    def __str__(self) -> str:
        return f"queue {self.queue!r}, leases of {self.owner}"


@dataclass(frozen=True)
class Slots(Group):
    """Holders of the store slot ``slot`` (a lock, a semaphore, a task's limit); members are
    holder tokens."""

    store: Store = field(repr=False)
    slot: str
    ttl: float

    def renew(self, members: list[str]) -> int:
        return self.store.renew_slots(self.slot, members, self.ttl)

    def __str__(self) -> str:
        return f"slot {self.slot!r}"


@dataclass
class _Held:
    due: float  # monotonic time of the next renewal
    members: dict[str, None] = field(default_factory=dict)  # an ordered set


class Renewer:
    """Renews every registered group every third of its ttl, from one daemon thread, started at
    the first registration. Registering and unregistering are cheap: no store call, and no wake-up
    of the thread unless the new group is due before the thread would look anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Group, _Held] = {}
        self._kick = threading.Event()
        self._wakes_at = math.inf  # when the thread next looks (monotonic)
        self._thread: threading.Thread | None = None

    def register(self, group: Group, *members: str) -> None:
        """Renew these members' holds with ``group`` from now on (the first time a third of its
        ttl from now: they were just taken)."""
        if not members:
            return
        with self._lock:
            held = self._held.get(group)
            if held is None:
                held = self._held[group] = _Held(time.monotonic() + group.ttl / 3)
            for member in members:
                held.members[member] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baozi-renew", daemon=True)
                self._thread.start()
            kick = held.due < self._wakes_at
        if kick:
            self._kick.set()

    def unregister(self, group: Group, *members: str) -> None:
        """Stop renewing these members (they were given back); unknown ones are ignored."""
        with self._lock:
            held = self._held.get(group)
            if held is None:
                return
            for member in members:
                held.members.pop(member, None)
            if not held.members:
                del self._held[group]

    def held(self) -> dict[Group, list[str]]:
        """Every group registered now, with its members."""
        with self._lock:
            return {group: list(held.members) for group, held in self._held.items()}

    def _run(self) -> None:
        while True:
            for group, members in self._due():
                self._renew(group, members)
            with self._lock:
                self._wakes_at = min((h.due for h in self._held.values()), default=math.inf)
                wait = self._wakes_at - time.monotonic()
            # A new group due sooner sets the kick, after _wakes_at was read or before the wait.
            self._kick.wait(min(max(wait, 0.01), 3600.0))
            self._kick.clear()

    def _due(self) -> list[tuple[Group, list[str]]]:
        """The groups whose renewal is due, with their members; each is next due in ttl/3."""
        now, due = time.monotonic(), []
        with self._lock:
            for group, held in self._held.items():
                if held.due <= now:
                    due.append((group, list(held.members)))
                    held.due = now + group.ttl / 3
        return due

    def _renew(self, group: Group, members: list[str]) -> None:
        try:
            kept = group.renew(members)
        except Exception as exc:  # the store may be back next round; holds have slack
            group.failed(exc, len(members))
            return
        with self._lock:
            held = self._held.get(group)
            # A member given back while its renewal ran is not lost.
            still = sum(1 for m in members if held is not None and m in held.members)
        if kept < still:
            group.lost(still - kept)


_renewer: Renewer | None = None
_renewer_lock = threading.Lock()


def renewer() -> Renewer:
    """This process's Renewer."""
    global _renewer
    found = _renewer
    if found is None:
        with _renewer_lock:
            found = _renewer
            if found is None:
                found = _renewer = Renewer()
    return found


def _forked() -> None:
    # The child holds none of its parent's leases and slots, and has no renewer thread; a thread
    # of the parent may have held the lock at the fork.
    global _renewer, _renewer_lock
    _renewer, _renewer_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forked)
