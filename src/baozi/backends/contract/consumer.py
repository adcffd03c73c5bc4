"""The consumer part of the store contract: how a worker gets the jobs of its queues.

A worker opens one consumer with :meth:`Store.consumer` for its owner name, its queues (in the
order it serves them) and its lease, and gives it a :class:`Receiver` -- itself. Jobs reach the
receiver two ways:

* **taken**: :meth:`Consumer.take` leases up to ``n`` ready jobs to the owner, from the queues in
  order, and returns them at once (it never blocks). When it returns fewer than asked, the
  consumer watches for more and calls ``receiver.wake()`` when jobs may be ready -- until a
  ``take`` fills its ``n``, or :meth:`Consumer.close`. A wake may be spurious; one is never
  missed: a job that becomes ready after a ``take`` came up short either wakes the receiver or
  is handed to it.
* **handed**: a store that can give a job to an idle worker the moment it arrives calls
  ``receiver.offer(queue, items, took)`` on a thread of the consumer's own, with jobs already
  leased to the owner -- never more than the free slots its last ``take`` came up short by.
  The receiver calls ``took()`` once it counts them as its own, under the lock it holds around
  ``take`` (until then a ``take`` counts them as on their way and takes fewer), may run one of
  them right in that thread (see ``Pool.run_here``), and returns the ones it did not start; the consumer puts those back
  at their place without counting a delivery.

:meth:`Consumer.settle` ends runs as :meth:`JobStore.settle` does and, with ``then_take``,
takes more in the same round trip where the store can: a worker's whole turn. Leases are the
store's: a job taken or handed is leased for the consumer's ``lease`` seconds, and the worker
renews it (:meth:`QueueStore.extend`) while it runs. Delivery is at-least-once.

This module's :class:`Consumer` works on any store through the queue and job parts of the
contract; a store with a faster way (a hand-off, a round trip saved) subclasses it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .records import Item, Outcome

if TYPE_CHECKING:
    from ..base import Store

__all__ = ["Consumer", "Delivery", "Receiver", "TakeFailed"]

Delivery = tuple[str, Item]
"""A job leased to the consumer's owner: its queue, and the item."""


class TakeFailed(Exception):
    """Raised by :meth:`Consumer.settle` when the settle was done but the take after it failed:
    the outcomes are in the store (``held`` of them settled) and ``got`` holds the jobs already
    leased to the owner. The store's error is the ``__cause__``. The caller must not settle
    those outcomes again, and should start ``got``."""

    def __init__(self, held: int, got: list[Delivery]) -> None:
        super().__init__(f"{held} settled, then taking jobs failed")
        self.held = held
        self.got = got


class Receiver(Protocol):
    """What a consumer delivers to (a worker)."""

    def wake(self) -> None:
        """Jobs may be ready to take. Quick (it sets an event); called on any thread."""

    def offer(self, queue: str, items: list[Item], took: Callable[[], None]) -> list[Item]:
        """Jobs handed to the owner, leased to it: start them; return those not started."""


class Consumer:
    """Delivers the jobs of ``queues`` to one owner; see the module docstring.

    Safe to call from the receiver's threads as the contract says: ``take`` and ``settle`` under
    the receiver's lock, ``release`` and ``close`` from any thread.
    """

    def __init__(
        self, store: Store, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> None:
        if not queues:
            raise ValueError("a consumer needs at least one queue")
        self.store = store
        self.owner = owner
        self.queues = tuple(queues)
        self.lease = float(lease)
        self.receiver = receiver
        self.closed = False
        self._watch: Callable[[], None] | None = None  # stops watching for changes
        self._watching = threading.Lock()

    def take(self, n: int) -> list[Delivery]:
        """Lease up to ``n`` ready jobs to the owner, from the queues in order; at once. When
        fewer come back, watch for more (``receiver.wake()``) until a take fills its ``n``."""
        return self._take(n, self.queues)

    def _take(self, n: int, queues: Sequence[str]) -> list[Delivery]:
        got = self._reserve(n, queues)
        if len(got) < n and not self.closed:
            if self._start_watching():
                # Watching from now on: look once more, so nothing added since slips by.
                got += self._reserve(n - len(got), self.queues)
        elif len(got) >= n:
            self._stop_watching()
        return got

    def _reserve(self, n: int, queues: Sequence[str]) -> list[Delivery]:
        got: list[Delivery] = []
        for queue in queues:
            if len(got) >= n:
                break
            items = self.store.reserve(queue, self.owner, self.lease, n - len(got))
            got += [(queue, item) for item in items]
        return got

    def settle(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        then_take: int = 0,
        *,
        failed_ttl: float = math.inf,
    ) -> tuple[int, list[Delivery]]:
        """:meth:`JobStore.settle` the owner's jobs of ``queue``; then, with ``then_take``,
        :meth:`take` up to that many. Returns how many were settled (the rest had lost their
        lease) and what was taken. Works after :meth:`close` too (without taking). A failure
        of the take after a done settle raises :class:`TakeFailed`."""
        held = self.store.settle(queue, self.owner, outcomes, ttl, failed_ttl) if outcomes else 0
        if then_take <= 0 or self.closed:
            return held, []
        return held, self._top_up(held, [], then_take, self.queues)

    def _top_up(
        self, held: int, got: list[Delivery], n: int, queues: Sequence[str]
    ) -> list[Delivery]:
        """After a settle that is done: ``got`` and up to ``n`` more from ``queues`` (watching
        when short, as :meth:`take`). A failure raises :class:`TakeFailed`, so the caller
        knows the settle itself stands."""
        try:
            return got + self._take(n, queues) if n > 0 else got
        except Exception as exc:
            raise TakeFailed(held, got) from exc

    def release(self, queue: str, ids: Sequence[str], delay: float = 0.0) -> int:
        """Give the owner's jobs back to their place (see :meth:`QueueStore.release`)."""
        return self.store.release(queue, ids, self.owner, delay) if ids else 0

    def next_due(self) -> float | None:
        """The earliest time a scheduled or leased job of the queues becomes ready, or None:
        when to look again if nothing wakes the receiver first."""
        dues = [d for q in self.queues if (d := self.store.next_due(q)) is not None]
        return min(dues) if dues else None

    def close(self) -> None:
        """Deliver nothing more: no wakes, no hand-offs. Idempotent."""
        self.closed = True
        self._stop_watching()

    def _start_watching(self) -> bool:
        """Start calling ``receiver.wake()`` on store changes; False when already watching."""
        with self._watching:
            if self._watch is not None or self.closed:
                return False
            self._watch = self.store.on_change(self.receiver.wake)
            return True

    def _stop_watching(self) -> None:
        with self._watching:
            stop, self._watch = self._watch, None
        if stop is not None:
            stop()
