"""The queue operations of the memory store: items in order, their leases, and change signals."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

from ...errors import Full
from .._rows import Row, RowStore
from .._splice import nearer_end, rotation, splice_args
from ..base import Counts, Item
from ._state import (
    LEASED,
    READY,
    SCHEDULED,
    WAITING,
    Entry,
    Key,
    QueueState,
    State,
    in_line,
    item_numbers,
    shared_state,
)

__all__ = ["MemoryQueues"]


class MemoryQueues(RowStore):
    """The queue part of the memory store; :class:`MemoryStore` adds coordination and jobs."""

    scheme: ClassVar[str] = "memory"
    shared_across_processes: ClassVar[bool] = False
    durable: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._state = shared_state(url)

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
                entry = Entry((in_line(prio), q.lo if front else 0, num), payload, task=task)
                if task is not None:
                    entry.created_at = now
                    st.where[num] = queue
                    st.count(queue, task, "enqueued")
                q.entries[num] = entry
                if delay > 0:
                    entry.state = SCHEDULED
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
                out.append(_lease(st, queue, q, key[2], owner, now, lease))
        if out:
            st.signal.notify()
        return out

    def claim(
        self,
        queue: str,
        owner: str,
        lease: float,
        ids: Sequence[str],
        takeover: Collection[str] = (),
    ) -> list[Item]:
        if not ids:
            return []
        st = self._state
        taking = set(item_numbers(list(takeover)))
        with st.lock:
            if st.options.get(queue, {}).get("paused"):
                return []
            q = st.existing(queue)
            now = time.time()
            q.promote(now)  # expired leases and due schedules are ready now
            out = []
            for num in dict.fromkeys(item_numbers(ids)):
                entry = q.entries.get(num)
                if entry is None:
                    continue
                if entry.state == READY:
                    q.ready.remove(entry.key)
                elif entry.state != LEASED or entry.owner == owner or num not in taking:
                    continue
                out.append(_lease(st, queue, q, num, owner, now, lease))
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
            for num in item_numbers(ids):
                entry = q.entries.get(num)
                if entry is None or entry.owner != owner or entry.state == SCHEDULED:
                    continue
                was_ready = entry.state == READY
                if how == "ack":
                    del q.entries[num]
                    st.where.pop(num, None)
                elif how == "extend":
                    entry.state = LEASED
                    q.set_due(num, entry, now + seconds)
                elif was_ready:  # release of an expired lease: it is already back in line
                    continue
                elif seconds > 0:
                    entry.state, entry.owner = SCHEDULED, None
                    q.set_due(num, entry, now + seconds)
                else:
                    entry.state, entry.owner = READY, None
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
            nums = item_numbers([item_id])
            entry = q.entries.get(nums[0]) if nums else None
            if entry is None or entry.state != READY:
                return None
            return int(q.ready.bisect_left(entry.key))

    def counts(self, queue: str) -> Counts:
        st = self._state
        with st.lock:
            q = st.existing(queue)
            q.promote(time.time())
            ready = len(q.ready)
            leased = sum(1 for e in q.entries.values() if e.state == LEASED)
            waiting = sum(1 for e in q.entries.values() if e.state == WAITING)
            return Counts(ready, leased, len(q.entries) - ready - leased - waiting, waiting)

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

    def rotate(self, queue: str, n: int) -> None:
        st = self._state
        with st.lock:
            q = st.existing(queue)
            q.promote(time.time())
            steps = rotation(n, lambda limit: len(q.ready))
            if steps > 0:
                for key in reversed(q.ready[-steps:]):
                    _to_front(q, key)
            elif steps < 0:
                for key in q.ready[:-steps]:
                    _to_back(st, queue, q, key)
        if steps:
            st.signal.notify()

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
        new = list(splice_args(index, delete, payloads, clamp, expect, maxlen).payloads)
        st = self._state
        with st.lock:
            q = st.existing(queue)  # kept (if new) once the splice is known to be valid
            q.promote(time.time())
            if expect is not None and [str(k[2]) for k in q.ready[: len(expect)]] != list(expect):
                return None
            front, moving = nearer_end(
                queue, index, delete, clamp, maxlen, len(new), lambda limit: len(q.ready)
            )
            if new:
                st.queues.setdefault(queue, q)
            at = moving if front else len(q.ready) - moving - delete
            removed = []
            for key in q.ready[at : at + delete]:
                q.ready.remove(key)
                entry = q.entries.pop(key[2])
                st.where.pop(key[2], None)
                removed.append(entry.item())
            if front:  # fewer items ahead than behind: move those ahead
                ahead = q.ready[:at]
                for payload in reversed(new):
                    q.lo -= 1
                    _place(q, Entry((0, q.lo, next(st.ids)), payload))
                for key in reversed(ahead):
                    _to_front(q, key)
            else:
                behind = q.ready[at:]
                for payload in new:
                    _place(q, Entry((0, 0, next(st.ids)), payload))
                for key in behind:
                    _to_back(st, queue, q, key)
        if new or removed:
            st.signal.notify()
        return removed

    def clear(self, queue: str) -> int:
        st = self._state
        with st.lock:
            q = st.queues.get(queue)
            if q is None:
                return 0
            removed = len(q.entries) + len(q.done)
            for num in [*q.entries, *q.done]:
                st.where.pop(num, None)
            st.queues[queue] = QueueState(lo=q.lo)
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

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        st = self._state
        removed = 0
        with st.lock:
            q = st.existing(queue)
            q.promote(time.time())
            for num in item_numbers(ids):
                entry = q.entries.get(num)
                if entry is None or entry.state == LEASED:
                    continue
                if entry.state == READY:
                    q.ready.remove(entry.key)
                del q.entries[num]
                st.where.pop(num, None)
                removed += 1
        if removed:
            st.signal.notify()
        return removed


def _lease(
    st: State, queue: str, q: QueueState, num: int, owner: str, now: float, lease: float
) -> Item:
    """Lease entry ``num`` of ``queue`` (out of the ready line already) to ``owner`` from
    ``now`` for ``lease`` seconds, counting its delivery and, for a job, its start; return it
    as handed out."""
    entry = q.entries[num]
    entry.state, entry.owner = LEASED, owner
    entry.deliveries += 1
    entry.started_at = now
    q.set_due(num, entry, now + lease)
    st.count(queue, entry.task, "started")
    return entry.item()


def _place(q: QueueState, entry: Entry) -> None:
    q.entries[entry.key[2]] = entry
    q.ready.add(entry.key)


def _to_front(q: QueueState, key: Key) -> None:
    """Move a ready item ahead of every other (it keeps its id: the sequence number orders it)."""
    q.ready.remove(key)
    entry = q.entries[key[2]]
    q.lo -= 1
    entry.key = (key[0], q.lo, key[2])
    q.ready.add(entry.key)


def _to_back(st: State, queue: str, q: QueueState, key: Key) -> None:
    """Move a ready item behind every other: a back push's key ends in its id, so a new id."""
    q.ready.remove(key)
    entry = q.entries.pop(key[2])
    num = next(st.ids)
    entry.key = (key[0], 0, num)
    if st.where.pop(key[2], None) is not None:
        st.where[num] = queue
    _place(q, entry)
