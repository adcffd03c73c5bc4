"""``redis://host:port/db`` (or ``rediss://`` for TLS): queues and jobs on a Redis server, shared by
every process on every machine that can reach it.

Every operation is one round trip: a Lua script, so it is atomic however many clients race.
Ready items sit in a sorted set whose members all score 0, so they sort by the member itself: an
exact text key built from the priority, then the push order, then the id. That keeps any priority
(a 64-bit integer or any float) and any queue depth exact, where a floating-point score would not,
and ranks an item in O(log n). Leased and scheduled items sit in sorted sets scored by the time
they come due, and every script first moves those that are due back to the ready set. Each item
is one hash; a job's record stays in it after the job finishes.

Writes publish on one channel per store; one thread per process listens and wakes waiters, so an
idle consumer sends nothing. Deadlines come from the server's clock, so machines whose clocks
disagree still agree on leases.

URL options: ``?prefix=NAME`` puts every key under ``NAME:`` (default ``baozi``), so one database
can hold several stores; ``?retry=SECONDS`` is how long a call keeps retrying while the server
cannot be reached (default 2) before it raises :class:`~baozi.errors.StoreUnavailable`, which is
also a ``ConnectionError``. Other query options go to the redis client (see redis-py's
``from_url``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from ..._process import current_pid
from ...errors import Full, StoreError
from .._coord import kind_range
from .._rows import Row, RowStore
from ..base import (
    CLAIM_TTL,
    STATUSES,
    Consumer,
    Counts,
    Item,
    JobRecord,
    Outcome,
    Priority,
    Receiver,
    WorkerInfo,
)
from ._consumer import RedisConsumer
from ._decode import (
    Junk,
    JunkName,
    read_items,
    read_kv,
    read_options,
    read_records,
    read_totals,
    read_workers,
)
from ._ids import IDS
from ._priority import plain, priority_fields, priority_key
from ._server import Server

__all__ = ["RedisStore", "priority_key"]


def _now_text() -> str:
    """A job's creation time as its record holds it, on this machine's clock."""
    return f"{time.time():020.6f}"


class RedisStore(RowStore):
    scheme: ClassVar[str] = "redis"
    shared_across_processes: ClassVar[bool] = True
    durable: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._srv = Server.acquire(url)
        self._pid = current_pid()
        self._closed = False

    @property
    def _server(self) -> Server:
        # A forked child must not use its parent's sockets: it gets its own connections.
        if self._pid != current_pid():
            self._srv, self._pid = Server.acquire(self.url), current_pid()
        return self._srv

    def consumer(
        self, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> Consumer:
        return RedisConsumer(self, owner, queues, lease, receiver)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._pid == current_pid():
                self._srv.release()

    # -- junk -----------------------------------------------------------------------------------

    def _junk(self, queue: str) -> Junk:
        """What moves an item of ``queue`` that the client cannot read aside (the script that
        moves it reports it, and that report is logged)."""

        def move(item_id: str, reason: str) -> None:
            self._server.run("junk", "item", queue, item_id, reason)

        return move

    def _junk_fields(self, key: str) -> JunkName:
        """What moves a field of the hash ``P:key`` that the client cannot read aside."""

        def move(name: Any, reason: str) -> None:
            self._server.run("junk", "field", key, name, reason)

        return move

    def warnings(self) -> list[str]:
        warning = self._server.eviction_warning()
        return [warning] if warning else []

    # -- queues -------------------------------------------------------------------------------

    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
    ) -> list[str]:
        if len(rows) == 1 and not (front or delay > 0 or maxsize or maxlen is not None):
            return self._add_one(queue, rows[0])
        server = self._server
        known = "k" if queue in server.known else "0"  # its name is in the set of queues
        ids = IDS.take(len(rows))
        args: list[Any] = [
            queue,
            int(front),
            repr(float(delay)),
            maxsize,
            -1 if maxlen is None else maxlen,
            len(rows),
        ]
        # A batch has one priority, as a rule: its key and text are made once. (Keyed by type
        # too: 1 and 1.0 are equal, but one reads back as an int and the other as a float.)
        keys: dict[tuple[type, Priority], tuple[str, str]] = {}
        for item_id, (prio, payload, task) in zip(ids, rows, strict=True):
            key = keys.get((type(prio), prio))
            if key is None:
                prio = plain(prio)
                key = keys[type(prio), prio] = (priority_key(prio), repr(prio))
            args += (item_id, key[0], key[1], payload, task or "")
        full = server.call(
            "add", lambda retried: server.script("add", ("1" if retried else known, *args))
        )
        if full != 0:
            raise Full(f"queue {queue!r} holds {full[0]} of at most {maxsize} ready items")
        server.known.add(queue)
        return ids

    def _add_one(self, queue: str, row: Row) -> list[str]:
        prio, payload, task = row
        if task:
            return [self.enqueue_one(queue, task, payload, prio)]
        server = self._server
        item_id = IDS.one()
        entry = (queue, item_id, *priority_fields(prio), payload, "", _now_text())
        inbox, channel = server.inbox, server.channel

        def push(retried: bool) -> None:
            # Into the inbox with plain commands; the next script that reads the queue files it.
            replies = server.pipeline(
                ("RPUSH", inbox, *entry, "1" if retried else "0"), ("PUBLISH", channel, queue)
            )
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply

        server.call("add", push)
        return [item_id]

    def enqueue_one(self, queue: str, task: str, payload: bytes, priority: Priority = 0) -> str:
        # One script run, or written behind in a batch block. The path of every delay(): kept
        # short, as its cost is paid once per job.
        server = self._srv if self._pid == current_pid() else self._server
        item_id = IDS.one()
        key, text = priority_fields(priority)
        server.push((queue, item_id, key, text, payload, task, f"{time.time():020.6f}"))
        return item_id

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        with self._server.batch():
            yield

    def reserve(self, queue: str, owner: str, lease: float, n: int = 1) -> list[Item]:
        server = self._server
        return read_items(
            server.run(
                "reserve", queue, owner, repr(float(lease)), n, *server.hand_to(owner, queue)
            ),
            self._junk(queue),
        )

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        # Not retried once sent: a pop whose reply was lost took its items, and a second pop
        # would take more.
        return read_items(
            self._server.run("pop", queue, n, int(back), retry_sent=False), self._junk(queue)
        )

    def _lease(self, queue: str, ids: Sequence[str], owner: str, how: str, seconds: float) -> int:
        if not ids:
            return 0
        done: int = self._server.run("lease", queue, owner, how, repr(float(seconds)), *ids)
        return done

    def ack(self, queue: str, ids: Sequence[str], owner: str) -> int:
        return self._lease(queue, ids, owner, "ack", 0.0)

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        return self._lease(queue, ids, owner, "release", delay)

    def extend(self, queue: str, ids: Sequence[str], owner: str, lease: float) -> int:
        return self._lease(queue, ids, owner, "extend", lease)

    def rank(self, queue: str, item_id: str) -> int | None:
        rank: int | None = self._server.run("rank", queue, item_id)
        return rank

    def counts(self, queue: str) -> Counts:
        ready, leased, scheduled = self._server.run("counts", queue)[:3]
        return Counts(ready, leased, scheduled)

    def next_due(self, queue: str) -> float | None:
        prefix = f"{self._server.prefix}:q:{queue}:"
        replies = self._server.call(
            "next_due",
            lambda retried: self._server.pipeline(
                ("ZRANGE", prefix + "l", 0, 0),  # lease end ":" id, in text order
                ("ZRANGE", prefix + "s", 0, 0, "WITHSCORES"),
                ("TIME",),
            ),
        )
        leased, scheduled, (sec, usec) = replies
        firsts = []
        if leased:
            try:
                firsts.append(float(leased[0].split(b":", 1)[0]))
            except ValueError:  # junk, which counts (its promote) moves aside: look again now
                self._server.run("counts", queue)
                return time.time()
        if scheduled:
            firsts.append(float(scheduled[1]))
        if not firsts:
            return None
        # Deadlines are on the server's clock; callers compare with their own.
        return min(firsts) - (int(sec) + int(usec) / 1e6) + time.time()

    def peek(self, queue: str, index: int) -> Item:
        found = read_items(self._server.run("items", queue, index, index), self._junk(queue))
        if not found:
            raise IndexError(f"queue {queue!r} has no item at index {index}")
        return found[0]

    def snapshot(self, queue: str) -> list[Item]:
        return read_items(self._server.run("items", queue, 0, -1), self._junk(queue))

    def clear(self, queue: str) -> int:
        removed: int = self._server.run("clear", queue)
        return removed

    def change_token(self) -> int:
        return self._server.token()

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        stop = self._server.signal.listen(callback)
        try:
            self._server.token()  # subscribed before this returns, so nothing after is missed
        except BaseException:
            stop()
            raise
        return stop

    def wait_for_change(self, token: int, timeout: float) -> bool:
        return self._server.signal.wait(token, timeout)

    def queue_options(self, queue: str) -> dict[str, Any]:
        key = f"{self._server.prefix}:q:{queue}:o"
        raw = self._server.call(
            "queue_options", lambda retried: self._server.execute("HGETALL", key)
        )
        return read_options(raw, self._junk_fields(f"q:{queue}:o"))

    def set_queue_options(self, queue: str, **options: Any) -> None:
        if not options:
            return
        server = self._server
        key = f"{server.prefix}:q:{queue}:o"
        pairs = [x for k, v in options.items() for x in (k, json.dumps(v))]
        server.call(  # a change of options (pause, resume) may end someone's wait
            "set_queue_options",
            lambda retried: server.pipeline(
                ("HSET", key, *pairs),
                ("SADD", f"{server.prefix}:queues", queue),  # a queue with options is listed
                ("PUBLISH", server.channel, ""),
            ),
        )

    # -- jobs ---------------------------------------------------------------------------------

    def settle(self, queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float) -> int:
        if not outcomes:
            return 0
        settled: int = self._server.run("settle", *self._settle_args(queue, owner, outcomes, ttl))
        return settled

    @staticmethod
    def _settle_args(queue: str, owner: str, outcomes: Sequence[Outcome], ttl: float) -> list[Any]:
        args: list[Any] = [queue, owner, repr(float(ttl))]
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

    def cancel(self, job_id: str, ttl: float = 86400.0) -> bool:
        return bool(self._server.run("cancel", job_id, repr(float(ttl))))

    def requeue(self, job_id: str) -> bool:
        return bool(self._server.run("requeue", job_id))

    def record(self, job_id: str) -> JobRecord | None:
        (found,) = read_records(self._server.run("jobs", "ids", job_id), self._junk(""))
        return found[1] if found else None

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
        out.update(scheduled=flat[2], queued=flat[0], running=flat[1])
        for i in range(3, len(flat), 2):
            out[flat[i].decode()] = int(flat[i + 1])
        return out

    def job_totals(self, queue: str) -> dict[str, dict[str, int]]:
        flat = self._server.run("queue", "totals", queue)
        return read_totals(flat, self._junk_fields(f"q:{queue}:t"))

    def queues(self) -> list[str]:
        key = f"{self._server.prefix}:queues"
        names = self._server.call("queues", lambda retried: self._server.execute("SMEMBERS", key))
        return sorted(self._decode_members("queues", names))

    def _decode_members(self, key: str, members: list[bytes]) -> list[str]:
        """Names from the set or sorted set ``P:key``; one that is no UTF-8 text is moved aside."""
        out = []
        for member in members:
            try:
                out.append(member.decode())
            except UnicodeDecodeError as exc:
                self._server.run("junk", "member", key, member, f"not UTF-8 text: {exc}")
        return out

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

    # -- coordination -------------------------------------------------------------------------

    def kv_get(self, ns: str, key: str) -> bytes | None:
        h = f"{self._server.prefix}:kv:{ns}"
        value: bytes | None = self._server.call(
            "kv_get", lambda retried: self._server.execute("HGET", h, key)
        )
        return value

    def kv_items(self, ns: str) -> dict[str, bytes]:
        h = f"{self._server.prefix}:kv:{ns}"
        flat = self._server.call("kv_items", lambda retried: self._server.execute("HGETALL", h))
        return read_kv(flat, self._junk_fields(f"kv:{ns}"))

    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        self._server.run("kv", "set", ns, key, bytes(value))

    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        held: bytes = self._server.run("kv", "setdefault", ns, key, bytes(value))
        return held

    def kv_delete(self, ns: str, key: str) -> bytes | None:
        old: bytes | None = self._server.run("kv", "delete", ns, key, retry_sent=False)
        return old

    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        # Not retried once sent: a swap whose reply was lost would read as refused the second time.
        args = (
            "1" if expected is not None else "0",
            expected if expected is not None else b"",
            "1" if value is not None else "0",
            value if value is not None else b"",
        )
        return bool(self._server.run("kv", "cas", ns, key, *args, retry_sent=False))

    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        kind = "f" if isinstance(amount, float) else "i"
        try:  # not retried once sent: it would add twice
            tag, text = self._server.run(
                "kv", "incr", ns, key, kind, repr(amount), retry_sent=False
            )
        except StoreError as exc:
            if "overflow" in str(exc):
                raise OverflowError(f"key {key!r}: {exc}") from None
            raise
        if tag == b"o":
            raise OverflowError(f"key {key!r}: the sum is {text.decode()}")
        if tag == b"e":
            raise TypeError(
                f"key {key!r} holds {text.decode(errors='replace')}, not a number: it cannot be "
                f"incremented"
            )
        total: int | float = int(text) if tag == b"i" else float(text)
        return total

    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        if kind in ("f32", "f64"):
            args: tuple[str, ...] = (kind, repr(float(amount)))
        else:
            low, high = kind_range(kind)
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise TypeError(f"a number of kind {kind} is incremented by an int, not {amount!r}")
            # The script's integers stop at 20 digits. A sum of a held integer of the kind and an
            # amount past +-2**64 fits no kind, so the amount is cut down to that.
            args = ("i", str(max(-(2**64), min(amount, 2**64))), str(low), str(high))
        # Not retried once sent: it would add twice.
        tag, text = self._server.run("kv", "incr_as", ns, key, *args, retry_sent=False)
        if tag == b"o":
            raise OverflowError(f"key {key!r}: adding {amount!r} leaves no {kind}")
        if tag == b"e":
            held = text.decode(errors="replace") if text else text
            raise TypeError(f"key {key!r} holds {held!r}, not a number of kind {kind}")
        return int(text) if tag == b"i" else float(text)

    def kv_clear(self, ns: str) -> int:
        removed: int = self._server.run("kv", "clear", ns, "")
        return removed

    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        wait = float(
            self._server.run("slots", "acquire", name, holder, limit, repr(float(ttl)), claim or "")
        )
        return None if wait < 0 else wait

    def release_slot(self, name: str, holder: str) -> bool:
        server = self._server

        def release(retried: bool) -> bool:
            gone = bool(server.script("slots", ("release", name, holder, repr(CLAIM_TTL))))
            return gone or retried  # sent again after a lost reply: the first one released it

        return server.call("release_slot", release)

    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        if not holders:
            return 0
        renewed: int = self._server.run("slots", "renew", name, repr(float(ttl)), *holders)
        return renewed

    def slot_holders(self, name: str) -> list[str]:
        return sorted(
            self._decode_members(f"sl:{name}", self._server.run("slots", "holders", name))
        )

    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        # Not retried once sent without a ticket: it would count twice. With one, asking again is
        # what tickets are for.
        wait = self._server.run(
            "rate", name, repr(float(interval)), int(burst), ticket or "", retry_sent=bool(ticket)
        )
        return float(wait)

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        removed: int = self._server.run("discard", queue, *ids)
        return removed
