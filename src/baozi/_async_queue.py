"""Waiting on a queue from asyncio code without a thread per waiter.

A queue handle keeps one :class:`ChangeFanout`: while any coroutine waits, it listens to the
store's change signal (:meth:`QueueStore.on_change`) and sets each waiter's asyncio event through
``loop.call_soon_threadsafe``. Getters of one handle on one loop line up behind one
:class:`Getters` pump, which takes as many items as there are waiters in one store step and hands
them out in arrival order; a waiter that is cancelled or times out leaves its place, and an item
that finds no waiter goes back to the queue at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .backends.base import Item

if TYPE_CHECKING:
    from .backends.base import Store

_IDLE_CAP = 60.0  # as the blocking wait: re-check now and then, a clock may have jumped


class ChangeFanout:
    """One store change listener for many asyncio events, registered only while one is waited on."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()  # guards the events; the store's thread takes it too
        self._turn = threading.Lock()  # one registration or removal of the listener at a time
        self._events: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}
        self._stop: Callable[[], None] | None = None

    async def listen(self) -> asyncio.Event:
        """A new event, set on every change of the store from now until :meth:`forget`."""
        event = asyncio.Event()
        with self._lock:
            self._events[event] = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._update)  # subscribing may take a round trip
        except BaseException:
            self.forget(event)
            raise
        return event

    def forget(self, event: asyncio.Event) -> None:
        with self._lock:
            self._events.pop(event, None)
        self._update()

    def _update(self) -> None:
        # Outside self._lock: a store may call back while the listener is being registered.
        with self._turn:
            with self._lock:
                wanted = bool(self._events)
            if wanted and self._stop is None:
                self._stop = self._store.on_change(self._changed)
            elif not wanted and self._stop is not None:
                self._stop()
                self._stop = None

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._events.items())
        for event, loop in listeners:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its waiter is gone
                pass


async def wait_change(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` pass, whichever comes first."""
    try:
        await asyncio.wait_for(event.wait(), max(seconds, 0.0))
    except TimeoutError:
        pass


async def wait_either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    """Wait until either event is set or ``seconds`` pass."""
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def wait_seconds(deadline: float | None, due: float | None) -> float:
    """How long to sleep before the next attempt: until the deadline, a due lease, or the cap."""
    wait = _IDLE_CAP if deadline is None else deadline - time.monotonic()
    if due is not None:
        wait = min(wait, due - time.time() + 0.001)
    return wait


class Getters:
    """The getters of one queue handle on one event loop, served in arrival order.

    ``take(n)`` reserves up to ``n`` items for the handle (leased to it, renewed, put back by its
    ``close()``); ``give_back`` releases items no waiter took; ``next_due`` is the store's.
    """

    def __init__(
        self,
        fanout: ChangeFanout,
        take: Callable[[int], list[Item]],
        give_back: Callable[[list[Item]], None],
        next_due: Callable[[], float | None],
    ) -> None:
        self._fanout = fanout
        self._take = take
        self._give_back = give_back
        self._next_due = next_due
        self._waiters: deque[asyncio.Future[Item]] = deque()
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._trying = False  # a waiter is trying at once, ahead of the line

    async def get(self, timeout: float | None) -> Item:
        """The next item for this waiter; raises TimeoutError when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._trying and not any(not w.done() for w in self._waiters):
            self._trying = True  # nobody ahead: try at once, as get() does
            try:
                items, _ = await self._step(1)
            finally:
                self._trying = False
            if items:
                return items[0]
        waiter: asyncio.Future[Item] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._pump is None or self._pump.done():
            self._wake = asyncio.Event()
            self._pump = asyncio.ensure_future(self._run(self._wake))
        else:
            assert self._wake is not None
            self._wake.set()
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            await asyncio.wait((waiter,), timeout=left)
        except asyncio.CancelledError:
            self._leave(waiter)
            raise
        if not waiter.done():
            self._leave(waiter)
            raise TimeoutError
        return waiter.result()

    def _leave(self, waiter: asyncio.Future[Item]) -> None:
        # A waiter handed an item at the moment it gave up puts the item back.
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self._give_back_soon([waiter.result()])
        waiter.cancel()

    def _give_back_soon(self, items: list[Item]) -> None:
        """Release items from a thread of the loop's, without waiting (the loop may be ending:
        it waits for its threads before it closes)."""
        asyncio.get_running_loop().run_in_executor(None, self._give_back, items)

    async def _step(self, n: int) -> tuple[list[Item], float | None]:
        """Take up to ``n`` items in a thread; if the caller is cancelled meanwhile, whatever the
        step takes goes back."""
        handoff = _Handoff()
        step = asyncio.ensure_future(asyncio.to_thread(self._attempt, n, handoff))
        try:
            return await asyncio.shield(step)
        except asyncio.CancelledError:
            taken = handoff.abandon()
            if taken:
                self._give_back_soon(taken)
            raise

    async def _run(self, wake: asyncio.Event) -> None:
        changed = None
        try:
            changed = await self._fanout.listen()
            while True:
                while self._waiters and self._waiters[0].done():
                    self._waiters.popleft()
                live = [w for w in self._waiters if not w.done()]
                if not live:
                    return
                wake.clear()  # before the attempt: a change during it wakes the next round
                changed.clear()
                items, due = await self._step(len(live))
                spare = []
                for item in items:
                    while self._waiters and self._waiters[0].done():
                        self._waiters.popleft()
                    if self._waiters:
                        self._waiters.popleft().set_result(item)
                    else:
                        spare.append(item)
                if spare:
                    await asyncio.to_thread(self._give_back, spare)
                if len(items) < len(live):
                    await wait_either(wake, changed, wait_seconds(None, due))
        except Exception as exc:  # the store failed, or the handle was closed: tell every waiter
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            self._waiters.clear()
        finally:
            if changed is not None:
                self._fanout.forget(changed)

    def _attempt(self, n: int, handoff: _Handoff) -> tuple[list[Item], float | None]:
        items = self._take(n)
        if not handoff.deliver(items):
            self._give_back(items)
            return [], None
        return items, (None if len(items) == n else self._next_due())


class _Handoff:
    """Items a store step took, between its thread and a pump that may be cancelled meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._items: list[Item] = []

    def deliver(self, items: list[Item]) -> bool:
        """Called by the step: False when the pump is gone, so the step gives the items back."""
        with self._lock:
            self._items = items
            return not self._abandoned

    def abandon(self) -> list[Item]:
        """Called by a cancelled pump: the items the step delivered already, for it to give back."""
        with self._lock:
            self._abandoned = True
            items, self._items = self._items, []
            return items
