"""``redis://host:port/db`` (or ``rediss://`` for TLS): queues and jobs on a Redis server, shared by
every process on every machine that can reach it.

Every operation is one round trip: a Lua script, so it is atomic however many clients race.
Ready items sit in a sorted set whose members all score 0, so they sort by the member itself: an
exact text key built from the priority, then the push order, then the id. That keeps any priority
(a 64-bit integer, any float, or a str, bytes or tuple as the hex of its encoded bytes) and any
queue depth exact, where a floating-point score would not,
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
import json
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, ClassVar

from ..._process import current_pid
from ...errors import Full, JobNotFound
from .._rows import Row, RowStore
from .._splice import out_of_range, rotate_steps, splice_args
from ..base import (
    ON_DEPENDENCY_FAILURE,
    UNIQUE_WHILE,
    Counts,
    Deduplicated,
    Item,
    NewJob,
    Priority,
)
from ._decode import Junk, JunkName, read_items, read_options
from ._ids import IDS
from ._priority import priority_fields, priority_key
from ._server import Server

__all__ = ["RedisQueues", "priority_key"]


def _flows(jobs: Sequence[NewJob]) -> list[Any]:
    """The add script's last arguments: the jobs with a unique key or dependencies (none: [])."""
    out: list[Any] = []
    for i, job in enumerate(jobs):
        if job.unique_key is None and not job.depends_on:
            continue
        if job.unique_while not in UNIQUE_WHILE:
            raise ValueError(f"unique_while is one of {UNIQUE_WHILE}, not {job.unique_while!r}")
        if job.on_dependency_failure not in ON_DEPENDENCY_FAILURE:
            raise ValueError(
                f"on_dependency_failure is one of {ON_DEPENDENCY_FAILURE}, "
                f"not {job.on_dependency_failure!r}"
            )
        if not job.unique_for >= 0:
            raise ValueError(f"unique_for is seconds, at least 0, not {job.unique_for!r}")
        key = "" if job.unique_key is None else "=" + job.unique_key
        out += (i, key, job.unique_while, repr(float(job.unique_for)))
        out += (job.on_dependency_failure, len(job.depends_on), *map(str, job.depends_on))
    return [sum(1 for j in jobs if j.unique_key is not None or j.depends_on), *out] if out else []


def _now_text() -> str:
    """A job's creation time as its record holds it, on this machine's clock."""
    return f"{time.time():020.6f}"


class RedisQueues(RowStore):
    """The queue part of the Redis store (the job part is in :mod:`.jobs`, the coordination part
    in :mod:`.coord`), with the connection and the junk movers they all share."""

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
        rows = [(j.priority, j.payload, j.task) for j in jobs]
        flows = _flows(jobs)
        if pending is None:
            return self._add(queue, rows, front, delay, maxsize, None, flows)
        # The add script, which marks the jobs it makes (a push into the inbox would not).
        return self._add_many(queue, rows, front, delay, maxsize, None, flows, pending=pending)[0]

    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
        flows: Sequence[Any] = (),
    ) -> list[str]:
        if len(rows) == 1 and not (front or delay > 0 or maxsize or maxlen is not None or flows):
            return self._add_one(queue, rows[0])
        return self._add_many(queue, rows, front, delay, maxsize, maxlen, flows)[0]

    def _add_many(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
        flows: Sequence[Any] = (),
        *,
        placed: bool = False,
        pending: float | None = None,
    ) -> tuple[list[str], Any]:
        """The add script on a batch: the ids, and the script's reply (with ``placed``,
        ``[b"placed", created, rank...]`` when it filed them); with ``pending``, the jobs it
        makes are marked at that time."""
        server = self._server
        known = "k" if queue in server.known else "0"  # its name is in the set of queues
        ids = IDS.take(len(rows))
        args: list[Any] = [
            queue,
            "p" if placed else int(front),
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
                key = keys[type(prio), prio] = priority_fields(prio)
            args += (item_id, key[0], key[1], payload, task or "")
        args += ("" if pending is None else repr(float(pending)), *flows)
        reply = server.call(
            "add", lambda retried: server.script("add", ("1" if retried else known, *args))
        )
        if reply != 0 and reply[0] != b"placed":
            if reply[0] == b"missing":
                raise JobNotFound(
                    f"a job of this enqueue depends on {reply[1].decode()!r}, which is no job "
                    f"of the store; nothing was enqueued"
                )
            if reply[0] != b"dup":
                raise Full(f"queue {queue!r} holds {reply[0]} of at most {maxsize} ready items")
            for i in range(1, len(reply), 2):
                ids[int(reply[i])] = Deduplicated(reply[i + 1].decode())
        server.known.add(queue)
        return ids, reply

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
        named = list(dict.fromkeys(ids))
        taking = [i for i in named if i in takeover]
        return read_items(
            self._server.run(
                "claim", queue, owner, repr(float(lease)), len(named), *named, *taking
            ),
            self._junk(queue),
        )

    def pop(self, queue: str, n: int = 1, *, back: bool = False) -> list[Item]:
        # Not retried once sent: a pop whose reply was lost took its items, and a second pop
        # would take more.
        return read_items(
            self._server.run("pop", queue, n, int(back), retry_sent=False), self._junk(queue)
        )

    def rotate(self, queue: str, n: int) -> None:
        """See :meth:`QueueStore.rotate <baozi.backends.contract.queues.QueueStore.rotate>`."""
        steps = rotate_steps(n)
        if steps:  # not retried once sent: a lost reply may hide a rotate that was done
            key = priority_fields(0)[0]
            self._server.run("deque", queue, "rotate", str(steps), key, retry_sent=False)

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
        """See :meth:`QueueStore.splice <baozi.backends.contract.queues.QueueStore.splice>`."""
        a = splice_args(index, delete, payloads, clamp, expect, maxlen)
        ids = IDS.take(len(a.payloads))
        args: list[Any] = [queue, "splice", str(a.index), a.delete, int(a.clamp)]
        args += (-1 if a.maxlen is None else a.maxlen, *priority_fields(0))
        args += (len(a.expect or ()), *(a.expect or ()), len(ids))
        for item_id, payload in zip(ids, a.payloads, strict=True):
            args += (item_id, payload)
        reply = self._server.run("deque", *args, retry_sent=False)
        if reply[0] == b"stale":
            return None
        if reply[0] == b"index":
            raise out_of_range(queue, a.index, a.delete, int(reply[1]))
        if reply[0] == b"full":
            raise Full(
                f"queue {queue!r} holds {reply[1]} ready items: removing {a.delete} and adding "
                f"{len(ids)} would pass its maxlen of {a.maxlen}; nothing was changed"
            )
        if ids:
            self._server.known.add(queue)
        return read_items(reply[1:], self._junk(queue))

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
        ready, leased, scheduled, waiting = self._server.run("counts", queue)[:4]
        return Counts(ready, leased, scheduled, waiting)

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

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        removed: int = self._server.run("discard", queue, *ids)
        return removed

    def _decode_members(self, key: str, members: list[bytes]) -> list[str]:
        """Names from the set or sorted set ``P:key``; one that is no UTF-8 text is moved aside."""
        out = []
        for member in members:
            try:
                out.append(member.decode())
            except UnicodeDecodeError as exc:
                self._server.run("junk", "member", key, member, f"not UTF-8 text: {exc}")
        return out
