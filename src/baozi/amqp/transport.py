"""The job transport: RabbitMQ delivers the jobs, a store keeps everything else.

``App(url=<store>, transport="amqp://...")`` keeps job records, results, progress, limits and
schedules in the store, and sends each ready job's id through a durable quorum queue
``baozi.<queue>`` (publisher confirms, consumer acknowledgements), so that a worker that dies
has its jobs delivered again at once.

**The outbox.** A record and a message cannot be written in one step, so every job the store
holds that may lack its message carries a *pending mark* in the store (the job's id and the
time from which its message is due), written in the same step as the record:

* enqueueing writes the records with marks ``GRACE`` seconds ahead, publishes the ids, and
  clears each mark once the broker has confirmed its message. A producer that dies between the
  two leaves marks, which fall due and are published by a worker;
* a delayed job, a retried job (marked before its run is settled) and a job held back by a
  limit are marked for when they are due; a job waiting for others is looked at every
  ``RECHECK`` seconds until it is ready;
* an idle worker looks for marks that are due (one worker per queue at a time, through a slot
  in the store), publishes the jobs that are ready, moves the marks of those that are not, and
  clears the marks of jobs that ended.

None of these is held in a worker's memory, so RabbitMQ's ``consumer_timeout`` never meets a
delayed job.

**Delivery.** A worker consumes each of its queues with a prefetch of twice its slots (at
least 8 more): what it holds beyond its free slots waits in it, unclaimed. For each message it *claims* the job in the store (:meth:`~baozi.backends.base.Store.claim`), which
leases it as a take would; a message whose job ended, was cancelled (the cancelled record is
the tombstone), is not due yet, or is held by another worker is acknowledged and dropped --
publishing a message twice is harmless. A message the broker delivers again (its consumer's
connection dropped, its process died) takes the job over from its old holder. The job's message
is acknowledged once its run is settled in the store.

**Dead letters.** Each queue has RabbitMQ's ``x-delivery-limit`` (the largest
``max_deliveries`` of its tasks); a message delivered more often goes to ``baozi.<queue>.dead``
(dead-lettered at most once: see :meth:`TransportStore.queue_arguments`), whose messages
workers also consume. RabbitMQ counts every
delivery not acknowledged, messages a dying worker held unstarted included, so the store
decides: a job whose worker died on that many of its runs is marked failed with
``WorkerLost``; any other is published again.

**What RabbitMQ cannot do** raises :class:`~baozi.NotSupported`: a position in line (and so an
ETA from it), ``front=True`` and LIFO queues, priorities.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import math
import queue as stdqueue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .._outage import shown_url
from .._process import current_pid
from ..backends.base import (
    Consumer,
    Deduplicated,
    Delivery,
    JobPlace,
    NewJob,
    Outcome,
    Receiver,
    Store,
)
from ..errors import NotSupported
from ._link import Delivery as Message
from ._link import Link, Subscription, link_for

__all__ = ["GRACE", "RECHECK", "TransportStore", "amqp_queue", "dead_queue"]

log = logging.getLogger("baozi.transport")

GRACE = 10.0
"""A new job's mark falls due this long after it is written: its producer publishes it first."""
RECHECK = 2.0
"""How often a marked job that is not ready yet (waiting, or held back) is looked at again."""
SCAN = 1.0
"""An idle worker looks for due marks at least this often."""
_SCAN_BATCH = 200
_MIN_SPARE = 8  # messages a worker holds beyond its free slots, at least
_DEFAULT_LIMIT = 5
_DEAD_ARGUMENTS = {"x-queue-type": "quorum"}
_ENDED = ("succeeded", "failed", "cancelled")
_FLUSH_AT_EXIT = 5.0  # how long an exiting producer waits for its last confirms

_HINT = "use a store without a transport (sqlite://, redis://, postgresql://) for this"
_UNSUPPORTED = {
    "position": "RabbitMQ cannot say how many messages are ahead of one; " + _HINT,
    "lifo": "RabbitMQ queues deliver first in, first out; " + _HINT,
    "priority": "RabbitMQ 3.10's quorum queues have no priorities; " + _HINT,
}


def amqp_queue(queue: str) -> str:
    """The RabbitMQ queue that carries the jobs of ``queue``."""
    return f"baozi.{queue}"


def dead_queue(queue: str) -> str:
    """The RabbitMQ queue that receives the jobs of ``queue`` past their delivery limit."""
    return f"baozi.{queue}.dead"


class _Clearer:
    """Clears the marks of confirmed messages, in batches, on a thread of its own (a link's
    callbacks must not call the store). Tracks the publishes still unanswered, so that an
    exiting producer can wait for them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: stdqueue.SimpleQueue[tuple[str, dict[str, float]] | None] = (
            stdqueue.SimpleQueue()
        )
        self._lock = threading.Condition()
        self._in_flight = 0  # publishes sent, not yet answered or cleared
        self._refused = 0  # publishes refused since the last flush (their marks stand)
        self._thread: threading.Thread | None = None

    def sent(self, n: int) -> None:
        with self._lock:
            self._in_flight += n
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="baozi-transport-clearer", daemon=True
                )
                self._thread.start()

    def answered(self, queue: str, confirmed: dict[str, float], refused: int) -> None:
        """On the IO thread: these were confirmed (their marks to clear), ``refused`` not."""
        if confirmed:
            self._queue.put((queue, confirmed))
        if refused:
            self._done(refused, refused)

    def _done(self, n: int, refused: int = 0) -> None:
        with self._lock:
            self._in_flight -= n
            self._refused += refused
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches: dict[str, dict[str, float]] = {}
            entry: tuple[str, dict[str, float]] | None = first
            while entry is not None:
                batches.setdefault(entry[0], {}).update(entry[1])
                try:
                    entry = self._queue.get_nowait()
                except stdqueue.Empty:
                    entry = None
            for queue, marks in batches.items():
                try:
                    self.store.clear_pending(queue, marks)
                except Exception as exc:  # noqa: BLE001 -- the marks stay: published again
                    log.warning(
                        "transport: clearing %d mark(s) of queue %r failed (%s); their jobs' "
                        "messages will be published again, and the copies dropped",
                        len(marks),
                        queue,
                        exc,
                    )
                self._done(len(marks))

    def flush(self, timeout: float) -> bool:
        """Wait, up to ``timeout``, until every message sent was answered and its mark
        cleared; whether every one was confirmed (those refused since the last flush keep
        their marks, and are published again when those fall due)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            refused, self._refused = self._refused, 0
        return refused == 0


_stores: list[TransportStore] = []


@atexit.register
def _flush_all() -> None:
    """A producer that exits right after enqueueing still sends its messages (its jobs are
    safe either way: their marks are published by a worker when they fall due)."""
    for store in list(_stores):
        if store.pid == current_pid():  # a forked child's copies are its parent's to flush
            store.flush(_FLUSH_AT_EXIT)


class TransportStore(Store):
    """A store whose jobs RabbitMQ delivers (see the module's text). Everything but delivery
    is the store's: every other method is the wrapped store's own."""

    def __init__(
        self,
        inner: Store,
        transport: str,
        delivery_limit: Callable[[str], int] = lambda _queue: _DEFAULT_LIMIT,
    ) -> None:
        super().__init__(inner.url)
        self.inner = inner
        self.transport = transport
        self.transport_location = shown_url(transport)
        self.scheme = inner.scheme  # type: ignore[misc]
        self.shared_across_processes = inner.shared_across_processes  # type: ignore[misc]
        self.durable = inner.durable  # type: ignore[misc]
        self.unsupported = {**inner.unsupported, **_UNSUPPORTED}  # type: ignore[misc]
        self._delivery_limit = delivery_limit
        self.link: Link = link_for(transport)
        self._clearer = _Clearer(inner)
        self._batching = threading.local()
        self.pid = current_pid()
        _stores.append(self)

    def __getattr__(self, name: str) -> Any:
        """What the wrapped store has beyond the contract (its own helpers)."""
        if name == "inner":  # not set yet
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def location(self) -> str:
        return f"{self.inner.location} (jobs through {self.transport_location})"

    def queue_arguments(self, queue: str) -> dict[str, Any]:
        """How ``baozi.<queue>`` is declared: a quorum queue whose messages go to its dead
        letter queue after the delivery limit. The dead-lettering is at most once: a node that
        crashes as it moves a message may lose that message, and its job then stays queued
        in the store with no message to deliver it."""
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self._delivery_limit(queue),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead_queue(queue),
            # At-most-once (RabbitMQ's default): at-least-once dead-lettering runs a worker
            # process per queue under one supervisor, which gives up for good (every such
            # queue then fails) when about 100 of those workers end in a second, as deleting
            # that many queues does (RabbitMQ 3.10 to 4.2).
        }

    # -- sending ------------------------------------------------------------------------------

    def send(self, queue: str, marks: Mapping[str, float]) -> None:
        """Publish these jobs' ids; each one's mark (its time in ``marks``) is cleared once
        the broker confirms it. In a :meth:`batch` block, at the block's end."""
        if not marks:
            return
        held = getattr(self._batching, "held", None)
        if held is not None:
            held.setdefault(queue, {}).update(marks)
            return
        marks = dict(marks)
        self._clearer.sent(len(marks))

        def answered(confirmed: list[str], refused: list[str]) -> None:
            self._clearer.answered(queue, {i: marks[i] for i in confirmed}, len(refused))

        self.link.publish(
            amqp_queue(queue),
            self.queue_arguments(queue),
            marks,
            answered,
            (dead_queue(queue), _DEAD_ARGUMENTS),
        )

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for every message this handle sent to be answered; whether
        RabbitMQ confirmed them all (a refused one's job is published again from its mark)."""
        return self._clearer.flush(timeout)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        outer = getattr(self._batching, "held", None)
        if outer is not None:
            yield
            return
        held: dict[str, dict[str, float]] = {}
        self._batching.held = held
        try:
            with self.inner.batch():  # the records are confirmed when this ends
                yield
        finally:
            self._batching.held = None
        for queue, marks in held.items():
            self.send(queue, marks)

    # -- enqueueing ---------------------------------------------------------------------------

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
        if front:
            self.require("lifo")
        if any(job.priority for job in jobs):
            self.require("priority")
        at = pending if pending is not None else time.time() + (delay if delay > 0 else GRACE)
        ids = self.inner.enqueue(queue, jobs, front=front, delay=delay, maxsize=maxsize, pending=at)
        if delay <= 0:
            self.send(
                queue,
                {
                    job_id: at
                    for job_id, job in zip(ids, jobs, strict=True)
                    if not isinstance(job_id, Deduplicated) and not job.depends_on
                },
            )
        return ids

    def enqueue_one(self, queue: str, task: str, payload: bytes, priority: Any = 0) -> str:
        return self.enqueue(queue, [NewJob(task, payload, priority)])[0]

    def enqueue_placed(
        self, queue: str, jobs: Sequence[NewJob], *, maxsize: int = 0
    ) -> list[tuple[str, JobPlace | None]]:
        ids = self.enqueue(queue, jobs, maxsize=maxsize)
        places = self.inner.job_snapshots(ids)
        return [(job_id, places.get(job_id)) for job_id in ids]

    def enqueue_across(
        self,
        groups: Sequence[tuple[str, Sequence[NewJob], int]],
        *,
        pending: float | None = None,
    ) -> list[list[tuple[str, JobPlace | None]]]:
        # As enqueue: the records with their marks in the store's one step, then the messages.
        if any(job.priority for _, jobs, _ in groups for job in jobs):
            self.require("priority")
        at = pending if pending is not None else time.time() + GRACE
        placed = self.inner.enqueue_across(groups, pending=at)
        marks: dict[str, dict[str, float]] = {}
        for (queue, _, _), filed in zip(groups, placed, strict=True):
            marks.setdefault(queue, {}).update((job_id, at) for job_id, _ in filed)
        for queue, queue_marks in marks.items():
            self.send(queue, queue_marks)
        return placed

    def check_connection(self, connection: object) -> None:
        raise NotSupported(
            "enqueueing inside a database transaction (connection=)",
            self.transport_location,
            "a job's message cannot join the caller's transaction; enqueue after it commits",
        )

    def requeue(self, job_id: str) -> bool:
        record = self.inner.record(job_id)
        if record is None:
            return False
        at = time.time() + GRACE
        self.inner.mark_pending(record.queue, {job_id: at})  # first: a crash leaves a mark
        done = self.inner.requeue(job_id)
        if done:
            self.send(record.queue, {job_id: at})
        return done

    def settle(
        self,
        queue: str,
        owner: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        failed_ttl: float = math.inf,
    ) -> int:
        again = _again(outcomes)
        if again:
            self.inner.mark_pending(queue, again)  # before the job is scheduled again
        held = self.inner.settle(queue, owner, outcomes, ttl, failed_ttl)
        self._send_due(queue, again)
        return held

    def release(self, queue: str, ids: Sequence[str], owner: str, delay: float = 0.0) -> int:
        at = time.time() + delay
        self.inner.mark_pending(queue, dict.fromkeys(ids, at))
        released = self.inner.release(queue, ids, owner, delay)
        if delay <= 0:
            self.send(queue, dict.fromkeys(ids, at))
        return released

    def _send_due(self, queue: str, marks: Mapping[str, float]) -> None:
        now = time.time()
        self.send(queue, {i: at for i, at in marks.items() if at <= now})

    def consumer(
        self, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> Consumer:
        return TransportConsumer(self, owner, queues, lease, receiver)

    # -- the outbox ---------------------------------------------------------------------------

    def publish_due(self, queue: str, owner: str, limit: int = _SCAN_BATCH) -> float | None:
        """Publish the jobs of ``queue`` whose marks are due (one caller per queue at a time:
        the others return at once); returns when the next mark falls due, or None."""
        inner = self.inner
        now = time.time()
        if inner.acquire_slot(f"baozi.transport.{queue}", owner, 1, 3 * SCAN) is not None:
            return now + SCAN  # another worker is at it
        marks = inner.pending(queue, now, limit)
        if marks:
            statuses = inner.statuses([job_id for job_id, _ in marks])
            ready, later, ended = {}, {}, {}
            for job_id, at in marks:
                status = statuses.get(job_id)
                if status == "queued":
                    ready[job_id] = now + GRACE
                elif status is None or status in _ENDED:
                    ended[job_id] = at
                else:  # waiting, scheduled, or running (a retry being settled)
                    later[job_id] = now + RECHECK
            if ready or later:
                inner.mark_pending(queue, {**ready, **later})
            if ended:
                inner.clear_pending(queue, ended)
            self.send(queue, ready)
            if len(marks) == limit:
                return now  # more are due
        return inner.next_pending(queue)

    def close(self) -> None:
        self.flush(_FLUSH_AT_EXIT)
        self.inner.close()
        with contextlib.suppress(ValueError):
            _stores.remove(self)

    def __repr__(self) -> str:
        return f"<TransportStore {self.inner!r} via {self.transport_location}>"


def _again(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """The marks of jobs a settle puts back to wait: due when they are (a job held back for a
    slot may be let go sooner, so it is looked at every RECHECK)."""
    now = time.time()
    marks = {}
    for o in outcomes:
        if o.status in ("retry", "deferred"):
            wait = min(o.retry_in, RECHECK) if o.slot is not None else o.retry_in
            marks[o.id] = now + max(wait, 0.0)
    return marks


def _abstract_delegates() -> None:
    """Every method of the store contract not written above is the wrapped store's own."""

    def delegate(name: str) -> Callable[..., Any]:
        def method(self: TransportStore, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.inner, name)(*args, **kwargs)

        method.__name__ = name
        return method

    for name in sorted(Store.__abstractmethods__):
        if name not in TransportStore.__dict__:
            setattr(TransportStore, name, delegate(name))
    for name in ("records_of", "job_snapshots", "enqueue_in", "warnings", "on_change"):
        if name not in TransportStore.__dict__:
            setattr(TransportStore, name, delegate(name))
    TransportStore.__abstractmethods__ = frozenset()


_abstract_delegates()


class TransportConsumer(Consumer):
    """A worker's consumer of its queues' messages (see the module's text)."""

    def __init__(
        self,
        transport: TransportStore,
        owner: str,
        queues: Sequence[str],
        lease: float,
        receiver: Receiver,
    ) -> None:
        super().__init__(transport.inner, owner, queues, lease, receiver)
        self.transport = transport
        self._inbox: deque[tuple[str, Message, bool]] = deque()  # (queue, message, dead)
        self._lock = threading.Lock()
        self._subs: dict[tuple[str, bool], Subscription] = {}
        self._held: dict[tuple[str, str], tuple[Subscription, int, int]] = {}
        self._next_scan = 0.0
        self._ttls = (86400.0, math.inf)  # the last settle's, for a dead letter's record

    # -- receiving ----------------------------------------------------------------------------

    def _subscribe(self, prefetch: int) -> None:
        link = self.transport.link
        for queue in self.queues:
            # The dead letter queue first: a message dead-lettered to no queue is dropped.
            self._subs[(queue, True)] = link.subscribe(
                dead_queue(queue),
                _DEAD_ARGUMENTS,
                16,
                functools.partial(self._arrived, queue, True),
            )
            self._subs[(queue, False)] = link.subscribe(
                amqp_queue(queue),
                self.transport.queue_arguments(queue),
                prefetch,
                functools.partial(self._arrived, queue, False),
            )

    def _arrived(self, queue: str, dead: bool, message: Message) -> None:
        """On the link's thread."""
        with self._lock:
            if self.closed:
                self._subs[(queue, dead)].requeue(message.generation, [message.tag])
                return
            self._inbox.append((queue, message, dead))
        self.receiver.wake()

    def _take(self, n: int, queues: Sequence[str]) -> list[Delivery]:
        if self.closed or n <= 0:
            return []
        if not self._subs:
            # The first take asks for every slot. As many again wait in the worker, so a slot
            # that frees finds its next job here rather than a round trip to RabbitMQ away;
            # they are not claimed (the store does not count them as this worker's), and go
            # back to the queue at once if it dies.
            self._subscribe(n + max(n, _MIN_SPARE))
        if time.monotonic() >= self._next_scan:
            self._publish_due()
        got: list[Delivery] = []
        while len(got) < n:
            with self._lock:
                batch = [self._inbox.popleft() for _ in range(min(n - len(got), len(self._inbox)))]
            if not batch:
                break
            dead = [entry for entry in batch if entry[2]]
            live = [entry for entry in batch if not entry[2]]
            try:
                if dead:
                    self._bury(dead)
                got += self._claim(live)  # puts its messages back itself when it fails
            except Exception:
                if dead:  # not buried: back to their queue, for this worker or another
                    for queue, message, _ in dead:
                        self._subs[(queue, True)].requeue(message.generation, [message.tag])
                if not got:
                    raise
                # The store failed after jobs were claimed: those run, and the next take
                # (or the worker's outage handling) meets the failure again.
                log.warning("transport: taking more jobs failed", exc_info=True)
                break
        return got

    def _claim(self, batch: list[tuple[str, Message, bool]]) -> list[Delivery]:
        got: list[Delivery] = []
        by_queue: dict[str, list[tuple[str, Message]]] = {}
        for queue, message, _ in batch:
            by_queue.setdefault(queue, []).append((_job_id(message), message))
        queues = list(by_queue)
        for done, queue in enumerate(queues):
            entries = by_queue[queue]
            sub = self._subs[(queue, False)]
            ids = [job_id for job_id, _ in entries if job_id]
            takeover = [job_id for job_id, m in entries if job_id and m.redelivered]
            try:
                items = (
                    self.store.claim(queue, self.owner, self.lease, ids, takeover) if ids else []
                )
            except Exception:
                # Not claimed: these messages and those of the queues after go back.
                for rest in queues[done:]:
                    for _, m in by_queue[rest]:
                        self._subs[(rest, False)].requeue(m.generation, [m.tag])
                if not got:
                    raise
                log.warning("transport: claiming jobs failed", exc_info=True)
                return got
            claimed = {item.id: item for item in items}
            drop: dict[int, list[int]] = {}
            dropped = []
            for job_id, m in entries:
                item = claimed.pop(job_id, None)
                if item is None:  # ended, cancelled, not due, or held: a copy
                    drop.setdefault(m.generation, []).append(m.tag)
                    dropped.append(job_id)
                    continue
                with self._lock:
                    self._held[(queue, job_id)] = (sub, m.generation, m.tag)
                got.append((queue, item))
            try:
                self._mark_dropped(queue, [job_id for job_id in dropped if job_id])
            except Exception:  # noqa: BLE001 -- not marked: the copies go back instead
                log.warning("transport: marking dropped jobs failed", exc_info=True)
                for generation, tags in drop.items():
                    sub.requeue(generation, tags)
                continue
            for generation, tags in drop.items():
                sub.ack(generation, tags)
        return got

    def _mark_dropped(self, queue: str, ids: list[str]) -> None:
        """Before messages are dropped: a mark for each of their jobs that is queued or
        running, so that none is left without a message. (A job held by a live worker is
        settled by it, and its mark cleared then; one whose claim went through but whose reply
        was lost is published again once its lease runs out; one in a paused queue is looked
        at every RECHECK.)"""
        if not ids:
            return
        now = time.time()
        statuses = self.store.statuses(ids)
        marks = {}
        for job_id in ids:
            status = statuses.get(job_id)
            if status == "running":
                marks[job_id] = now + self.lease
            elif status == "queued":
                marks[job_id] = now + RECHECK
        if marks:
            self.store.mark_pending(queue, marks)

    def _bury(self, batch: list[tuple[str, Message, bool]]) -> None:
        """Jobs RabbitMQ gave up on, past their queue's ``x-delivery-limit``. RabbitMQ counts
        every message a consumer took and did not acknowledge, those a dying worker held
        unstarted included; the store counts runs. A job whose worker died on ``limit`` of its
        runs fails with WorkerLost; any other still to run is published again, counted
        afresh."""
        by_queue: dict[str, list[tuple[str, Message]]] = {}
        for queue, message, _ in batch:
            by_queue.setdefault(queue, []).append((_job_id(message), message))
        ttl, failed_ttl = self._ttls
        for queue, entries in by_queue.items():
            sub = self._subs[(queue, True)]
            limit = self.transport.queue_arguments(queue)["x-delivery-limit"]
            records = self.store.records_of([job_id for job_id, _ in entries if job_id])
            doomed, again = [], {}
            for job_id, rec in records.items():
                if rec.status not in ("queued", "running"):
                    continue  # ended; or scheduled or waiting, and marked for when it is due
                if rec.attempts - rec.failures >= limit:
                    doomed.append(job_id)
                else:
                    again[job_id] = time.time() + GRACE
            if again:
                self.store.mark_pending(queue, again)
                self.transport.send(queue, again)
            items = self.store.claim(queue, self.owner, self.lease, doomed, doomed)
            if items:
                error = {
                    "type": "WorkerLost",
                    "message": f"the job's worker died on {limit} of its runs, and RabbitMQ "
                    f"gave its message up (the x-delivery-limit of {amqp_queue(queue)!r}); "
                    f"it is not run again",
                    "traceback": "",
                }
                outcomes = [Outcome(i.id, "failed", error=json.dumps(error)) for i in items]
                self.store.settle(queue, self.owner, outcomes, ttl, failed_ttl)
                log.warning(
                    "transport: %d job(s) of queue %r failed: their workers died on %d runs",
                    len(items),
                    queue,
                    limit,
                )
            for _, m in entries:
                sub.ack(m.generation, [m.tag])

    def _publish_due(self) -> None:
        nearest = math.inf
        for queue in self.queues:
            due = self.transport.publish_due(queue, self.owner)
            if due is not None:
                nearest = min(nearest, due)
        wait = min(max(nearest - time.time(), 0.0), SCAN)
        self._next_scan = time.monotonic() + wait

    # -- settling -----------------------------------------------------------------------------

    def settle(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        then_take: int = 0,
        *,
        failed_ttl: float = math.inf,
    ) -> tuple[int, list[Delivery]]:
        self._ttls = (ttl, failed_ttl)
        held = 0
        if outcomes:
            held = self.transport.settle(queue, self.owner, outcomes, ttl, failed_ttl)
            self._acknowledge(queue, [o.id for o in outcomes], ack=True)
        if then_take <= 0 or self.closed:
            return held, []
        return held, self._top_up(held, [], then_take, self.queues)

    def release(self, queue: str, ids: Sequence[str], delay: float = 0.0) -> int:
        if not ids:
            return 0
        if delay > 0:
            released = self.transport.release(queue, ids, self.owner, delay)
            self._acknowledge(queue, ids, ack=True)
        else:  # the message goes back itself
            released = self.store.release(queue, ids, self.owner, 0.0)
            self._acknowledge(queue, ids, ack=False)
        return released

    def _acknowledge(self, queue: str, ids: Sequence[str], ack: bool) -> None:
        tags: dict[tuple[Subscription, int], list[int]] = {}
        with self._lock:
            for job_id in ids:
                held = self._held.pop((queue, job_id), None)
                if held is not None:
                    sub, generation, tag = held
                    tags.setdefault((sub, generation), []).append(tag)
            done = self.closed and not self._held
        for (sub, generation), group in tags.items():
            if ack:
                sub.ack(generation, group)
            else:
                sub.requeue(generation, group)
        if done:
            self._close_channels()

    def next_due(self) -> float | None:
        return time.time() + max(self._next_scan - time.monotonic(), 0.0) + 0.001

    def close(self) -> None:
        """Receive nothing more; messages received and not taken go back to their queues.
        Each channel closes once the jobs taken from it are settled."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            inbox, self._inbox = list(self._inbox), deque()
            done = not self._held
        for sub in self._subs.values():
            sub.cancel()
        for queue, message, dead in inbox:
            self._subs[(queue, dead)].requeue(message.generation, [message.tag])
        if done:
            self._close_channels()

    def _close_channels(self) -> None:
        for sub in self._subs.values():
            sub.close()


def _job_id(message: Message) -> str:
    """The job id a message carries; "" for a body that is not one (dropped, with a warning)."""
    try:
        job_id = message.body.decode("ascii")
    except UnicodeDecodeError:
        job_id = ""
    if not job_id or len(job_id) > 200 or not job_id.isprintable():
        log.warning("transport: dropped a message that names no job: %r", message.body[:80])
        return ""
    return job_id
