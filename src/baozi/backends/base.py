"""The store contract: the few atomic operations every backend provides, and nothing else.

A store holds named queues of items. Each item has an id (a string, unique in the store for its
lifetime), a payload (bytes), and an ordering key ``(priority, seq, id)`` compared lowest first.
``seq`` is 0 for an item pushed to the back and, for an item pushed to the front, a number below
every ``seq`` the queue has handed out before; the last part orders items by when they were
pushed (the id itself in the SQLite and memory stores; Redis keeps an order number beside a
client-made id, so Redis ids from different clients say nothing about order). So FIFO is "push to the
back", LIFO and ``appendleft`` are "push to the front", and priority orders before either. The key
never changes: an item that goes back to the queue (released, or its lease expired) returns to the
exact place it left.

An item is in one of three states:

* **ready** -- waiting to be handed out;
* **leased** -- handed out by :meth:`Store.reserve` to an owner until a deadline. The owner
  settles it with :meth:`Store.ack` (removed for good) or :meth:`Store.release` (ready again, same
  key), or keeps it with :meth:`Store.extend`. A lease past its deadline counts as ready: the next
  reserve may hand the item to someone else, and from then on the first owner can no longer settle it;
* **scheduled** -- pushed with a delay; it becomes ready at its time.

Deadlines are wall-clock seconds (``time.time()``), so processes on different machines share them.

**Jobs** are items that keep a record after they are done. :meth:`Store.enqueue` adds them with a
task name and a creation time; reserving one marks it started; :meth:`Store.settle` finishes it --
succeeded or failed, with its result or error, kept for a time to live -- or schedules it again
for a retry, in the same atomic step that ends its lease, so a job can never look "running" without
a lease behind it. Its status is derived from its state: scheduled, queued, running (a lease that
has run out reads "queued"), then succeeded, failed or cancelled.

Every method is atomic: concurrent calls from any thread, process or machine see each other's
effects entirely or not at all, and no two reservations can obtain the same item while a lease
holds. Delivery is at-least-once: an item is removed only by ``ack`` or ``pop`` (or ``clear``), so
a consumer that dies leaves a lease that expires. Methods do not block, except
:meth:`Store.wait_for_change`, which is how callers wait without spinning.

Backends raise :class:`~baozi.errors.StoreError` (or a subclass) for failures of the store itself,
translated from the driver's exception with ``raise ... from exc``; they raise
:class:`~baozi.errors.Full` only from :meth:`Store.push` with ``maxsize``.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from .._outage import shown_url

__all__ = [
    "COUNTED",
    "Counts",
    "Item",
    "JobRecord",
    "NewJob",
    "Outcome",
    "Priority",
    "STATUSES",
    "Store",
    "WorkerInfo",
]

Priority = int | float


class Item(NamedTuple):
    """One item as handed out by the store (a tuple: this is made on every reservation)."""

    id: str
    payload: bytes
    priority: Priority
    deliveries: int = 0
    """How many times the item has been reserved (by this reservation too, for ``reserve``)."""
    task: str | None = None
    """For a job, the name of its task; None for a plain queue item."""
    failures: int = 0
    """For a job, how many of its runs have raised so far."""


class NewJob(NamedTuple):
    """A job to enqueue: the task it runs, its encoded call, its priority."""

    task: str
    payload: bytes
    priority: Priority = 0


class Outcome(NamedTuple):
    """How a run ended, for :meth:`Store.settle`.

    ``status`` is "succeeded" (``result`` holds the encoded value), "failed" (``error`` holds a JSON
    text with the exception's type, message and traceback), or "retry": the job goes back to its
    place, scheduled ``retry_in`` seconds from now, its failure count raised and ``error`` kept;
    or "deferred": the job did not run (a concurrency, lock or rate limit held it back), so it goes
    back to its place, scheduled ``retry_in`` seconds from now, and the delivery its reservation
    counted is taken back. A deferred job with a ``slot`` (of ``slot_limit`` holders) waits for
    that slot: the next :meth:`Store.release_slot` of it makes the first such job (in queue order)
    ready at once, and ``retry_in`` is only how long it waits at most; if the slot has fewer than
    ``slot_limit`` holders when this is settled (one left meanwhile), the job is ready at once.
    """

    id: str
    status: str
    result: bytes | None = None
    error: str | None = None
    retry_in: float = 0.0
    slot: str | None = None
    slot_limit: int = 0


CLAIM_TTL = 10.0
"""How long a slot freed for a waiting job stays kept for it (it is ready: a worker takes it
within moments unless every worker is busy)."""

STATUSES = ("scheduled", "queued", "running", "succeeded", "failed", "cancelled")

COUNTED = ("enqueued", "started", "succeeded", "failed", "cancelled")
"""The events :meth:`Store.job_totals` counts, per queue and task:

* **enqueued** -- a job was added by :meth:`Store.enqueue` (once per job: a requeue is not an
  enqueue);
* **started** -- a job was leased to a worker (by :meth:`Store.reserve`, or handed off): each
  delivery counts, so a job retried, deferred by a limit, handed back or whose lease ran out
  counts again when it is leased again;
* **succeeded**, **failed**, **cancelled** -- a job reached that end (a job requeued after it
  failed, and finished again, counts again; a retry is no end and counts nothing).

Each total only grows: it is counted in the same atomic step as the change it counts, and
neither purging records nor :meth:`Store.clear` takes it back; only :meth:`Store.delete_queue`
drops a queue's totals, with the queue. Plain items (:meth:`Store.push`) count nothing."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Everything the store knows about one job, read at one moment."""

    id: str
    queue: str
    task: str
    status: str
    priority: Priority
    payload: bytes
    attempts: int
    """How many times a worker has started it (its deliveries)."""
    failures: int
    """How many of those runs raised (or died, or timed out)."""
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: bytes | None
    error: str | None
    progress: str | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker reports about itself with each heartbeat."""

    id: str
    host: str
    pid: int
    pool: str
    concurrency: int
    queues: tuple[str, ...]
    busy: int = 0
    started_at: float = 0.0
    last_seen: float = 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    """How many items of a queue are in each state. Expired leases count as ready."""

    ready: int
    leased: int
    scheduled: int

    @property
    def total(self) -> int:
        return self.ready + self.leased + self.scheduled


class Store(ABC):
    """A handle on one store, opened from a URL by :func:`baozi.backends.open_store`.

    A handle may be used from many threads at once. It can be thrown away and re-opened from its URL
    at any time: everything that matters is in the store.
    """

    scheme: ClassVar[str]
    shared_across_processes: ClassVar[bool]
    """True when other processes (and, for a server, other machines) that open the URL see the same
    queues. False only for ``memory://``, which lives inside one process."""
    durable: ClassVar[bool]
    """True when the contents outlive the process that wrote them."""
    changes_on_own_thread: ClassVar[bool] = False
    """True when :meth:`on_change` callbacks always run on a listener thread of the store's own
    (never inside a caller's write), so a callback may call the store itself."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def missing(cls, url: str) -> str | None:
        """Why ``url`` names no store yet, so that opening it would create one (a file that does
        not exist), or None. Commands that only read ask this first and create nothing."""
        return None

    @property
    def location(self) -> str:
        """Where the store is, for people to read (an absolute path for a file; no password)."""
        return shown_url(self.url)

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
    def clear(self, queue: str) -> int:
        """Remove every item of the queue, whatever its state; return how many were removed."""

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

    # -- jobs ---------------------------------------------------------------------------------

    @abstractmethod
    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
    ) -> list[str]:
        """Add jobs as :meth:`push` adds items (same order, atomicity and ``maxsize`` rule), each
        with a record: its task name and creation time. Returns their ids."""

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """A block in which :meth:`enqueue` calls of the thread that entered it may return before
        the store confirms them; all are confirmed when the block ends, which then raises
        :class:`~baozi.errors.EnqueueFailed` naming every job the store did not file. Outside
        a block, :meth:`enqueue` returns only once its jobs are filed. A nested block joins the
        outer one. A store whose writes cost no round trip confirms each at once (the default).
        """
        yield

    @abstractmethod
    def settle(self, queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float) -> int:
        """End the runs of jobs ``owner`` holds, all in one step: finished ones keep their record for
        ``ttl`` seconds, retried ones are scheduled again. Jobs ``owner`` no longer holds are left
        alone. Returns how many were settled."""

    def hand_off(
        self, owner: str, receive: Callable[[str, list[Item], Callable[[], None]], object] | None
    ) -> bool:
        """Have ``receive(queue, items, took)`` called with jobs the store hands straight to
        ``owner`` while it waits idle (with free slots after a reserve), already leased to it;
        None stops that. Returns whether the store hands jobs off at all (the default: no).

        ``receive`` runs on a thread of the store's own. It calls ``took()`` once it counts the
        jobs as its own (under the same lock as its reserves): until then a reserve by ``owner``
        counts them as on their way, and takes fewer. A reserve by ``owner`` sets how many slots
        it has free, for all its queues; one that fills them all ends the wait.
        """
        return False

    def hand_back(self, queue: str, ids: Sequence[str], owner: str) -> None:
        """Return jobs handed to ``owner`` that it did not start, to their place in the queue,
        without counting a delivery."""
        self.release(queue, ids, owner)

    def settle_and_reserve(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        lease: float,
        n: int,
    ) -> tuple[int, list[Item]]:
        """:meth:`settle` these outcomes, then :meth:`reserve` up to ``n`` items: a worker's turn,
        in one round trip where the store can (the two steps need not be one atomic step)."""
        held = self.settle(queue, owner, outcomes, ttl) if outcomes else 0
        return held, self.reserve(queue, owner, lease, n) if n > 0 else []

    @abstractmethod
    def cancel(self, job_id: str, ttl: float = 86400.0) -> bool:
        """Mark a job that is waiting (queued -- an expired lease included -- or scheduled)
        cancelled, its record kept ``ttl`` seconds; False otherwise."""

    @abstractmethod
    def requeue(self, job_id: str) -> bool:
        """Put a failed or cancelled job back in its queue, at its original place, starting over
        (its failure and delivery counts cleared); False if it is not failed or cancelled."""

    @abstractmethod
    def record(self, job_id: str) -> JobRecord | None:
        """The job's record, or None if the store holds no job with this id."""

    @abstractmethod
    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these jobs, in one call; ids with no job are left out."""

    @abstractmethod
    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally of one queue and one status."""

    @abstractmethod
    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        """Store a running job's progress (JSON text) if ``owner`` holds it."""

    @abstractmethod
    def job_counts(self, queue: str) -> dict[str, int]:
        """How many jobs of the queue are in each of :data:`STATUSES`."""

    @abstractmethod
    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        """How many of each :data:`COUNTED` event the queue's jobs have had, by task: every task
        with a count maps every event to its total (0 included). Read in one step: the totals
        are as of one moment. Totals since the store began counting (files made by an older
        baozi count from their upgrade on)."""

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

    @abstractmethod
    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        """How many items of these queues each owner holds under a lease that has not run out,
        as of one moment (owners holding none are left out)."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Remove finished jobs whose time to live has run out; return how many."""

    @abstractmethod
    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        """Record that ``worker`` is alive; it counts as gone ``ttl`` seconds after its last beat."""

    @abstractmethod
    def workers(self) -> list[WorkerInfo]:
        """The workers whose last heartbeat is recent enough."""

    @abstractmethod
    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped."""

    # -- coordination ---------------------------------------------------------------------------
    # Small atomic steps that locks, semaphores, events, conditions, shared dicts, rate limits and
    # schedules are built on (see baozi.sync). Writes that can end someone's wait (a slot freed, a
    # value set or removed) wake :meth:`wait_for_change` waiters.

    @abstractmethod
    def kv_get(self, ns: str, key: str) -> bytes | None:
        """The value stored under ``key`` in namespace ``ns``, or None."""

    @abstractmethod
    def kv_items(self, ns: str) -> dict[str, bytes]:
        """Every key and value of the namespace, as of one moment."""

    @abstractmethod
    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing what was there."""

    @abstractmethod
    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        """Store ``value`` unless the key holds one; return the value the key now holds."""

    @abstractmethod
    def kv_delete(self, ns: str, key: str) -> bytes | None:
        """Remove the key; return the value it held, or None when there was none."""

    @abstractmethod
    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        """Compare and set: if the key holds ``expected`` (None: holds nothing), store ``value``
        (None: remove the key) and return True; else change nothing and return False."""

    @abstractmethod
    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        """Add ``amount`` to the number stored under the key as JSON text (a missing key counts as
        0) and return the sum. Raises TypeError, changing nothing, when the key holds something
        other than a number."""

    @abstractmethod
    def kv_clear(self, ns: str) -> int:
        """Remove every key of the namespace; return how many."""

    @abstractmethod
    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        """Take one of ``limit`` slots named ``name`` for ``holder`` for ``ttl`` seconds.

        Holders whose time ran out are dropped first. A holder that already has a slot keeps it,
        renewed. A slot kept by :meth:`release_slot` for a waiting job counts as held, and goes
        to the call whose ``claim`` is that job's id, whatever the count. Returns None when
        ``holder`` has a slot, else how many seconds until the first current holder's time runs
        out (when a slot may free without anyone releasing it)."""

    @abstractmethod
    def release_slot(self, name: str, holder: str) -> bool:
        """Give back ``holder``'s slot; False when it held none (or its time ran out). Either way,
        the first job waiting for the slot (see :class:`Outcome`) that is still scheduled becomes
        ready, in the same step; and when this freed a slot, the slot is kept for that job for
        :data:`CLAIM_TTL` seconds (see :meth:`acquire_slot`), so no newer job takes it first."""

    @abstractmethod
    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        """Give these holders' slots ``ttl`` seconds from now; return how many still held one."""

    @abstractmethod
    def slot_holders(self, name: str) -> list[str]:
        """The holders of the slots named ``name`` whose time has not run out."""

    @abstractmethod
    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        """Admit one event of a rate limit of one per ``interval`` seconds (up to ``burst`` at once
        after a quiet spell). Returns 0.0 when admitted (and counts it), else how many seconds
        until the next admission is possible (and counts nothing).

        With a ``ticket``, a refused event is booked instead: it gets the next free time, counted
        now, and the call returns the seconds until then; asked again with the same ticket at (or
        after) that time it is admitted without being counted twice. So events that must wait
        are spread over the free times in the order they asked."""

    @abstractmethod
    def discard(self, queue: str, ids: Sequence[str]) -> int:
        """Remove these items unless a lease holds them (ready, scheduled, or a lease that ran
        out); return how many were removed."""

    def warnings(self) -> list[str]:
        """What in the store's setup may lose data, each as a sentence for its operator that
        names the setting to change (empty: nothing). May ask the server: one round trip."""
        return []

    def close(self) -> None:  # noqa: B027 -- optional: stores without connections keep it
        """Let go of connections. The store and its contents stay; other handles are unaffected."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
