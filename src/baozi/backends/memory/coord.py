"""The coordination part of the memory store: keys and values, slots, rate limits."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from typing import Any

from .._coord import add_as, add_number, add_to_tail, book, with_tail
from ..base import CLAIM_TTL
from ._state import READY, SCHEDULED, Entry, QueueState
from .store import MemoryQueues

__all__ = ["MemoryCoordination"]


class MemoryCoordination(MemoryQueues):
    def kv_get(self, ns: str, key: str) -> bytes | None:
        with self._state.lock:
            return self._state.kv.get(ns, {}).get(key)

    def kv_items(self, ns: str) -> dict[str, bytes]:
        with self._state.lock:
            return dict(self._state.kv.get(ns, {}))

    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        st = self._state
        with st.lock:
            st.kv.setdefault(ns, {})[key] = bytes(value)
        st.signal.notify()

    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        with self._state.lock:
            return self._state.kv.setdefault(ns, {}).setdefault(key, bytes(value))

    def kv_delete(self, ns: str, key: str) -> bytes | None:
        st = self._state
        with st.lock:
            old = st.kv.get(ns, {}).pop(key, None)
        if old is not None:
            st.signal.notify()
        return old

    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        st = self._state
        with st.lock:
            space = st.kv.setdefault(ns, {})
            if space.get(key) != expected:
                return False
            if value is None:
                space.pop(key, None)
            else:
                space[key] = bytes(value)
        st.signal.notify()
        return True

    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        with self._state.lock:
            space = self._state.kv.setdefault(ns, {})
            total = add_number(space.get(key), amount, key)
            space[key] = json.dumps(total).encode()
            return total

    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        with self._state.lock:
            space = self._state.kv.setdefault(ns, {})
            total = add_as(space.get(key), amount, kind, key)
            space[key] = json.dumps(total).encode()
            return total

    def kv_set_tail(self, ns: str, key: str, head: bytes, tail: bytes) -> None:
        st = self._state
        with st.lock:
            space = st.kv.setdefault(ns, {})
            space[key] = with_tail(space.get(key), head, tail)
        st.signal.notify()

    def kv_incr_tail(self, ns: str, key: str, head: bytes, amount: int | float) -> int | float:
        with self._state.lock:
            space = self._state.kv.setdefault(ns, {})
            space[key], total = add_to_tail(space.get(key), head, amount, key)
            return total

    def kv_clear(self, ns: str) -> int:
        st = self._state
        with st.lock:
            removed = len(st.kv.pop(ns, {}))
        if removed:
            st.signal.notify()
        return removed

    def _live_slots(self, name: str, now: float) -> dict[str, float]:
        slots = self._state.slots.setdefault(name, {})
        for holder in [h for h, until in slots.items() if until <= now]:
            del slots[holder]
        return slots

    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        with self._state.lock:
            now = time.time()
            slots = self._live_slots(name, now)
            kept = claim is not None and slots.pop(f"claim:{claim}", 0.0) > 0  # kept for it
            if kept or holder in slots or len(slots) < limit:
                slots[holder] = now + ttl
                return None
            return max(min(slots.values()) - now, 0.0)

    def release_slot(self, name: str, holder: str) -> bool:
        st = self._state
        with st.lock:
            now = time.time()
            slots = self._live_slots(name, now)
            held = slots.pop(holder, None) is not None
            woke = self._wake_waiter(name, now)
            if held and woke:
                slots[f"claim:{woke}"] = now + CLAIM_TTL
        if held or woke:
            st.signal.notify()
        return held

    def _wake_waiter(self, slot: str, now: float) -> str | None:
        """Make the first job waiting for ``slot`` (in queue order) ready now; return its id."""
        st = self._state
        waiting = st.waiters.get(slot)
        if not waiting:
            return None
        best: tuple[Any, int, QueueState, Entry] | None = None
        for num, queue in list(waiting.items()):
            q = st.queues.get(queue)
            entry = q.entries.get(num) if q is not None else None
            if entry is None or entry.state != SCHEDULED:
                del waiting[num]  # it ran, or went: nothing to wake
                continue
            if best is None or entry.key < best[0]:
                best = (entry.key, num, q, entry)  # type: ignore[assignment]
        if best is None:
            return None
        _, num, q, entry = best
        del waiting[num]
        entry.state = READY
        entry.stamp += 1
        q.ready.add(entry.key)
        return str(num)

    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        with self._state.lock:
            now = time.time()
            slots = self._live_slots(name, now)
            renewed = [h for h in holders if h in slots]
            for h in renewed:
                slots[h] = now + ttl
            return len(renewed)

    def slot_holders(self, name: str) -> list[str]:
        with self._state.lock:
            return sorted(self._live_slots(name, time.time()))

    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        st = self._state
        with st.lock:
            now = time.time()
            grants = st.grants.setdefault(name, {})
            grant = grants.pop(ticket, None) if ticket is not None else None
            wait, tat, booked = book(
                st.rates.get(name), grant, now, interval, burst, ticket is not None
            )
            if tat is not None:
                st.rates[name] = tat
            if booked is not None and ticket is not None:
                grants[ticket] = booked
            if len(grants) > 1000 and random.random() < 0.01:  # bookings of jobs that went
                for t in [t for t, at in grants.items() if at < now - 600]:
                    del grants[t]
            return wait
