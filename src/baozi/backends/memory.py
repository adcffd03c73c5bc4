"""``memory://[name]``: queues in this process's memory, shared by every handle with the same URL.

First-class for tests and single-process programs: the same contract as the other stores, minus
durability. Ranks are O(log n) through a sorted list of keys.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from sortedcontainers import SortedList

from ..errors import Full
from ._coord import add_number, book
from ._rows import Row, RowStore
from ._signal import ChangeSignal
from .base import (
    CLAIM_TTL,
    COUNTED,
    STATUSES,
    Counts,
    Item,
    JobRecord,
    Outcome,
    Priority,
    WorkerInfo,
)

__all__ = ["MemoryStore"]

_READY, _LEASED, _SCHEDULED, _FINISHED = 0, 1, 2, -1
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
    # the record a job keeps
    task: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float = 0.0
    failures: int = 0
    outcome: str | None = None
    result: bytes | None = None
    error: str | None = None
    progress: str | None = None

    def status(self, now: float) -> str:
        if self.outcome is not None:
            return self.outcome
        if self.state == _READY or self.due <= now:
            return "queued"
        return "running" if self.state == _LEASED else "scheduled"

    def item(self) -> Item:
        key = self.key
        return Item(str(key[2]), self.payload, key[0], self.deliveries, self.task, self.failures)


@dataclass(slots=True)
class _Queue:
    ready: SortedList = field(default_factory=SortedList)
    entries: dict[int, _Entry] = field(default_factory=dict)  # live items
    done: dict[int, _Entry] = field(default_factory=dict)  # finished jobs, kept as records
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
        self.where: dict[int, str] = {}  # job id -> queue name
        self.options: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, tuple[WorkerInfo, float]] = {}  # id -> (info, expires)
        self.kv: dict[str, dict[str, bytes]] = {}
        self.slots: dict[str, dict[str, float]] = {}  # name -> holder -> expires
        self.rates: dict[str, float] = {}  # name -> theoretical arrival time of the next event
        self.grants: dict[str, dict[str, float]] = {}  # rate name -> ticket -> booked time
        self.waiters: dict[str, dict[int, str]] = {}  # slot -> job waiting for it -> its queue
        self.totals: dict[str, Counter[tuple[str, str]]] = {}  # queue -> (task, event) -> n

    def queue(self, name: str) -> _Queue:
        """The queue, made if it is new: for writes."""
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = _Queue()
        return q

    def existing(self, name: str) -> _Queue:
        """The queue, or an empty one that is not kept: for reads, which make nothing."""
        return self.queues.get(name) or _Queue()

    def count(self, queue: str, task: str | None, event: str, n: int = 1) -> None:
        if task is not None:
            self.totals.setdefault(queue, Counter())[task, event] += n


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _ids(ids: Sequence[str]) -> list[int]:
    """The ids this store could have issued, as numbers: written as it writes them ("10", not
    "1_0", "+10", " 10" or other scripts' digits, which int() reads as 10 too)."""
    out = []
    for i in ids:
        if isinstance(i, str) and 0 < len(i) <= 30 and i.isascii() and i.isdigit():
            if i != str(int(i)):
                continue
            out.append(int(i))
    return out


class MemoryStore(RowStore):
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

    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
    ) -> list[str]:
        st = self._state
        with st.lock:
            q = st.queue(queue)
            now = time.time()
            q.promote(now)
            if maxsize and len(q.ready) + len(rows) > maxsize:
                raise Full(f"queue {queue!r} holds {len(q.ready)} of at most {maxsize} ready items")
            ids = []
            for prio, payload, task in rows:
                num = next(st.ids)
                if front:
                    q.lo -= 1
                entry = _Entry((prio, q.lo if front else 0, num), payload, task=task)
                if task is not None:
                    entry.created_at = now
                    st.where[num] = queue
                    st.count(queue, task, "enqueued")
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
        if rows:
            st.signal.notify()
        return ids

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        st = self._state
        with st.lock:
            q = st.existing(queue)
            now = time.time()
            q.promote(now)
            out = []
            if st.options.get(queue, {}).get("paused"):
                n = 0
            for _ in range(min(n, len(q.ready))):
                key = q.ready.pop(0)
                entry = q.entries[key[2]]
                entry.state, entry.owner = _LEASED, owner
                entry.deliveries += 1
                entry.started_at = now
                q.set_due(key[2], entry, now + lease)
                st.count(queue, entry.task, "started")
                out.append(entry.item())
        if out:
            st.signal.notify()
        return out

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        st = self._state
        with st.lock:
            q = st.existing(queue)
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
            q = st.existing(queue)
            now = time.time()
            for num in _ids(ids):
                entry = q.entries.get(num)
                if entry is None or entry.owner != owner or entry.state == _SCHEDULED:
                    continue
                was_ready = entry.state == _READY
                if how == "ack":
                    del q.entries[num]
                    st.where.pop(num, None)
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
            q = st.existing(queue)
            q.promote(time.time())
            nums = _ids([item_id])
            entry = q.entries.get(nums[0]) if nums else None
            if entry is None or entry.state != _READY:
                return None
            return int(q.ready.bisect_left(entry.key))

    def counts(self, queue: str) -> Counts:
        st = self._state
        with st.lock:
            q = st.existing(queue)
            q.promote(time.time())
            ready = len(q.ready)
            leased = sum(1 for e in q.entries.values() if e.state == _LEASED)
            return Counts(ready, leased, len(q.entries) - ready - leased)

    def next_due(self, queue: str) -> float | None:
        with self._state.lock:
            return self._state.existing(queue).next_due()

    def peek(self, queue: str, index: int) -> Item:
        with self._state.lock:
            q = self._state.existing(queue)
            q.promote(time.time())
            try:
                key = q.ready[index]
            except IndexError:
                raise IndexError(f"queue {queue!r} has no item at index {index}") from None
            return q.entries[key[2]].item()

    def snapshot(self, queue: str) -> list[Item]:
        with self._state.lock:
            q = self._state.existing(queue)
            q.promote(time.time())
            return [q.entries[key[2]].item() for key in q.ready]

    def clear(self, queue: str) -> int:
        st = self._state
        with st.lock:
            q = st.queues.get(queue)
            if q is None:
                return 0
            removed = len(q.entries) + len(q.done)
            for num in [*q.entries, *q.done]:
                st.where.pop(num, None)
            st.queues[queue] = _Queue(lo=q.lo)
        st.signal.notify()
        return removed

    def change_token(self) -> int:
        return self._state.signal.token()

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        return self._state.signal.listen(callback)

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._state.signal.wait(token, timeout)

    def queue_options(self, queue: str) -> dict[str, Any]:
        with self._state.lock:
            return dict(self._state.options.get(queue, {}))

    def set_queue_options(self, queue: str, **options: Any) -> None:
        with self._state.lock:
            self._state.options.setdefault(queue, {}).update(options)
        self._state.signal.notify()

    # -- jobs ---------------------------------------------------------------------------------

    def settle(self, queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float) -> int:
        st = self._state
        done = 0
        with st.lock:
            q = st.existing(queue)
            now = time.time()
            for o in outcomes:
                nums = _ids([o.id])
                entry = q.entries.get(nums[0]) if nums else None
                if entry is None or entry.owner != owner or entry.state == _SCHEDULED:
                    continue
                num = nums[0]
                if entry.state == _READY:  # its lease ran out, but nobody took it: still ours
                    q.ready.remove(entry.key)
                entry.owner = None
                entry.stamp += 1
                if o.status == "deferred":
                    entry.deliveries = max(entry.deliveries - 1, 0)
                else:
                    entry.error = o.error
                retry_in = o.retry_in
                if o.status == "deferred" and o.slot is not None:
                    if len(self._live_slots(o.slot, now)) < o.slot_limit:
                        retry_in = 0.0  # the slot freed meanwhile: try again at once
                    else:
                        st.waiters.setdefault(o.slot, {})[num] = queue
                if o.status in ("retry", "deferred"):
                    entry.failures += o.status == "retry"
                    if retry_in > 0:
                        entry.state = _SCHEDULED
                        q.set_due(num, entry, now + retry_in)
                    else:
                        entry.state = _READY
                        q.ready.add(entry.key)
                else:
                    entry.failures += o.status == "failed"
                    entry.state, entry.outcome, entry.result = _FINISHED, o.status, o.result
                    entry.finished_at, entry.expires_at = now, now + ttl
                    q.done[num] = q.entries.pop(num)
                    st.count(queue, entry.task, o.status)
                done += 1
        if done:
            st.signal.notify()
        return done

    def _job(self, job_id: str) -> tuple[_Queue, int, _Entry] | None:
        nums = _ids([job_id])
        name = self._state.where.get(nums[0]) if nums else None
        if name is None:
            return None
        q = self._state.queue(name)
        entry = q.entries.get(nums[0]) or q.done.get(nums[0])
        return (q, nums[0], entry) if entry is not None else None

    def cancel(self, job_id: str, ttl: float = 86400.0) -> bool:
        st = self._state
        with st.lock:
            found = self._job(job_id)
            if found is None:
                return False
            q, num, entry = found
            q.promote(time.time())
            if num not in q.entries or entry.state == _LEASED:
                return False
            if entry.state == _READY:
                q.ready.remove(entry.key)
            now = time.time()
            entry.state, entry.outcome, entry.finished_at = _FINISHED, "cancelled", now
            entry.expires_at = now + ttl
            entry.stamp += 1
            q.done[num] = q.entries.pop(num)
            st.count(st.where[num], entry.task, "cancelled")
        st.signal.notify()
        return True

    def requeue(self, job_id: str) -> bool:
        st = self._state
        with st.lock:
            found = self._job(job_id)
            if found is None or found[2].outcome not in ("failed", "cancelled"):
                return False
            q, num, entry = found
            entry.state, entry.outcome, entry.result, entry.error = _READY, None, None, None
            entry.finished_at, entry.failures, entry.owner = None, 0, None
            entry.deliveries = 0  # retried by hand: it starts over
            q.entries[num] = q.done.pop(num)
            q.ready.add(entry.key)
        st.signal.notify()
        return True

    def _record(self, num: int, entry: _Entry, now: float) -> JobRecord:
        assert entry.task is not None
        return JobRecord(
            str(num),
            self._state.where[num],
            entry.task,
            entry.status(now),
            entry.key[0],
            entry.payload,
            entry.deliveries,
            entry.failures,
            entry.created_at,
            entry.started_at,
            entry.finished_at,
            entry.result,
            entry.error,
            entry.progress,
        )

    def record(self, job_id: str) -> JobRecord | None:
        with self._state.lock:
            found = self._job(job_id)
            return None if found is None else self._record(found[1], found[2], time.time())

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        now = time.time()
        out = {}
        with self._state.lock:
            for job_id in job_ids:
                found = self._job(job_id)
                if found is not None:
                    out[job_id] = found[2].status(now)
        return out

    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        st = self._state
        now = time.time()
        with st.lock:
            nums = sorted(
                (n for n, name in st.where.items() if queue in (None, name)), reverse=True
            )
            out = []
            for num in nums:
                found = self._job(str(num))
                if found is None:
                    continue
                rec = self._record(num, found[2], now)
                if status in (None, rec.status):
                    out.append(rec)
            return out[offset : offset + limit]

    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        with self._state.lock:
            found = self._job(job_id)
            if found is None or found[2].owner != owner or found[2].outcome is not None:
                return False
            found[2].progress = progress
        self._state.signal.notify()
        return True

    def job_counts(self, queue: str) -> dict[str, int]:
        counts = self.counts(queue)
        out = dict.fromkeys(STATUSES, 0)
        out.update(scheduled=counts.scheduled, queued=counts.ready, running=counts.leased)
        with self._state.lock:
            for entry in self._state.existing(queue).done.values():
                out[entry.outcome or "succeeded"] += 1
        return out

    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._state.lock:
            for (task, event), n in self._state.totals.get(queue, Counter()).items():
                out.setdefault(task, dict.fromkeys(COUNTED, 0))[event] = n
        return out

    def queues(self) -> list[str]:
        with self._state.lock:
            return sorted(set(self._state.queues) | set(self._state.options))

    def has_queue(self, queue: str) -> bool:
        with self._state.lock:
            return queue in self._state.queues or queue in self._state.options

    def delete_queue(self, queue: str) -> bool:
        st = self._state
        with st.lock:
            q = st.queues.get(queue)
            if (q is None and queue not in st.options) or (q is not None and (q.entries or q.done)):
                return False
            st.queues.pop(queue, None)
            st.options.pop(queue, None)
            st.totals.pop(queue, None)
        st.signal.notify()
        return True

    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        held: Counter[str] = Counter()
        now = time.time()
        with self._state.lock:
            for name in set(queues):
                for entry in self._state.existing(name).entries.values():
                    if entry.state == _LEASED and entry.due > now and entry.owner is not None:
                        held[entry.owner] += 1
        return dict(held)

    def purge_expired(self) -> int:
        st = self._state
        now = time.time()
        removed = 0
        with st.lock:
            for q in st.queues.values():
                for num in [n for n, e in q.done.items() if e.expires_at <= now]:
                    del q.done[num]
                    st.where.pop(num, None)
                    removed += 1
        return removed

    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        now = time.time()
        with self._state.lock:
            self._state.workers[worker.id] = (dataclasses.replace(worker, last_seen=now), now + ttl)

    def workers(self) -> list[WorkerInfo]:
        now = time.time()
        with self._state.lock:
            return [
                w
                for w, expires in sorted(self._state.workers.values(), key=lambda x: x[0].id)
                if expires > now
            ]

    def forget_worker(self, worker_id: str) -> None:
        with self._state.lock:
            self._state.workers.pop(worker_id, None)

    # -- coordination -------------------------------------------------------------------------

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
        best: tuple[Any, int, _Queue, _Entry] | None = None
        for num, queue in list(waiting.items()):
            q = st.queues.get(queue)
            entry = q.entries.get(num) if q is not None else None
            if entry is None or entry.state != _SCHEDULED:
                del waiting[num]  # it ran, or went: nothing to wake
                continue
            if best is None or entry.key < best[0]:
                best = (entry.key, num, q, entry)  # type: ignore[assignment]
        if best is None:
            return None
        _, num, q, entry = best
        del waiting[num]
        entry.state = _READY
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

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        st = self._state
        removed = 0
        with st.lock:
            q = st.existing(queue)
            q.promote(time.time())
            for num in _ids(ids):
                entry = q.entries.get(num)
                if entry is None or entry.state == _LEASED:
                    continue
                if entry.state == _READY:
                    q.ready.remove(entry.key)
                del q.entries[num]
                st.where.pop(num, None)
                removed += 1
        if removed:
            st.signal.notify()
        return removed
