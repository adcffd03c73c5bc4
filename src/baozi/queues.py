"""Queue, LifoQueue and PriorityQueue: the interface of ``queue.Queue``, kept in a store.

One base class does the blocking, timeouts, leases and ``task_done``/``join``; the variants only say
where a new item goes (the back, the front) and what its priority is.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ._async_queue import ChangeFanout, Getters, wait_change, wait_seconds
from ._names import UNDECODABLE_SUFFIX, check_name
from ._outage import shown_url
from ._process import current_pid
from ._queue_api import QueueInterface
from ._renewer import Leases, renewer
from ._waiting import check_timeout, wait_until
from .backends import interop_queue_class, is_interop, open_store, resolve_url
from .backends._order import MAX_ENCODED, clash, encode, kind, merged, shape
from .backends.base import Item, Priority
from .errors import Empty, Full, NotSupported, UndecodableItem
from .serialize import Serializer, get_serializer

__all__ = ["LifoQueue", "PriorityQueue", "Queue", "UNDECODABLE_SUFFIX"]


log = logging.getLogger("baozi.queue")
_INT64 = 2**63


def _check_name(name: object) -> str:
    return check_name(name, "queue")


class Queue(QueueInterface):
    """A FIFO queue in a store, shared by every handle with the same name and URL.

    ``get()`` hands an item out under a lease of ``lease`` seconds, renewed while this handle is
    open (by the process's renewer thread); ``task_done()`` acknowledges it. An item whose consumer dies before that goes back to its
    original place when the lease runs out. ``close()`` puts back what this handle got and did not
    acknowledge. From asyncio code, ``get_async()`` and ``put_async()`` wait without a thread.
    """

    _front = False
    _needs: tuple[str, ...] = ()  # store features the variant cannot do without

    def __new__(cls, name: str = "default", *, url: str | None = None, **options: Any) -> Queue:
        # A broker that is not a store (amqp://) has a queue class of its own, with this
        # interface; only the plain FIFO Queue has a meaning there.
        if not is_interop(url):
            return super().__new__(cls)
        if cls is not Queue:
            raise NotSupported(
                f"a {cls.__name__}",
                shown_url(url or ""),
                "RabbitMQ 3.10's quorum queues are FIFO only: use baozi.Queue there, or a store "
                "(sqlite://, redis://, postgresql://) for LIFO and priority order",
            )
        queue: Queue = interop_queue_class(url)(name, url=resolve_url(url), **options)
        return queue

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = _signature(cls)  # type: ignore[attr-defined]

    def __init__(
        self,
        name: str = "default",
        *,
        url: str | None = None,
        maxsize: int = 0,
        lease: float = 30.0,
        serializer: str | Serializer = "json",
    ) -> None:
        self.name = _check_name(name)
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, not {maxsize!r}")
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
        self.lease = float(lease)
        self._codec = get_serializer(serializer)
        self._store = open_store(url)
        self.url = self._store.url
        # The bound belongs to the queue: a positive maxsize is recorded for every handle, and a
        # handle opened without one adopts the recorded bound.
        try:
            for feature in self._needs:
                self._store.require(feature)
            if maxsize > 0:
                self._store.set_queue_options(self.name, maxsize=maxsize)
                self.maxsize = maxsize
            else:
                self.maxsize = int(self._store.queue_options(self.name).get("maxsize", 0))
        except BaseException:
            self._store.close()
            raise
        self._lock = threading.Lock()
        self._new_owner()

    def _new_owner(self) -> None:
        self._pid = current_pid()
        self._owner = f"{socket.gethostname()}:{self._pid}:{uuid.uuid4().hex[:12]}"
        self._leases = Leases(self._store, self.name, self._owner, self.lease)
        self._leased: set[str] = set()  # everything this handle holds, put back by close()
        self._unfinished: dict[str, int] = {}  # got by get(), not yet task_done: id -> thread
        self._by_thread: dict[int, deque[str]] = {}
        self._closed = threading.Event()
        self._fanout = ChangeFanout(self._store)
        self._getters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Getters] = (
            weakref.WeakKeyDictionary()
        )

    # -- what the variants change -------------------------------------------------------------

    def _priority(self, item: Any) -> Priority:
        return 0

    def _admit(self, priorities: list[Priority]) -> None:
        """Refuse priorities the queue cannot order with those it holds (no refusal here)."""

    # -- putting ------------------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` in the queue, waiting up to ``timeout`` for room when the queue is full."""
        if self.maxsize or self._pid != current_pid() or self._closed.is_set():
            self.put_many((item,), block, timeout)
            return
        if block:
            check_timeout(timeout)  # unbounded: nothing to wait for, but bad input is refused
        payload, priority = self._codec.dumps(item), self._priority(item)
        self._admit([priority])
        self._store.push(self.name, [payload], [priority], front=self._front)

    def put_many(
        self, items: Iterable[Any], block: bool = True, timeout: float | None = None
    ) -> None:
        """Put every item in one transaction: all go in, in order, or none (``queue.Full``)."""
        timeout = check_timeout(timeout) if block else None
        self._check_open()
        items = list(items)
        payloads = [self._codec.dumps(item) for item in items]
        priorities = [self._priority(item) for item in items]
        if not payloads:
            return
        if self.maxsize and len(payloads) > self.maxsize:
            raise ValueError(
                f"cannot put {len(payloads)} items at once into queue {self.name!r} of maxsize "
                f"{self.maxsize}: put them in smaller batches"
            )
        self._admit(priorities)

        def attempt() -> bool | None:
            try:
                self._store.push(
                    self.name, payloads, priorities, front=self._front, maxsize=self.maxsize
                )
                return True
            except Full:
                return None

        if wait_until(self._store, self.name, attempt, block, timeout) is None:
            raise Full(f"queue {self.name!r} is full ({self.maxsize} items)")

    # -- getting ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._pid != current_pid():
            self._new_owner()  # a forked child is a different consumer from its parent
        if self._closed.is_set():
            raise ValueError(f"queue handle {self.name!r} is closed")

    def _take(self, n: int, block: bool, timeout: float | None, track: bool) -> list[Item]:
        timeout = (
            check_timeout(timeout) if block else None
        )  # as queue.Queue: ignored unless blocking
        self._check_open()

        def attempt() -> list[Item] | None:
            return self._store.reserve(self.name, self._owner, self.lease, n) or None

        # Try once before setting up a wait: most gets find an item at once.
        items = attempt() or wait_until(self._store, self.name, attempt, block, timeout)
        if items is None:
            raise Empty(f"queue {self.name!r} is empty")
        self._hold(items, track)
        return items

    def _hold(self, items: list[Item], track: bool) -> None:
        """Note items this handle reserved: renewed, put back by close(), and, when ``track``,
        owed a ``task_done()`` by the calling thread."""
        ids = [item.id for item in items]
        with self._lock:
            self._leased.update(ids)
        if track:
            self._track(ids)
        renewer().register(self._leases, *ids)

    def _decode(self, items: list[Item]) -> list[Any]:
        values, bad = [], None
        for item in items:
            try:
                values.append(self._codec.loads(item.payload))
            except Exception as exc:  # written with another serializer, most likely
                bad = (item, exc)
                break
        if bad is None:
            return values
        # Put back what decoded; move the bad item aside, intact, so the items behind it flow.
        item, error = bad
        ids = [i.id for i in items]
        with self._lock:
            for item_id in ids:
                tid = self._unfinished.pop(item_id, None)
                if tid is not None:
                    self._by_thread[tid].remove(item_id)
        aside = f"{self.name}{UNDECODABLE_SUFFIX}"
        self._store.push(aside, [item.payload], [item.priority])
        self._settle([item.id], ack=True)
        self._settle([i.id for i in items if i.id != item.id], ack=False)
        raise UndecodableItem(
            f"item {item.id} of queue {self.name!r} cannot be read with serializer "
            f"{self._codec.name!r} ({type(error).__name__}: {error}); it was moved, unchanged, to "
            f"queue {aside!r} -- open that with the serializer that wrote it"
        ) from error

    async def get_async(self, timeout: float | None = None) -> Any:
        """:meth:`get` for asyncio code: waits up to ``timeout`` (None: forever), then raises
        ``queue.Empty``. A waiting call holds no thread: the handle's waiters share one store
        change listener and one store step per change, and are served in the order they came.
        Cancelling the call leaves no item taken."""
        timeout = check_timeout(timeout)
        self._check_open()
        loop = asyncio.get_running_loop()
        getters = self._getters.get(loop)
        if getters is None:
            getters = self._getters[loop] = Getters(
                self._fanout, self._reserve_held, self._give_back, self._next_due
            )
        try:
            item = await getters.get(timeout)
        except TimeoutError:
            raise Empty(f"queue {self.name!r} is empty") from None
        try:
            self._track([item.id])
            return (await asyncio.to_thread(self._decode, [item]))[0]
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self._untake, item.id))
            raise

    async def put_async(self, item: Any, timeout: float | None = None) -> None:
        """:meth:`put` for asyncio code: waits up to ``timeout`` (None: forever) for room in a
        full queue, then raises ``queue.Full``. A waiting call holds no thread."""
        timeout = check_timeout(timeout)
        self._check_open()
        payload, priority = self._codec.dumps(item), self._priority(item)
        await asyncio.to_thread(self._admit, [priority])
        deadline = None if timeout is None else time.monotonic() + timeout
        event = await self._fanout.listen()
        try:
            while True:
                event.clear()  # before the attempt: a change during it ends the wait below
                due = await asyncio.to_thread(self._try_push, payload, priority)
                if due is True:
                    return
                wait = wait_seconds(deadline, due)
                if wait <= 0:
                    raise Full(f"queue {self.name!r} is full ({self.maxsize} items)")
                await wait_change(event, wait)
        finally:
            self._fanout.forget(event)

    def _try_push(self, payload: bytes, priority: Priority) -> float | None | bool:
        """Push one item: True when it went in, else when a lease runs out (None: unknown)."""
        try:
            self._store.push(
                self.name, [payload], [priority], front=self._front, maxsize=self.maxsize
            )
            return True
        except Full:
            return self._store.next_due(self.name)

    def _reserve_held(self, n: int) -> list[Item]:
        self._check_open()
        items = self._store.reserve(self.name, self._owner, self.lease, n)
        self._hold(items, track=False)
        return items

    def _give_back(self, items: list[Item]) -> None:
        self._settle([item.id for item in items], ack=False)

    def _next_due(self) -> float | None:
        return self._store.next_due(self.name)

    def _track(self, ids: list[str]) -> None:
        """Remember which thread got what, for task_done()."""
        tid = threading.get_ident()
        with self._lock:
            mine = self._by_thread.setdefault(tid, deque())
            for item_id in ids:
                self._unfinished[item_id] = tid
                mine.append(item_id)

    def _untake(self, item_id: str) -> None:
        with self._lock:
            tid = self._unfinished.pop(item_id, None)
            if tid is not None:
                self._by_thread[tid].remove(item_id)
                if not self._by_thread[tid]:
                    del self._by_thread[tid]
        self._settle([item_id], ack=False)

    @contextmanager
    def reserve(self, timeout: float | None = None) -> Iterator[Any]:
        """``with q.reserve() as item:`` -- acknowledged when the block ends normally, put back in
        its place when it raises. Raises ``queue.Empty`` if nothing comes within ``timeout``."""
        items = self._take(1, True, timeout, track=False)
        value = self._decode(items)[0]
        try:
            yield value
        except BaseException:
            self._settle([items[0].id], ack=False)
            raise
        self._settle([items[0].id], ack=True)

    # -- acknowledging ------------------------------------------------------------------------

    def task_done(self, count: int = 1) -> None:
        """Acknowledge the oldest item the calling thread got and has not acknowledged (or the
        handle's oldest, when that thread has none); ``count`` does so for that many at once."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, not {count!r}")
        if self._pid != current_pid():
            self._new_owner()  # a forked child acknowledges only what it got itself
        tid = threading.get_ident()
        with self._lock:
            if count > len(self._unfinished):
                raise ValueError(
                    f"task_done() called too many times: this handle of queue {self.name!r} has "
                    f"{len(self._unfinished)} unacknowledged item(s), asked to acknowledge {count}"
                )
            if count == len(self._unfinished):  # everything: no need to pick
                ids = list(self._unfinished)
                self._unfinished.clear()
                self._by_thread.clear()
                count = 0
            else:
                ids = []
            for _ in range(count):
                mine = self._by_thread.get(tid)
                if mine:
                    item_id = mine.popleft()
                    del self._unfinished[item_id]
                else:
                    item_id = next(iter(self._unfinished))
                    self._by_thread[self._unfinished.pop(item_id)].remove(item_id)
                ids.append(item_id)
            for t in [t for t, q in self._by_thread.items() if not q]:
                del self._by_thread[t]
        self._settle(ids, ack=True)

    def _settle(self, ids: list[str], ack: bool) -> None:
        with self._lock:
            self._leased.difference_update(ids)
        renewer().unregister(self._leases, *ids)
        if ack:
            done = self._store.ack(self.name, ids, self._owner)
        else:
            done = self._store.release(self.name, ids, self._owner)
        if done < len(ids):
            log.warning(
                "queue %r: %d of %d item(s) were no longer held by this handle (lease expired "
                "and another consumer took them), so they may be processed twice",
                self.name,
                len(ids) - done,
                len(ids),
            )

    def join(self) -> None:
        """Wait until the queue holds no ready, scheduled or in-flight items, whoever put or got them."""
        wait_until(
            self._store,
            self.name,
            lambda: True if self._store.counts(self.name).total == 0 else None,
            True,
            None,
        )

    def clear(self) -> int:
        """Remove every item -- waiting, in flight or scheduled -- and return how many there were."""
        return self._store.clear(self.name)

    # -- sizes --------------------------------------------------------------------------------

    def qsize(self) -> int:
        """The number of ready items (an item whose lease expired counts again)."""
        return self._store.counts(self.name).ready

    def position(self, item_id: str) -> int | None:
        """How many ready items are ahead of the item with this id (None when it is not waiting)."""
        return self._store.rank(self.name, item_id)

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop renewing leases and put back, in their places, items got but not acknowledged."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            ids = list(self._leased)
            self._leased.clear()
            self._unfinished.clear()
            self._by_thread.clear()
        if ids and self._pid == current_pid():
            renewer().unregister(self._leases, *ids)
            self._store.release(self.name, ids, self._owner)
        self._store.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} maxsize={self.maxsize} at {self.url}>"


def _signature(cls: type) -> inspect.Signature:
    """What calling ``cls`` takes: its ``__init__``'s parameters (``__new__`` passes them on)."""
    init = inspect.signature(cls.__init__)  # type: ignore[misc]
    return init.replace(
        parameters=list(init.parameters.values())[1:], return_annotation=inspect.Signature.empty
    )


Queue.__signature__ = _signature(Queue)  # type: ignore[attr-defined]


class LifoQueue(Queue):
    """Last in, first out: every put goes to the front."""

    _front = True
    _needs = ("lifo",)


class PriorityQueue(Queue):
    """Lowest priority first; equal priorities come out in the order they were put.

    An item's priority is its first element when it is a tuple or list, as in
    ``q.put((1, 'job'))`` or ``q.put((('x', 1), 'job'))``, and otherwise the item itself. A priority
    is what ``queue.PriorityQueue`` can compare: an int, a float, a str, bytes, or a tuple of those
    (nested too) -- not NaN, not a bool. A top-level int must fit in 64 bits (ints inside tuples may
    be of any size).

    A put whose priority cannot be compared with those in the queue (a str where ints are) raises
    TypeError naming both types, and stores nothing. The check is by kind, position by position:
    the queue records in its options the shape of the priorities it holds (numbers, str, bytes, or
    tuples of those, the longest tuple seen), and each put reads that record -- one round trip --
    and widens it when needed. A queue that is empty (no item in any state) takes a priority of
    any shape, as ``queue.PriorityQueue`` would. So ``(1, 'a')`` and ``(2, 3)`` are not mixed,
    although Python compares them, as ``(1, 'a')`` and ``(1, 3)`` would fail. The record is read
    and written beside the push, not in the same store step: puts of different kinds that race
    into an empty queue from different handles may both go in; the store still orders them,
    numbers before str, bytes and tuples.
    """

    _needs = ("priority",)

    def _priority(self, item: Any) -> Priority:
        prio = item[0] if type(item) in (tuple, list) and item else item
        where = f" (the priority of item {item!r})"
        if kind(prio, where) != "number" and len(encode(prio)) > MAX_ENCODED:
            raise ValueError(
                f"a priority may take at most {MAX_ENCODED} bytes encoded, not "
                f"{len(encode(prio))}{where}: use a shorter key"
            )
        checked: Priority = prio
        if isinstance(prio, int) and not isinstance(prio, bool) and not -_INT64 <= prio < _INT64:
            raise ValueError(
                f"a priority must fit in 64 bits, not {prio}; put it in a tuple, as ({prio},), "
                f"for an int of any size"
            )
        return checked

    def _admit(self, priorities: list[Priority]) -> None:
        batch: Any = None
        for prio in priorities:
            new = shape(prio)
            if batch is not None:
                found = clash(batch, new)
                if found is not None:
                    raise self._clash(found, prio, "the other items put with it")
                new = merged(batch, new)
            batch = new
        held = self._store.queue_options(self.name).get(PRIORITY_SHAPE)
        if held is None and batch == "number":
            return  # numbers in a queue that never held anything else: nothing to record
        found = clash("number" if held is None else held, batch)
        if found is None:
            wider = batch if held is None else merged(held, batch)
            if wider != held:
                self._store.set_queue_options(self.name, **{PRIORITY_SHAPE: wider})
            return
        if self._store.counts(self.name).total:
            raise self._clash(found, priorities[0], f"the items in queue {self.name!r}")
        self._store.set_queue_options(self.name, **{PRIORITY_SHAPE: batch})

    @staticmethod
    def _clash(found: tuple[str, str], prio: Any, others: str) -> TypeError:
        held, new = (_KIND_NAMES.get(k, k) for k in found)
        return TypeError(
            f"priority {prio!r} cannot be compared with those of {others}: a {new} where they "
            f"have a {held} ('<' not supported between {new} and {held}); nothing was put -- use "
            f"priorities of one kind, or another queue"
        )


PRIORITY_SHAPE = "priority_shape"
"""The queue option in which a :class:`PriorityQueue` records the shape of its priorities."""
_KIND_NAMES = {"number": "number (int or float)"}
