"""``memory://[name]``: queues in this process's memory, shared by every handle with the same URL.

First-class for tests and single-process programs: the same contract as the other stores, minus
durability. Ranks are O(log n) through a sorted list of keys.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from sortedcontainers import SortedList

from ..errors import Full
from ._signal import ChangeSignal
from .base import Counts, Item, Priority, Store

__all__ = ["MemoryStore"]

_READY, _LEASED, _SCHEDULED = 0, 1, 2
_Key = tuple[Priority, int, int]


@dataclass(slots=True)
class _Entry:
    key: _Key
    payload: bytes
    state: int = _READY
    due: float = 0.0
    owner: str | None = None
    deliveries: int = 0
    stamp: int = 0  # bumped whenever ``due`` changes, to skip stale heap entries

    def item(self) -> Item:
        return Item(str(self.key[2]), self.payload, self.key[0], self.deliveries)


@dataclass(slots=True)
class _Queue:
    ready: SortedList = field(default_factory=SortedList)
    entries: dict[int, _Entry] = field(default_factory=dict)
    timers: list[tuple[float, int, int]] = field(default_factory=list)  # (due, id, stamp) heap
    lo: int = 0

    def set_due(self, num: int, entry: _Entry, due: float) -> None:
        entry.due = due
        entry.stamp += 1
        heapq.heappush(self.timers, (due, num, entry.stamp))

    def promote(self, now: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= now:
            due, num, stamp = heapq.heappop(timers)
            entry = self.entries.get(num)
            if entry is not None and entry.stamp == stamp and entry.state != _READY:
                entry.state = _READY
                self.ready.add(entry.key)

    def next_due(self) -> float | None:
        timers = self.timers
        while timers:
            due, num, stamp = timers[0]
            entry = self.entries.get(num)
            if entry is not None and entry.stamp == stamp and entry.state != _READY:
                return due
            heapq.heappop(timers)
        return None


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.queues: dict[str, _Queue] = {}
        self.ids = itertools.count(1)
        self.signal = ChangeSignal()

    def queue(self, name: str) -> _Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = _Queue()
        return q


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _ids(ids: Sequence[str]) -> list[int]:
    out = []
    for i in ids:
        try:
            out.append(int(i))
        except (TypeError, ValueError):
            continue  # an id this store never issued: nothing to settle
    return out


class MemoryStore(Store):
    scheme: ClassVar[str] = "memory"
    shared_across_processes: ClassVar[bool] = False
    durable: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        name = (parts.netloc + parts.path).strip("/")
        with _STATES_LOCK:
            state = _STATES.get(name)
            if state is None:
                state = _STATES[name] = _State()
        self._state = state

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
        n = len(payloads)
        prios = [priorities] * n if isinstance(priorities, (int, float)) else list(priorities)
        st = self._state
        with st.lock:
            q = st.queue(queue)
            now = time.time()
            q.promote(now)
            if maxsize and len(q.ready) + n > maxsize:
                raise Full(f"queue {queue!r} holds {len(q.ready)} of at most {maxsize} ready items")
            ids = []
            for payload, prio in zip(payloads, prios, strict=True):
                num = next(st.ids)
                if front:
                    q.lo -= 1
                entry = _Entry((prio, q.lo if front else 0, num), payload)
                q.entries[num] = entry
                if delay > 0:
                    entry.state = _SCHEDULED
                    q.set_due(num, entry, now + delay)
                else:
                    q.ready.add(entry.key)
                ids.append(str(num))
            if maxlen is not None:
                while len(q.ready) > maxlen:
                    key = q.ready.pop(-1 if front else 0)
                    del q.entries[key[2]]
        st.signal.notify()
        return ids

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            now = time.time()
            q.promote(now)
            out = []
            for _ in range(min(n, len(q.ready))):
                key = q.ready.pop(0)
                entry = q.entries[key[2]]
                entry.state, entry.owner = _LEASED, owner
                entry.deliveries += 1
                q.set_due(key[2], entry, now + lease)
                out.append(entry.item())
        if out:
            st.signal.notify()
        return out

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            q.promote(time.time())
            out = []
            for _ in range(min(n, len(q.ready))):
                key = q.ready.pop(-1 if back else 0)
                out.append(q.entries.pop(key[2]).item())
        if out:
            st.signal.notify()
        return out

    def _settle(self, queue: str, ids: Sequence[str], owner: str, how: str, seconds: float) -> int:
        st = self._state
        done = 0
        with st.lock:
            q = st.queue(queue)
            now = time.time()
            for num in _ids(ids):
                entry = q.entries.get(num)
                if entry is None or entry.owner != owner or entry.state == _SCHEDULED:
                    continue
                was_ready = entry.state == _READY
                if how == "ack":
                    del q.entries[num]
                elif how == "extend":
                    entry.state = _LEASED
                    q.set_due(num, entry, now + seconds)
                elif was_ready:  # release of an expired lease: it is already back in line
                    continue
                elif seconds > 0:
                    entry.state, entry.owner = _SCHEDULED, None
                    q.set_due(num, entry, now + seconds)
                else:
                    entry.state, entry.owner = _READY, None
                    entry.stamp += 1
                    q.ready.add(entry.key)
                if was_ready and how != "release":
                    q.ready.remove(entry.key)
                done += 1
        if done:
            st.signal.notify()
        return done

    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        return self._settle(queue, ids, owner, "ack", 0.0)

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        return self._settle(queue, ids, owner, "release", delay)

    def extend(self, queue: str, ids: Sequence[str], owner: str, lease: float) -> int:
        return self._settle(queue, ids, owner, "extend", lease)

    def rank(self, queue: str, item_id: str) -> int | None:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            q.promote(time.time())
            nums = _ids([item_id])
            entry = q.entries.get(nums[0]) if nums else None
            if entry is None or entry.state != _READY:
                return None
            return int(q.ready.bisect_left(entry.key))

    def counts(self, queue: str) -> Counts:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            q.promote(time.time())
            ready = len(q.ready)
            leased = sum(1 for e in q.entries.values() if e.state == _LEASED)
            return Counts(ready, leased, len(q.entries) - ready - leased)

    def next_due(self, queue: str) -> float | None:
        with self._state.lock:
            return self._state.queue(queue).next_due()

    def peek(self, queue: str, index: int) -> Item:
        with self._state.lock:
            q = self._state.queue(queue)
            q.promote(time.time())
            try:
                key = q.ready[index]
            except IndexError:
                raise IndexError(f"queue {queue!r} has no item at index {index}") from None
            return q.entries[key[2]].item()

    def snapshot(self, queue: str) -> list[Item]:
        with self._state.lock:
            q = self._state.queue(queue)
            q.promote(time.time())
            return [q.entries[key[2]].item() for key in q.ready]

    def clear(self, queue: str) -> int:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            removed = len(q.entries)
            st.queues[queue] = _Queue(lo=q.lo)
        st.signal.notify()
        return removed

    def change_token(self) -> int:
        return self._state.signal.token()

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._state.signal.wait(token, timeout)
