"""The job part of the memory store: records kept once a job is done, and the workers."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence

from ...errors import JobNotFound
from .._across import Group, bounded, check_groups, over
from .._pages import check_page, cursor_of, key_of, matches
from ..base import (
    COUNTED,
    STATUSES,
    Deduplicated,
    JobPlace,
    JobRecord,
    NewJob,
    Outcome,
    WorkerInfo,
    dependency_error,
    kept_for,
    unique_holds,
)
from ._state import (
    FINISHED,
    LEASED,
    READY,
    SCHEDULED,
    WAITING,
    Entry,
    Key,
    QueueState,
    item_numbers,
)
from .coord import MemoryCoordination

__all__ = ["MemoryStore"]


class MemoryStore(MemoryCoordination):
    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        pending: float | None = None,
    ) -> list[str]:
        if pending is not None:
            with self._state.lock:  # the jobs and their marks in one step
                ids = self.enqueue(queue, jobs, front=front, delay=delay, maxsize=maxsize)
                filed = [int(i) for i in ids if not isinstance(i, Deduplicated)]
                if filed:
                    q = self._state.queue(queue)
                    for num in filed:
                        q.set_mark(num, float(pending))
            return ids
        if all(j.unique_key is None and not j.depends_on for j in jobs):
            return self._enqueue_rows(queue, jobs, front, delay, maxsize)
        st = self._state
        with st.lock:
            now = time.time()
            parents = [self._parents(j) for j in jobs]  # raises before anything is filed
            taken: dict[str, int] = {}  # unique key -> index of the job of this call holding it
            fresh: list[int] = []
            for i, j in enumerate(jobs):
                if j.unique_key is None:
                    fresh.append(i)
                elif j.unique_key not in taken and self._holder(j.unique_key, now) is None:
                    taken[j.unique_key] = i
                    fresh.append(i)
            rows = [(jobs[i].priority, jobs[i].payload, jobs[i].task) for i in fresh]
            made = dict(
                zip(fresh, self._add(queue, rows, front, delay, maxsize, None), strict=True)
            )
            q = st.queue(queue)
            ended: list[tuple[int, str]] = []
            for i, job_id in made.items():
                j, num = jobs[i], int(job_id)
                entry = q.entries[num]
                entry.unique_key, entry.unique_while = j.unique_key, j.unique_while
                entry.unique_for = float(j.unique_for)
                entry.on_dependency_failure = j.on_dependency_failure
                if j.unique_key is not None:
                    st.unique.setdefault(j.unique_key, []).append(num)
                if not parents[i]:
                    continue
                entry.parents = tuple(dict.fromkeys(j.depends_on))
                for pnum, parent in parents[i]:
                    parent.children.append(num)
                    if parent.outcome is None:
                        entry.waiting_on.add(pnum)
                if entry.state == READY:
                    q.ready.remove(entry.key)
                entry.ready_at = entry.due if entry.state == SCHEDULED else now
                entry.state = WAITING
                entry.stamp += 1
                failed = [p for _, p in parents[i] if p.outcome not in (None, "succeeded")]
                if failed and j.on_dependency_failure != "run":
                    pnum, parent = next((n, p) for n, p in parents[i] if p in failed)
                    ended.append(self._end_dependent(num, entry, str(pnum), parent, now))
                elif not entry.waiting_on:
                    self._ready(q, num, entry, now)
            self._release(ended, now, 86400.0, math.inf)
            out: list[str] = []
            for i, j in enumerate(jobs):
                if i in made:
                    out.append(made[i])
                else:
                    assert j.unique_key is not None
                    held = made.get(taken[j.unique_key]) if j.unique_key in taken else None
                    holder = held or str(self._holder(j.unique_key, now))
                    out.append(Deduplicated(holder))
        st.signal.notify()
        return out

    def enqueue_across(
        self, groups: Sequence[Group], *, pending: float | None = None
    ) -> list[list[tuple[str, JobPlace | None]]]:
        check_groups(groups)
        st = self._state
        out: list[list[tuple[str, JobPlace | None]]] = []
        with st.lock:  # the check, every group and the places: one step
            now = time.time()
            held = {}
            for queue in bounded(groups):
                q = st.queue(queue)
                q.promote(now)
                held[queue] = len(q.ready)
            error = over(groups, held)
            if error is not None:
                raise error
            filed = iter([self._enqueue_rows(q, j, False, 0.0, 0) for q, j, _ in groups if j])
            for queue, jobs, _ in groups:
                placed: list[tuple[str, JobPlace | None]] = []
                if not jobs:  # (a queue named only by empty groups is not made)
                    out.append(placed)
                    continue
                q, ids = st.queue(queue), next(filed)
                for job_id in ids:  # ranks as of the end of the step: after every group
                    num = int(job_id)
                    if pending is not None:
                        q.set_mark(num, float(pending))
                    entry = q.entries[num]
                    rank = int(q.ready.bisect_left(entry.key))
                    placed.append((job_id, JobPlace(self._record(num, entry, now), rank)))
                out.append(placed)
        return out

    def _parents(self, job: NewJob) -> list[tuple[int, Entry]]:
        out = []
        for job_id in dict.fromkeys(job.depends_on):
            found = self._job(job_id)
            if found is None:
                raise JobNotFound(
                    f"no job {job_id!r} in {self.location}: a new job depends on it; "
                    "give the id of a job the store holds"
                )
            out.append((found[1], found[2]))
        return out

    def _holder(self, key: str, now: float) -> int | None:
        """The job holding unique ``key``, if one does; forgets jobs that no longer can."""
        holder, keep = None, []
        for num in self._state.unique.get(key, []):
            found = self._job(str(num))
            if found is None:
                continue
            e = found[2]
            holds = unique_holds(e.unique_while, e.unique_for, e.status(now), e.finished_at, now)
            if holds or e.outcome is None:
                keep.append(num)
            if holds and holder is None:
                holder = num
        if keep:
            self._state.unique[key] = keep
        else:
            self._state.unique.pop(key, None)
        return holder

    def _ready(self, q: QueueState, num: int, entry: Entry, now: float) -> None:
        """A waiting job whose dependencies have all ended: ready, or scheduled for its delay."""
        if entry.ready_at > now:
            entry.state = SCHEDULED
            q.set_due(num, entry, entry.ready_at)
        else:
            entry.state = READY
            entry.stamp += 1
            q.ready.add(entry.key)

    def _finish(
        self, q: QueueState, num: int, entry: Entry, outcome: str, now: float, ttl: float
    ) -> None:
        entry.state, entry.outcome, entry.finished_at, entry.owner = FINISHED, outcome, now, None
        entry.expires_at = now + kept_for(ttl, entry.unique_key, entry.unique_for)
        entry.stamp += 1
        q.done[num] = q.entries.pop(num)
        self._state.count(self._state.where[num], entry.task, outcome)

    def _end_dependent(
        self, num: int, entry: Entry, parent_id: str, parent: Entry, now: float
    ) -> tuple[int, str]:
        """Cancel or fail a waiting job whose dependency did not succeed (its TTL set later)."""
        q = self._state.queue(self._state.where[num])
        if entry.on_dependency_failure == "fail":
            entry.error = dependency_error(parent_id, parent.outcome or "failed")
            self._finish(q, num, entry, "failed", now, 0.0)
            return num, "failed"
        self._finish(q, num, entry, "cancelled", now, 0.0)
        return num, "cancelled"

    def _release(
        self, ended: list[tuple[int, str]], now: float, ttl: float, failed_ttl: float
    ) -> None:
        """Release, cancel or fail the waiting dependents of jobs that just ended, and theirs."""
        work = collections.deque(ended)
        for num, outcome in ended:  # the dependents ended at enqueue: their TTLs
            e = self._job(str(num))
            if e is not None:
                keep = failed_ttl if outcome == "failed" else ttl
                e[2].expires_at = now + kept_for(keep, e[2].unique_key, e[2].unique_for)
        while work:
            pnum, outcome = work.popleft()
            found = self._job(str(pnum))
            if found is None:
                continue
            parent = found[2]
            for cnum in parent.children:
                child_found = self._job(str(cnum))
                if child_found is None:
                    continue
                cq, _, child = child_found
                if child.state != WAITING or pnum not in child.waiting_on:
                    continue
                child.waiting_on.discard(pnum)
                if outcome == "succeeded" or child.on_dependency_failure == "run":
                    if not child.waiting_on:
                        self._ready(cq, cnum, child, now)
                    continue
                done = self._end_dependent(cnum, child, str(pnum), parent, now)
                keep = failed_ttl if done[1] == "failed" else ttl
                child.expires_at = now + kept_for(keep, child.unique_key, child.unique_for)
                work.append(done)

    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        st = self._state
        done = 0
        ended: list[tuple[int, str]] = []
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
                    entry.worker = owner
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
                    entry.result = o.result
                    keep = failed_ttl if o.status == "failed" else ttl
                    self._finish(q, num, entry, o.status, now, keep)
                    if entry.children:
                        ended.append((num, o.status))
                done += 1
            self._release(ended, now, ttl, failed_ttl)
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

    def cancel(
        self,
        job_id: str,
        ttl: float = 86400.0,
        *,
        running: bool = True,
        failed_ttl: float = math.inf,
    ) -> bool:
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
            if entry.state == LEASED and entry.owner is not None:
                entry.worker = entry.owner  # its run ends here
            now = time.time()
            self._finish(q, num, entry, "cancelled", now, ttl)  # a running one's lease ends here
            self._release([(num, "cancelled")], now, ttl, failed_ttl)
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
            entry.worker = None
            entry.deliveries = 0  # retried by hand: it starts over
            entry.waiting_on.clear()  # and waits for nothing
            q.entries[num] = q.done.pop(num)
            q.ready.add(entry.key)
            if entry.unique_key is not None and num not in st.unique.get(entry.unique_key, []):
                st.unique.setdefault(entry.unique_key, []).append(num)
        st.signal.notify()
        return True

    def _record(self, num: int, entry: Entry, now: float) -> JobRecord:
        assert entry.task is not None
        status = entry.status(now)
        return JobRecord(
            str(num),
            self._state.where[num],
            entry.task,
            status,
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
            entry.unique_key,
            entry.parents,
            tuple(str(c) for c in entry.children if c in self._state.where),
            entry.on_dependency_failure,
            entry.due if status == "scheduled" else None,
            entry.owner if status == "running" else entry.worker,
        )

    def record(self, job_id: str) -> JobRecord | None:
        with self._state.lock:
            found = self._job(job_id)
            return None if found is None else self._record(found[1], found[2], time.time())

    def job_snapshot(self, job_id: str) -> JobPlace | None:
        now = time.time()
        with self._state.lock:
            found = self._job(job_id)
            if found is None:
                return None
            q, num, entry = found
            q.promote(now)  # a run-out lease or delay makes the entry ready, as its status says
            rec = self._record(num, entry, now)
            rank = int(q.ready.bisect_left(entry.key)) if rec.status == "queued" else None
            return JobPlace(rec, rank)

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

    def records_page(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        task: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[JobRecord], str | None]:
        check_page(status, limit)
        below = key_of(cursor)
        st = self._state
        now = time.time()
        out: list[JobRecord] = []
        with st.lock:
            nums = sorted(
                (
                    n
                    for n, name in st.where.items()
                    if queue in (None, name) and (below is None or n < below)
                ),
                reverse=True,
            )
            for num in nums:
                found = self._job(str(num))
                if found is None:
                    continue
                rec = self._record(num, found[2], now)
                if matches(rec, status, task, since, until, search):
                    if len(out) == limit:  # one more: the page is not the last
                        return out, cursor_of(int(out[-1].id))
                    out.append(rec)
        return out, None

    def oldest_ready(self, queues: Sequence[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        now = time.time()
        with self._state.lock:
            for name in dict.fromkeys(queues):
                q = self._state.queues.get(name)
                if q is None:
                    continue
                q.promote(now)  # run-out leases and due schedules are ready, as statuses say
                times = [
                    e.created_at
                    for e in (q.entries[key[2]] for key in _first_of_each_line(q))
                    if e.task is not None
                ]
                if times:
                    out[name] = min(times)
        return out

    def running_jobs(self, queues: Sequence[str]) -> dict[str, list[str]]:
        held: dict[str, list[str]] = {}
        now = time.time()
        with self._state.lock:
            for name in set(queues):
                for num, entry in self._state.existing(name).entries.items():
                    if entry.state == LEASED and entry.due > now and entry.owner is not None:
                        held.setdefault(entry.owner, []).append(str(num))
        return held

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
        out["waiting"] = counts.waiting
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
                    q.drop_mark(num)
                    removed += 1
        return removed

    def forget(self, job_ids: Sequence[str]) -> int:
        st = self._state
        removed = 0
        with st.lock:
            for num in item_numbers(job_ids):
                name = st.where.get(num)
                q = st.queues.get(name) if name is not None else None
                if q is not None and q.done.pop(num, None) is not None:
                    del st.where[num]
                    q.drop_mark(num)
                    removed += 1
        return removed

    def mark_pending(self, queue: str, marks: Mapping[str, float]) -> int:
        done = 0
        with self._state.lock:
            q = self._state.queues.get(queue)
            if q is None:
                return 0
            for job_id, at in marks.items():
                nums = item_numbers([job_id])
                if nums and q.holds_job(nums[0]):
                    q.set_mark(nums[0], float(at))
                    done += 1
        return done

    def clear_pending(self, queue: str, marks: Mapping[str, float | None]) -> int:
        done = 0
        with self._state.lock:
            q = self._state.existing(queue)
            for job_id, at in marks.items():
                nums = item_numbers([job_id])
                have = q.marks.get(nums[0]) if nums else None
                if have is not None and (at is None or have == at):
                    q.drop_mark(nums[0])
                    done += q.holds_job(nums[0])  # a mark whose job went is not counted
        return done

    def pending(self, queue: str, before: float, limit: int = 100) -> list[tuple[str, float]]:
        with self._state.lock:
            marks = self._state.existing(queue).marks_until(before, limit)
        return [(str(num), at) for num, at in marks]

    def next_pending(self, queue: str) -> float | None:
        with self._state.lock:
            first = self._state.existing(queue).marks_until(math.inf, 1)
        return first[0][1] if first else None

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


def _first_of_each_line(q: QueueState) -> list[Key]:
    """The keys of the ready entries enqueued first in each priority's line: the earliest of
    its front pushes (the last of them in line) and the first of its back pushes. A jump per
    priority, not a walk over the line."""
    out: list[Key] = []
    ready = q.ready
    at = 0
    while at < len(ready):
        priority = ready[at][0]
        back = ready.bisect_left((priority, 0, 0))  # back pushes have seq 0, front ones less
        if back > at:
            out.append(ready[back - 1])
        if back < len(ready) and ready[back][0] == priority:
            out.append(ready[back])
        at = ready.bisect_right((priority, math.inf, math.inf))
    return out
