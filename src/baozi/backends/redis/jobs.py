"""The job part of the Redis store: job records, kept in the item's own hash once it is done,
and the workers' heartbeats."""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._across import Group, check_groups, filed_place, full
from ..base import (
    STATUSES,
    Consumer,
    JobPlace,
    JobRecord,
    NewJob,
    Outcome,
    Priority,
    Receiver,
    WorkerInfo,
)
from ._consumer import RedisConsumer
from ._decode import RECORD, read_records, read_totals, read_workers
from ._ids import IDS
from ._listing import RedisListing
from ._priority import priority_fields

__all__ = ["RedisStore"]


class RedisStore(RedisListing):
    def consumer(
        self, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> Consumer:
        return RedisConsumer(self, owner, queues, lease, receiver)

    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        if not outcomes:
            return 0
        args = self._settle_args(queue, owner, outcomes, ttl, failed_ttl)
        settled: int = self._server.run("settle", *args)
        return settled

    @staticmethod
    def _settle_args(
        queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float, failed_ttl: float
    ) -> list[Any]:
        args: list[Any] = [queue, owner, repr(float(ttl)), repr(float(failed_ttl))]
        for o in outcomes:
            result = b"" if o.result is None else b"=" + o.result  # so an empty result stays
            args += (
                o.id,
                o.status,
                result,
                o.error or "",
                repr(float(o.retry_in)),
                o.slot or "",
                o.slot_limit,
            )
        return args

    def cancel(
        self,
        job_id: str,
        ttl: float = 86400.0,
        *,
        running: bool = True,
        failed_ttl: float = math.inf,
    ) -> bool:
        args = (job_id, repr(float(ttl)), int(running), repr(float(failed_ttl)))
        return bool(self._server.run("cancel", *args))

    def forget(self, job_ids: Sequence[str]) -> int:
        if not job_ids:
            return 0
        removed: int = self._server.run("forget", *job_ids)
        return removed

    def requeue(self, job_id: str) -> bool:
        return bool(self._server.run("requeue", job_id))

    def mark_pending(self, queue: str, marks: Mapping[str, float]) -> int:
        if not marks:
            return 0
        args = [x for job_id, at in marks.items() for x in (job_id, repr(float(at)))]
        done: int = self._server.run("pending", "mark", queue, *args)
        return done

    def clear_pending(self, queue: str, marks: Mapping[str, float | None]) -> int:
        if not marks:
            return 0
        args = [
            x
            for job_id, at in marks.items()
            for x in (job_id, "" if at is None else repr(float(at)))
        ]
        done: int = self._server.run("pending", "clear", queue, *args)
        return done

    def pending(self, queue: str, before: float, limit: int = 100) -> list[tuple[str, float]]:
        if limit <= 0:
            return []
        flat = self._server.run("pending", "due", queue, repr(float(before)), limit)
        out = []
        for member, at in zip(flat[::2], flat[1::2], strict=True):
            try:
                out.append((member.decode(), float(at)))
            except UnicodeDecodeError as exc:  # no id baozi wrote: moved aside
                self._server.run("junk", "member", f"q:{queue}:p", member, f"not UTF-8 text: {exc}")
        return out

    def next_pending(self, queue: str) -> float | None:
        first = self._server.run("pending", "next", queue)
        return None if first is None else float(first)

    def record(self, job_id: str) -> JobRecord | None:
        (found,) = read_records(self._server.run("jobs", "ids", job_id), self._junk(""))
        return found[1] if found else None

    def job_snapshot(self, job_id: str) -> JobPlace | None:
        *flat, rank = self._server.run("jobs", "place", job_id)
        (found,) = read_records(flat, self._junk(""))
        return None if found is None else JobPlace(found[1], rank)

    def job_snapshots(self, job_ids: Sequence[str]) -> dict[str, JobPlace]:
        ids = list(dict.fromkeys(job_ids))
        out: dict[str, JobPlace] = {}
        for start in range(0, len(ids), 1000):  # one script per thousand: a short one
            flat = self._server.run("jobs", "places", *ids[start : start + 1000])
            records = [v for k, v in enumerate(flat) if k % (RECORD + 1) != RECORD]
            ranks = flat[RECORD :: RECORD + 1]
            for found, rank in zip(read_records(records, self._junk("")), ranks, strict=True):
                if found is not None:
                    out[found[1].id] = JobPlace(found[1], rank)
        return out

    def enqueue_placed(
        self, queue: str, jobs: Sequence[NewJob], *, maxsize: int = 0
    ) -> list[tuple[str, JobPlace | None]]:
        # One script: the add script files the batch and tells each item's rank after it, and
        # the records are the ones it wrote -- nothing is read back.
        if not jobs or any(j.unique_key is not None or j.depends_on for j in jobs):
            return super().enqueue_placed(queue, jobs, maxsize=maxsize)
        rows = [(j.priority, j.payload, j.task) for j in jobs]
        ids, reply = self._add_many(queue, rows, False, 0.0, maxsize, None, placed=True)
        if reply == 0:  # a retried call that found them filed: read them as they are now
            places = self.job_snapshots(ids)
            return [(job_id, places.get(job_id)) for job_id in ids]
        created = float(reply[1])
        # Those handed to a worker at once have no rank: read as they are now, in one call.
        unranked = [i for i, rank in zip(ids, reply[2:], strict=True) if rank is None]
        now = self.job_snapshots(unranked) if unranked else {}
        out: list[tuple[str, JobPlace | None]] = []
        for job_id, job, rank in zip(ids, jobs, reply[2:], strict=True):
            if rank is None:
                place = now.get(job_id)
            else:
                place = JobPlace(
                    JobRecord(
                        id=job_id,
                        queue=queue,
                        task=job.task,
                        status="queued",
                        priority=job.priority,
                        payload=job.payload,
                        attempts=0,
                        failures=0,
                        created_at=created,
                        started_at=None,
                        finished_at=None,
                        result=None,
                        error=None,
                        progress=None,
                    ),
                    rank,
                )
            out.append((job_id, place))
        return out

    def enqueue_across(
        self, groups: Sequence[Group], *, pending: float | None = None
    ) -> list[list[tuple[str, JobPlace | None]]]:
        # One script for every group: it checks each bounded queue, files the jobs as the add
        # script does and tells each one's rank after the last group, and the records are the
        # ones it wrote -- nothing is read back but the jobs handed to a worker at once.
        check_groups(groups)
        jobs = [job for _, group, _ in groups for job in group]
        if not jobs:
            return [[] for _ in groups]
        server = self._server
        ids = IDS.take(len(jobs))
        args: list[Any] = ["" if pending is None else repr(float(pending)), len(groups)]
        for queue, group, maxsize in groups:
            args += (queue, maxsize, len(group))
        keys: dict[tuple[type, Priority], tuple[str, str]] = {}  # as the add script's caller
        for item_id, job in zip(ids, jobs, strict=True):
            prio = job.priority
            key = keys.get((type(prio), prio))
            if key is None:
                key = keys[type(prio), prio] = priority_fields(prio)
            args += (item_id, key[0], key[1], job.payload, job.task)
        reply = server.call(
            "across", lambda retried: server.script("across", ("1" if retried else "0", *args))
        )
        if reply != 0 and reply and reply[0] == b"full":
            raise full(groups, int(reply[1]) - 1, int(reply[2]))
        server.known.update(q for q, group, _ in groups if group)
        if reply == 0:  # a retried call that found them filed: read them as they are now
            created, ranks = 0.0, [None] * len(ids)
        else:
            created, ranks = float(reply[0]), list(reply[1:])
        unranked = [i for i, rank in zip(ids, ranks, strict=True) if rank is None]
        now = self.job_snapshots(unranked) if unranked else {}
        out: list[list[tuple[str, JobPlace | None]]] = []
        k = 0
        for queue, group, _ in groups:
            placed: list[tuple[str, JobPlace | None]] = []
            for job in group:
                job_id, rank = ids[k], ranks[k]
                k += 1
                if rank is None:
                    placed.append((job_id, now.get(job_id)))
                else:
                    placed.append((job_id, filed_place(job_id, queue, job, created, rank)))
            out.append(placed)
        return out

    def records_of(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        ids = list(dict.fromkeys(job_ids))
        out: dict[str, JobRecord] = {}
        for start in range(0, len(ids), 1000):  # one script per thousand: a short one
            flat = self._server.run("jobs", "ids", *ids[start : start + 1000])
            found = read_records(flat, self._junk(""))
            out.update((f[1].id, f[1]) for f in found if f is not None)
        return out

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        found = self._server.run("jobs", "status", *job_ids)
        return {i: s.decode() for i, s in zip(job_ids, found, strict=True) if s is not None}

    def _list(self, queue: str, status: str | None, limit: int, offset: int) -> list[Any]:
        flat = self._server.run("jobs", "list", queue, status or "", limit, offset)
        return [r for r in read_records(flat, self._junk(queue)) if r is not None]

    def records(
        self, queue: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JobRecord]:
        if limit <= 0:
            return []
        if queue is not None:
            return [rec for _, rec in self._list(queue, status, limit, offset)]
        # Newest first across queues: the newest limit+offset of each, merged by push order.
        merged = heapq.merge(
            *(self._list(q, status, limit + offset, 0) for q in self.queues()),
            key=lambda pair: -pair[0],
        )
        return [rec for _, rec in merged][offset : offset + limit]

    def set_progress(self, job_id: str, owner: str, progress: str) -> bool:
        return bool(self._server.run("progress", job_id, owner, progress))

    def job_counts(self, queue: str) -> dict[str, int]:
        flat = self._server.run("counts", queue)
        out = dict.fromkeys(STATUSES, 0)
        out.update(scheduled=flat[2], queued=flat[0], running=flat[1], waiting=flat[3])
        for i in range(4, len(flat), 2):
            out[flat[i].decode()] = int(flat[i + 1])
        return out

    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        flat = self._server.run("queue", "totals", queue)
        return read_totals(flat, self._junk_fields(f"q:{queue}:t"))

    def queues(self) -> list[str]:
        # Through a script that files the inbox first: a queue named only by pushes still in
        # the inbox is listed as well (an observer sampling the queues would miss it).
        names = self._server.run("queue", "list")
        return sorted(self._decode_members("queues", names))

    def has_queue(self, queue: str) -> bool:
        return bool(self._server.run("queue", "has", queue))

    def delete_queue(self, queue: str) -> bool:
        deleted = bool(self._server.run("queue", "delete", queue))
        self._server.known.discard(queue)
        return deleted

    def lease_holders(self, queues: Sequence[str]) -> dict[str, int]:
        if not queues:
            return {}
        flat = self._server.run("queue", "holders", *sorted(set(queues)))
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def purge_expired(self) -> int:
        batch, removed = 1000, 0
        while True:
            n: int = self._server.run("purge", batch)
            removed += n
            if n < batch:
                return removed

    def heartbeat(self, worker: WorkerInfo, ttl: float) -> None:
        info = json.dumps(dataclasses.asdict(worker))
        self._server.run("workers", "beat", worker.id, info, repr(float(ttl)))

    def workers(self) -> list[WorkerInfo]:
        server = self._server
        found = read_workers(
            server.run("workers", "list"),
            lambda worker_id, reason: server.run("workers", "junk", worker_id, reason),
        )
        return sorted(found, key=lambda w: w.id)

    def forget_worker(self, worker_id: str) -> None:
        self._server.run("workers", "forget", worker_id)
