"""The job part of the memory store: records kept once a job is done, and the workers."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence

from ..base import COUNTED, STATUSES, JobRecord, Outcome, WorkerInfo
from ._state import FINISHED, LEASED, READY, SCHEDULED, Entry, QueueState, item_numbers
from .coord import MemoryCoordination

__all__ = ["MemoryStore"]


class MemoryStore(MemoryCoordination):
    def settle(self, queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float) -> int:
        st = self._state
        done = 0
        with st.lock:
            q = st.existing(queue)
            now = time.time()
            for o in outcomes:
                nums = item_numbers([o.id])
                entry = q.entries.get(nums[0]) if nums else None
                if entry is None or entry.owner != owner or entry.state == SCHEDULED:
                    continue
                num = nums[0]
                if entry.state == READY:  # its lease ran out, but nobody took it: still ours
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
                        entry.state = SCHEDULED
                        q.set_due(num, entry, now + retry_in)
                    else:
                        entry.state = READY
                        q.ready.add(entry.key)
                else:
                    entry.failures += o.status == "failed"
                    entry.state, entry.outcome, entry.result = FINISHED, o.status, o.result
                    entry.finished_at, entry.expires_at = now, now + ttl
                    q.done[num] = q.entries.pop(num)
                    st.count(queue, entry.task, o.status)
                done += 1
        if done:
            st.signal.notify()
        return done

    def _job(self, job_id: str) -> tuple[QueueState, int, Entry] | None:
        nums = item_numbers([job_id])
        name = self._state.where.get(nums[0]) if nums else None
        if name is None:
            return None
        q = self._state.queue(name)
        entry = q.entries.get(nums[0]) or q.done.get(nums[0])
        return (q, nums[0], entry) if entry is not None else None

    def cancel(self, job_id: str, ttl: float = 86400.0, *, running: bool = True) -> bool:
        st = self._state
        with st.lock:
            found = self._job(job_id)
            if found is None:
                return False
            q, num, entry = found
            q.promote(time.time())
            if num not in q.entries:
                return False  # finished
            if not running and entry.state == LEASED and entry.due > time.time():
                return False
            if entry.state == READY:
                q.ready.remove(entry.key)
            now = time.time()
            entry.state, entry.outcome, entry.finished_at = FINISHED, "cancelled", now
            entry.expires_at, entry.owner = now + ttl, None  # a running one's lease ends here
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
            entry.state, entry.outcome, entry.result, entry.error = READY, None, None, None
            entry.finished_at, entry.failures, entry.owner = None, 0, None
            entry.deliveries = 0  # retried by hand: it starts over
            q.entries[num] = q.done.pop(num)
            q.ready.add(entry.key)
        st.signal.notify()
        return True

    def _record(self, num: int, entry: Entry, now: float) -> JobRecord:
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

    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        held: Counter[str] = Counter()
        now = time.time()
        with self._state.lock:
            for name in set(queues):
                for entry in self._state.existing(name).entries.values():
                    if entry.state == LEASED and entry.due > now and entry.owner is not None:
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
