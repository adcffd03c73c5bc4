"""The queue part of the store contract: items, their order, leases and change signals.

A store holds named queues of items. Each item has an id (a string, unique in the store for its
lifetime), a payload (bytes), and an ordering key ``(priority, seq, id)`` compared lowest first.
``seq`` is 0 for an item pushed to the back and, for an item pushed to the front, a number below
every ``seq`` the queue has handed out before; the last part orders items by when they were
pushed (the id itself in the SQLite and memory stores; Redis keeps an order number beside a
client-made id, so Redis ids from different clients say nothing about order). So FIFO is "push to the
back", LIFO and ``appendleft`` are "push to the front", and priority orders before either. The key
never changes: an item that goes back to the queue (released, or its lease expired) returns to the
exact place it left. Only the deque operations :meth:`QueueStore.rotate` and
:meth:`QueueStore.splice` move ready items to new keys (and may give them new ids).

An item is in one of three states:

* **ready** -- waiting to be handed out;
* **leased** -- handed out by :meth:`Store.reserve` (or, by id, :meth:`Store.claim`) to an
  owner until a deadline. The owner settles it with :meth:`Store.ack` (removed for good) or
  :meth:`Store.release` (ready again, same key), or keeps it with :meth:`Store.extend`. A lease
  past its deadline counts as ready: the next reserve may hand the item to someone else, and from
  then on the first owner can no longer settle it;
* **scheduled** -- pushed with a delay; it becomes ready at its time.

A priority is a number, or, for queue items (:class:`baozi.PriorityQueue`), a str, bytes or a
tuple of those; a store orders them as Python compares them. A store whose column holds only
numbers keeps the others as the order-preserving bytes of :mod:`baozi.backends._order`, and gives
back the value. A queue never holds priorities of two kinds but by a race (see PriorityQueue):
a store then still orders them, numbers first.

Deadlines are wall-clock seconds (``time.time()``), so processes on different machines share them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .records import Counts, Item, Priority

__all__ = ["QueueStore"]


class QueueStore(ABC):
    """Named queues of items (see the module docstring). Every method is atomic; none blocks
    but :meth:`wait_for_change`."""

    @abstractmethod
    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priorities: Sequence[Priority] | Priority = 0,
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        maxlen: int | None = None,
    ) -> list[str]:
        """Add items and return their ids, in the order of ``payloads``, all or none.

        ``priorities`` is one priority for every item or one per item. With ``front`` each item goes
        ahead of everything of its priority, one after the other, so the last one ends up first (as
        ``deque.extendleft``). With ``delay`` > 0 the items are scheduled to become ready that many
        seconds from now. With ``maxsize`` > 0, if the ready items plus the new ones would exceed
        ``maxsize``, nothing is added and :class:`~baozi.errors.Full` is raised. With ``maxlen`` set,
        after adding, ready items are dropped from the other end (the back for ``front``, else the
        front) until at most ``maxlen`` are ready.
        """

    @abstractmethod
    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        """Lease up to ``n`` ready items from the head of the queue to ``owner`` for ``lease`` seconds.

        Returns them in key order, at once; an empty list when nothing is ready. Expired leases and
        scheduled items that are due are ready for this purpose. ``deliveries`` is incremented.
        A queue whose :meth:`queue_options` say ``paused`` hands out nothing.
        """

    @abstractmethod
    def claim(
        self,
        queue: str,
        owner: str,
        lease: float,
        ids: Sequence[str],
        takeover: Collection[str] = (),
    ) -> list[Item]:
        """Lease these items of ``queue`` to ``owner`` for ``lease`` seconds, as :meth:`reserve`
        leases the head.

        Each id that names a ready item of the queue (not scheduled for later, not waiting for
        its dependencies) that no one holds under a live lease -- or that another owner holds,
        when the id is in ``takeover`` -- is leased, its delivery counted, and its job record
        marked started, exactly as reserve does for the items it takes. An expired lease and a
        scheduled item that is due are ready for this purpose, as for reserve; a takeover ends
        the other owner's lease as if it had run out (that owner can no longer settle the
        item). Ids that name nothing, a finished job, an item of another queue, a scheduled or
        waiting item, an item ``owner`` holds already, or one another owner holds (not in
        ``takeover``) are left alone and left out; so is every id when the queue's
        :meth:`queue_options` say ``paused``. Returns the items leased, in the order of ``ids``
        (each id once). One atomic step.
        """

    @abstractmethod
    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        """Remove up to ``n`` ready items from the head (or, with ``back``, the tail) and return them,
        nearest the end they were taken from first. Nothing is leased: this is ``deque.pop``."""

    @abstractmethod
    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        """Remove the given items held by ``owner``; return how many were removed.

        An item whose lease expired may still be acknowledged by its owner until another owner
        reserves it; items held by someone else, or gone, are left alone and not counted.
        """

    @abstractmethod
    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        """Give leased items back: ready again at their original key (or scheduled ``delay`` seconds
        from now). Items not held by ``owner`` are left alone. Returns how many were released."""

    @abstractmethod
    def extend(self, queue: str, ids: Sequence[str], owner: str, lease: float) -> int:
        """Renew ``owner``'s leases to end ``lease`` seconds from now; return how many it still held.

        An item whose lease expired is renewed too, unless another owner reserved it meanwhile."""

    @abstractmethod
    def rank(self, queue: str, item_id: str) -> int | None:
        """How many ready items are ahead of ``item_id`` (0 = next out); None when it is not ready
        (leased, scheduled, or gone)."""

    @abstractmethod
    def counts(self, queue: str) -> Counts:
        """The number of items in each state."""

    @abstractmethod
    def next_due(self, queue: str) -> float | None:
        """The earliest wall-clock time at which a leased or scheduled item becomes ready, or None."""

    @abstractmethod
    def peek(self, queue: str, index: int) -> Item:
        """The ready item at ``index`` in key order (negative counts from the tail), left in place.

        Raises IndexError when there is no such item."""

    @abstractmethod
    def snapshot(self, queue: str) -> list[Item]:
        """Every ready item, in key order, as of one moment."""

    @abstractmethod
    def rotate(self, queue: str, n: int) -> None:
        """Rotate the ready items ``n`` steps to the right, as ``deque.rotate``: with n > 0 the
        last n items move, in order, to the front; with n < 0 the first -n move to the back.

        ``n`` is taken modulo the number of ready items, and a rotation of more than half the
        items is done as the shorter one the other way, so at most half the items are moved: the
        store work is O(min(|n|, len)) item writes, never O(len) for a small n (a rotate(1) of a
        100,000-item deque rewrites one item). Nothing happens on an empty queue. One atomic step.

        Moved items may get new internal keys and new ids; their payloads and order are kept.
        """

    @abstractmethod
    def splice(
        self,
        queue: str,
        index: int,
        delete: int,
        payloads: Sequence[bytes] = (),
        *,
        clamp: bool = False,
        expect: Sequence[str] | None = None,
        maxlen: int | None = None,
    ) -> list[Item] | None:
        """At position ``index`` among the ready items, remove ``delete`` items and put
        ``payloads`` there, in order (the first payload ends up at ``index``); return the removed
        items in order. One atomic step.

        A negative ``index`` counts from the tail (index + len). Without ``clamp`` an index
        outside [0, len] after that, or index + delete > len, raises IndexError and changes
        nothing; with ``clamp`` the index is clamped into [0, len] as ``list.insert`` does (then
        ``delete`` must be 0). With ``expect``, the ids of the first len(expect) ready items must
        be exactly ``expect``, in order; if they are not, nothing changes and None is returned
        (the caller read a snapshot, someone changed the queue since, and the caller retries).
        With ``maxlen``, if the result would hold more than ``maxlen`` ready items,
        :class:`~baozi.errors.Full` is raised and nothing changes.

        Inserted items are new items with new ids (so an item replaced in place has a new id; a
        snapshot's ids thus identify its contents). The store work is O(min(index, len - index -
        delete) + delete + len(payloads)) item writes: items are moved from the nearer end, as
        ``collections.deque`` does, never the whole queue. Moved items may get new keys and ids.
        Waiters (:meth:`wait_for_change`) are woken when items were added.

        Both this and :meth:`rotate` are meant for a queue used as a deque (every item ready, of
        priority 0); on any other queue they lose nothing, but the order they make is only
        defined among items of one priority.
        """

    @abstractmethod
    def clear(self, queue: str) -> int:
        """Remove every item of the queue, whatever its state; return how many were removed."""

    @abstractmethod
    def discard(self, queue: str, ids: Sequence[str]) -> int:
        """Remove these items unless a lease holds them (ready, scheduled, or a lease that ran
        out); return how many were removed."""

    @abstractmethod
    def change_token(self) -> int:
        """An opaque value that changes whenever any queue in the store may have changed.

        Take it *before* looking at a queue; pass it to :meth:`wait_for_change` afterwards."""

    @abstractmethod
    def wait_for_change(self, token: int, timeout: float) -> bool:
        """Block until the store may have changed since ``token`` was taken, or ``timeout`` seconds.

        Returns False on timeout. Spurious wake-ups are allowed; missed changes are not -- with
        one exception a store may take: a reservation from a queue without a ``maxsize`` in its
        :meth:`queue_options` need not wake anyone, since the only wait it can end is a put into
        a full queue. Changes made by other processes are seen within a few milliseconds; this
        never spins on a core."""

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` whenever the store may have changed, from now until the returned
        function is called -- the push form of :meth:`wait_for_change`, for a loop that also
        waits for other things. The callback runs in a thread of the store's and must be quick
        (setting an event). This default runs a thread on :meth:`wait_for_change`; stores with a
        change signal call back straight from it."""
        stopped = threading.Event()
        token = self.change_token()

        def watch() -> None:
            nonlocal token
            while not stopped.is_set():
                if self.wait_for_change(token, 0.5):
                    token = self.change_token()
                    callback()

        threading.Thread(target=watch, name="baozi-on-change", daemon=True).start()
        return stopped.set

    @abstractmethod
    def queue_options(self, queue: str) -> dict[str, Any]:
        """The options recorded for the queue (such as its ``maxsize``), shared by every handle."""

    @abstractmethod
    def set_queue_options(self, queue: str, **options: Any) -> None:
        """Record options for the queue, replacing those of the same names."""

    @abstractmethod
    def queues(self) -> list[str]:
        """The names of the queues that have held anything, or have options recorded, and were
        not deleted since (reads never add a name)."""

    @abstractmethod
    def has_queue(self, queue: str) -> bool:
        """Whether :meth:`queues` lists the queue."""

    @abstractmethod
    def delete_queue(self, queue: str) -> bool:
        """Forget an empty queue: its name, options and :meth:`job_totals`, in one step. Empty
        means no item in any state and no job record. Returns True when it was deleted; False,
        changing nothing, when it holds something or :meth:`has_queue` is False. A write to the
        queue afterwards makes it anew."""
