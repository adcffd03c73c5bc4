"""``baozi.Queue(name, url="amqp://...")``: a FIFO queue over a durable RabbitMQ queue (a quorum
queue; a classic one when it is bounded).

Other AMQP programs can share it: messages are persistent, and their bodies are text, bytes or
JSON by content type (see :mod:`baozi.amqp._body`). Each handle holds one connection and one
channel, used by one thread at a time under the handle's lock:

- ``put`` publishes and returns once the broker has confirmed it (publisher confirms).
- ``get`` takes a ready message with ``basic.get``; when there is none it waits on a consumer of
  prefetch 1 that lives only while it waits, so a handle never holds more messages than it was
  asked for (the prefetch is what the caller takes).
- ``task_done`` acknowledges the oldest message the handle got and has not acknowledged. A handle
  whose process dies, or whose connection drops, has its unacknowledged messages put back by the
  broker at once, to be delivered again.

What RabbitMQ cannot answer raises :class:`~baozi.NotSupported`: ``join()`` (no count of unacked
messages across consumers), ``position()``, the LIFO and priority variants.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .._names import UNDECODABLE_SUFFIX, check_name
from .._outage import shown_url
from .._process import current_pid
from .._queue_api import QueueInterface
from .._waiting import check_timeout
from ..errors import Empty, Full, NotSupported, StoreError, StoreUnavailable, UndecodableItem
from . import _body
from ._pika import pika, quieted

__all__ = ["AmqpQueue"]

log = logging.getLogger("baozi.queue")
T = TypeVar("T")

_QUORUM = {"x-queue-type": "quorum"}
_MAX_NAME = 255  # AMQP's limit on a queue name, in UTF-8 bytes
_TICK = 1.0  # how often an idle handle's connection is serviced (heartbeats of 2 s and up)
_ASYNC_SLICE = 0.25  # a get_async's thread waits this long at a time: how soon a cancel is seen
_WAIT_SLICE = 0.05  # a waiting get lets other threads use the handle this often
_FULL_BACKOFF = (0.005, 0.2)  # a blocking put into a full queue retries between these
_DROPPED = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.ChannelClosed,
    ConnectionError,
    OSError,
)
# "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '5' but current is '3'"
_MISMATCH = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)'.*received (?P<got>none|the value '[^']*'|'[^']*')"
    r".*current is (?P<now>none|the value '[^']*'|'[^']*')"
)


_TYPE = re.compile(r"current is the value '[^']*' of type '(?P<type>[^']+)'")
_INT_TYPES = ("signedint", "long", "short", "byte", "unsignedint", "unsignedshort", "unsignedbyte")
_LOSSY = {  # arguments under which a queue drops messages by itself
    "x-message-ttl": "expires messages after a time",
    "x-expires": "deletes itself, messages and all, when unused for a time",
}


def _arg_value(text: str, refusal: str) -> Any:
    """``'3'`` or ``the value '3' of type 'signedint'`` -> 3 (typed as the broker says, where it
    says); ``none`` -> None."""
    if text == "none":
        return None
    value = text.split("'")[1]
    kind = _TYPE.search(refusal)
    if kind is not None and kind["type"] in _INT_TYPES:
        return int(value)
    if kind is not None and kind["type"] == "bool":
        return value == "true"
    if kind is None and value.lstrip("-").isdigit():
        return int(value)
    return value


class AmqpQueue(QueueInterface):
    """A FIFO queue on RabbitMQ with the interface of ``queue.Queue`` (see the module's text).

    ``maxsize`` bounds the queue with ``x-max-length`` and ``x-overflow=reject-publish`` (on a
    durable classic queue, the one type that bounds exactly): a put the broker refuses raises
    ``queue.Full``, and a blocking put retries until its timeout. A
    handle opened without ``maxsize`` adopts the queue as it was declared (by baozi or by another
    program, classic queues included); one whose ``maxsize`` differs from the declared queue's
    raises ValueError naming both. ``connect_timeout`` is how long a call keeps trying to reach
    the broker before raising :class:`~baozi.StoreUnavailable`; ``reply_timeout`` how long it
    waits for the broker to answer (a confirm, a get) before it gives the connection up, as if
    it had dropped (a queue without a leader keeps a connection open and never answers).
    """

    def __init__(
        self,
        name: str = "default",
        *,
        url: str | None = None,
        maxsize: int = 0,
        connect_timeout: float = 10.0,
        reply_timeout: float = 30.0,
    ) -> None:
        self.name = _check_amqp_name(name)
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be an int >= 0, not {maxsize!r}")
        if not isinstance(url, str):
            raise TypeError(f"an amqp:// URL is needed, not {url!r}")
        for option, value in (
            ("connect_timeout", connect_timeout),
            ("reply_timeout", reply_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{option} must be a positive number of seconds, not {value!r}")
        self.url = url
        self.location = shown_url(url)
        self._params = pika.URLParameters(url)
        self._connect_timeout = float(connect_timeout)
        self._reply_timeout = float(reply_timeout)
        self._asking_since: float | None = None  # when the call under way asked the broker
        self._unanswered = ""  # why the keeper cut the connection, for the caller's error
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._conn: Any = None
        self._channel: Any = None
        self._generation = 0  # which connection a delivery tag belongs to
        self._pid = current_pid()
        self._unacked: deque[tuple[int, int]] = deque()  # (generation, delivery tag), oldest first
        self.maxsize = maxsize
        try:
            with self._lock:
                self._declare()
        except BaseException:
            self._disconnect()
            raise
        _keeper.add(self)

    # -- the connection -----------------------------------------------------------------------

    @quieted
    def _connect(self) -> Any:
        """The channel, connecting first when there is none (or this is a forked child)."""
        if self._closed.is_set():
            raise ValueError(f"queue handle {self.name!r} is closed")
        if self._pid != current_pid():  # a forked child: the parent's socket is not ours
            self._pid = current_pid()
            self._conn = self._channel = None
            self._unacked.clear()
            _keeper.add(self)  # the parent's keeper thread did not come along
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._disconnect()
        deadline = time.monotonic() + self._connect_timeout
        delay = 0.05
        while True:
            try:
                conn = pika.BlockingConnection(self._params)
                channel = conn.channel()
                channel.confirm_delivery()
                channel.basic_qos(prefetch_count=1)  # for each waiting get's consumer
                break
            except (
                pika.exceptions.ProbableAuthenticationError,
                pika.exceptions.ProbableAccessDeniedError,
            ) as exc:
                raise StoreError(
                    f"RabbitMQ at {self.location} refused the login or the vhost: {exc}; check "
                    f"the user, password and vhost in the URL"
                ) from exc
            except _DROPPED as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(
                        f"RabbitMQ at {self.location} cannot be reached (tried for "
                        f"{self._connect_timeout:g} s): {type(exc).__name__}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        self._conn, self._channel = conn, channel
        self._generation += 1
        return channel

    @quieted
    def _disconnect(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and self._pid == current_pid():
            try:
                conn.close()
            except Exception:  # noqa: BLE001 -- already gone: nothing to let go of
                pass

    @quieted
    def _call(self, what: str, action: Callable[[Any], T]) -> T:
        """Run ``action(channel)`` under the lock; a dropped connection is made again and the
        action run once more (a publish whose confirm was lost may then be stored twice)."""
        with self._lock:
            for attempt in (1, 2):
                channel = self._connect()
                self._unanswered = ""
                self._asking_since = time.monotonic()
                try:
                    return action(channel)
                except pika.exceptions.ChannelClosedByBroker as exc:
                    self._disconnect()
                    if exc.reply_code == 404 and attempt == 1:  # deleted since: declare again
                        self._declare()
                        continue
                    raise StoreError(
                        f"RabbitMQ at {self.location} refused {what} on queue {self.name!r}: "
                        f"{exc.reply_text}"
                    ) from exc
                except _DROPPED as exc:
                    self._disconnect()
                    why = self._unanswered or f"{type(exc).__name__}: {exc}"
                    if attempt == 2:
                        raise StoreUnavailable(
                            f"RabbitMQ at {self.location} dropped the connection during "
                            f"{what} on queue {self.name!r}: {why}"
                        ) from exc
                    log.warning(
                        "queue %r: the connection to %s dropped during %s (%s); connecting again",
                        self.name,
                        self.location,
                        what,
                        why,
                    )
                finally:
                    self._asking_since = None
        raise AssertionError("unreachable")  # pragma: no cover

    @quieted
    def _tick(self) -> None:
        """Service an idle connection (heartbeats), unless a thread is using it; cut one whose
        call has waited for the broker's answer longer than ``reply_timeout``."""
        if not self._lock.acquire(blocking=False):
            since = self._asking_since
            if since is not None and time.monotonic() - since > self._reply_timeout:
                self._cut(f"RabbitMQ did not answer within {self._reply_timeout:g} s")
            return
        try:
            if self._conn is not None and self._pid == current_pid() and self._conn.is_open:
                self._conn.process_data_events(0)
        except Exception:  # noqa: BLE001 -- the next call connects again
            self._disconnect()
        finally:
            self._lock.release()

    def _cut(self, why: str) -> None:
        """Shut the connection's socket from the keeper's thread: the thread blocked on it
        sees the connection drop, and its call connects again or raises."""
        conn = self._conn
        sock = getattr(getattr(getattr(conn, "_impl", None), "_transport", None), "_sock", None)
        if sock is None:  # pika keeps its socket elsewhere: the call waits on
            return
        self._unanswered = why
        self._asking_since = None
        log.warning("queue %r: %s; dropping the connection", self.name, why)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- declaring ----------------------------------------------------------------------------

    @quieted
    def _declare(self) -> None:
        """Declare the queue as this handle wants it, or adopt it as it was declared."""
        wanted: dict[str, Any] = dict(_QUORUM)
        if self.maxsize:
            # A bounded queue is a classic one: a quorum queue (RabbitMQ 3.10) takes one message
            # past its x-max-length and then refuses every publish until it is down to 80% of
            # it, where a classic queue refuses exactly the message that does not fit.
            wanted = {
                "x-queue-type": "classic",
                "x-max-length": self.maxsize,
                "x-overflow": "reject-publish",
            }
        for _ in range(8):  # each refusal names one argument the queue has otherwise
            channel = self._connect()
            try:
                channel.queue_declare(self.name, durable=True, arguments=wanted)
            except pika.exceptions.ChannelClosedByBroker as exc:
                self._disconnect()
                if exc.reply_code != 406:
                    raise StoreError(
                        f"RabbitMQ at {self.location} refused to declare queue {self.name!r}: "
                        f"{exc.reply_text}"
                    ) from exc
                wanted = self._adopt(wanted, exc.reply_text)
                continue
            except _DROPPED as exc:
                self._disconnect()
                raise StoreUnavailable(
                    f"RabbitMQ at {self.location} dropped the connection while declaring queue "
                    f"{self.name!r}: {exc}"
                ) from exc
            bounded = "x-max-length" in wanted or "x-max-length-bytes" in wanted
            if bounded and wanted.get("x-overflow") != "reject-publish":
                raise ValueError(
                    f"queue {self.name!r} at {self.location} is bounded with "
                    f"x-overflow={wanted.get('x-overflow', 'drop-head')}: when full it drops "
                    f"messages instead of refusing them; baozi needs x-overflow=reject-publish"
                )
            self.maxsize = _bound(wanted)
            return
        raise StoreError(f"queue {self.name!r} at {self.location} could not be declared or adopted")

    def _adopt(self, wanted: dict[str, Any], refusal: str) -> dict[str, Any]:
        """The arguments to declare with next, given the broker's 406 about ``wanted``: the
        queue's own, when this handle adopts the queue as it is."""
        found = _MISMATCH.search(refusal)
        if found is None or found["arg"] in ("durable", "auto_delete", "exclusive"):
            raise ValueError(
                f"queue {self.name!r} at {self.location} exists with settings baozi cannot use "
                f"({refusal}); baozi needs a durable queue: delete it or pick another name"
            )
        arg, now = found["arg"], _arg_value(found["now"], refusal)
        if arg in _LOSSY and now is not None:
            raise ValueError(
                f"queue {self.name!r} at {self.location} is declared with {arg}={now}: it "
                f"{_LOSSY[arg]}, and baozi loses no message; delete it or pick another name"
            )
        adopted = dict(wanted)
        if now is None:
            adopted.pop(arg, None)
        else:
            adopted[arg] = now
        if self.maxsize and arg in ("x-max-length", "x-overflow", "x-queue-type"):
            declared = f"{arg}={now}"
            if arg == "x-max-length":
                declared = "no bound" if now is None else f"x-max-length={now}"
            if arg == "x-queue-type":
                declared = (
                    f"the {now or 'classic'} type (a bounded handle declares a classic queue "
                    f"with x-max-length)"
                )
            raise ValueError(
                f"queue {self.name!r} at {self.location} is declared with {declared}, and this "
                f"handle asked for maxsize {self.maxsize}: open it with the same maxsize, or "
                f"without one to use it as it is"
            )
        if adopted == wanted:
            raise ValueError(f"queue {self.name!r} at {self.location}: {refusal}")
        return adopted

    # -- putting ------------------------------------------------------------------------------

    def _publish(self, body: bytes, content_type: str) -> Callable[[Any], bool]:
        properties = pika.BasicProperties(delivery_mode=2, content_type=content_type)

        def publish(channel: Any) -> bool:
            try:
                channel.basic_publish("", self.name, body, properties, mandatory=True)
            except pika.exceptions.NackError:
                return False  # the queue is at its x-max-length
            except pika.exceptions.UnroutableError:
                # The queue went away since it was declared: declare it again, publish again.
                self._declare()
                try:
                    self._connect().basic_publish("", self.name, body, properties, mandatory=True)
                except pika.exceptions.NackError:
                    return False
                except pika.exceptions.UnroutableError as exc:
                    raise StoreError(
                        f"RabbitMQ at {self.location} routes no message to queue "
                        f"{self.name!r}, though it was declared again"
                    ) from exc
            return True

        return publish

    def _put_one(self, body: bytes, content_type: str, deadline: float | None, block: bool) -> bool:
        publish = self._publish(body, content_type)
        pause = _FULL_BACKOFF[0]
        if not self.maxsize:
            # Not a bound: a queue without a leader (a node that is still recovering, or a
            # quorum without its majority) refuses for a while. Retried like a broker that
            # cannot be reached, for connect_timeout.
            refusals_end = time.monotonic() + self._connect_timeout
        while not self._call("a put", publish):
            left = None if deadline is None else deadline - time.monotonic()
            if not self.maxsize:
                if time.monotonic() > refusals_end:
                    raise StoreUnavailable(
                        f"RabbitMQ at {self.location} refused every message for queue "
                        f"{self.name!r} for {self._connect_timeout:g} s (negative publisher "
                        f"confirms: the queue has no leader?)"
                    )
                left = None
            elif not block or (left is not None and left <= 0):
                return False
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, _FULL_BACKOFF[1])
        return True

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Publish ``item`` persistently and return once the broker confirmed it; in a full
        queue, retry until ``timeout`` (then ``queue.Full``)."""
        self.put_many((item,), block, timeout)

    def put_many(
        self, items: Iterable[Any], block: bool = True, timeout: float | None = None
    ) -> None:
        """Publish the items in order, each confirmed. Unlike a store's, this is not one
        transaction: in a full queue, the items before the one refused stay put, and the
        ``queue.Full`` raised says how many."""
        timeout = check_timeout(timeout) if block else None
        self._check_open()
        encoded = [_body.encode(item) for item in items]  # TypeError before anything is sent
        if self.maxsize and len(encoded) > self.maxsize:
            raise ValueError(
                f"cannot put {len(encoded)} items at once into queue {self.name!r} of maxsize "
                f"{self.maxsize}: put them in smaller batches"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        for done, (body, content_type) in enumerate(encoded):
            if not self._put_one(body, content_type, deadline, block):
                more = f" ({done} of {len(encoded)} were put)" if len(encoded) > 1 else ""
                raise Full(
                    f"queue {self.name!r} at {self.location} is full"
                    f"{f' ({self.maxsize} messages)' if self.maxsize else ''}{more}"
                )

    async def put_async(self, item: Any, timeout: float | None = None) -> None:
        """:meth:`put` for asyncio code, on a worker thread. A put cancelled while its message is
        on the way may still be stored: the broker may have taken it."""
        await asyncio.to_thread(self.put, item, True, timeout)

    # -- getting ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ValueError(f"queue handle {self.name!r} is closed")

    def _take(
        self, n: int, block: bool, timeout: float | None, track: bool
    ) -> list[tuple[int, Any, Any, bytes]]:
        timeout = check_timeout(timeout) if block else None
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout

        def fetch(limit: int) -> Callable[[Any], list[tuple[int, Any, Any, bytes]]]:
            def run(channel: Any) -> list[tuple[int, Any, Any, bytes]]:
                got: list[tuple[int, Any, Any, bytes]] = []
                while len(got) < limit:
                    self._asking_since = time.monotonic()  # each reply has its own time
                    method, properties, body = channel.basic_get(self.name, auto_ack=False)
                    if method is None:
                        break
                    got.append((self._generation, method, properties, body))
                if track:  # under the lock: in the order the broker delivered them
                    self._unacked.extend((g, m.delivery_tag) for g, m, _, _ in got)
                return got

            return run

        got = self._call("a get", fetch(n))
        while not got and block:
            if deadline is not None and time.monotonic() >= deadline:
                break
            got = self._wait_one(deadline)
            if got:
                if track:
                    with self._lock:
                        self._unacked.extend((g, m.delivery_tag) for g, m, _, _ in got)
                if n > 1:
                    got += self._call("a get", fetch(n - 1))
            else:
                # The wait ended empty (its deadline, a dropped connection, or the queue
                # deleted under it): look again, which declares a deleted queue again.
                got = self._call("a get", fetch(n))
        if not got:
            raise Empty(f"queue {self.name!r} at {self.location} is empty")
        return got

    @quieted
    def _wait_one(self, deadline: float | None) -> list[tuple[int, Any, Any, bytes]]:
        """Wait for one message on a consumer of prefetch 1 that lives only for this wait,
        giving the handle to other threads every few milliseconds."""
        got: list[tuple[int, Any, Any, bytes]] = []
        with self._lock:
            channel = self._connect()
            generation = self._generation

            def delivered(_ch: Any, method: Any, properties: Any, body: bytes) -> None:
                got.append((generation, method, properties, body))

            self._asking_since = time.monotonic()
            try:
                tag = channel.basic_consume(self.name, delivered, auto_ack=False)
            except _DROPPED:
                self._disconnect()
                return []
            finally:
                self._asking_since = None
        try:
            while not got:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                with self._lock:
                    if self._generation != generation or self._conn is None:
                        return []  # the connection dropped: the caller tries again
                    self._conn.process_data_events(
                        time_limit=_WAIT_SLICE if left is None else min(_WAIT_SLICE, left)
                    )
                    if not got and tag not in self._channel.consumer_tags:
                        return []  # cancelled by the broker (the queue was deleted)
                time.sleep(0)  # let a thread waiting for the lock have it
        except _DROPPED:
            with self._lock:
                self._disconnect()
            return []
        finally:
            with self._lock:
                if self._generation == generation and self._channel is not None:
                    self._asking_since = time.monotonic()
                    try:
                        # Anything delivered after the first is put back by pika (nack).
                        self._channel.basic_cancel(tag)
                    except _DROPPED:
                        self._disconnect()
                    finally:
                        self._asking_since = None
        return got

    def _decode(self, items: list[tuple[int, Any, Any, bytes]]) -> list[Any]:
        values, bad = [], None
        for generation, method, properties, body in items:
            try:
                values.append(_body.decode(body, properties.content_type))
            except Exception as exc:  # noqa: BLE001 -- the body is not what its type says
                bad = (generation, method, properties, body, exc)
                break
        if bad is None:
            return values
        # Move the bad message aside, intact; put back the others, so the rest keep flowing.
        generation, method, properties, body, error = bad
        aside = f"{self.name}{UNDECODABLE_SUFFIX}"

        def move(channel: Any) -> None:
            side = self._conn.channel()  # a 406 closes this one, not the handle's
            try:
                side.queue_declare(aside, durable=True, arguments=_QUORUM)
                side.close()
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 406:
                    raise
                # It exists with other settings: the message goes there as it is.
            channel.basic_publish("", aside, body, properties, mandatory=True)

        try:
            self._call("moving an unreadable message aside", move)
        except BaseException:
            # Not moved: every message of the batch goes back, the bad one first in line.
            with self._lock:
                for g, m, _, _ in items:
                    if (g, m.delivery_tag) in self._unacked:
                        self._unacked.remove((g, m.delivery_tag))
                self._settle_tags([(g, m.delivery_tag) for g, m, _, _ in items], ack=False)
            raise
        with self._lock:
            for g, m, _, _ in items:
                if (g, m.delivery_tag) in self._unacked:
                    self._unacked.remove((g, m.delivery_tag))
            self._settle_tags([(generation, method.delivery_tag)], ack=True)
            self._settle_tags(
                [(g, m.delivery_tag) for g, m, _, _ in items if m is not method], ack=False
            )
        raise UndecodableItem(
            f"a message of queue {self.name!r} at {self.location} is not what its content type "
            f"{properties.content_type!r} says ({type(error).__name__}: {error}); it was moved, "
            f"unchanged, to queue {aside!r}"
        ) from error

    async def get_async(self, timeout: float | None = None) -> Any:
        """:meth:`get` for asyncio code: waits on a worker thread, in slices of a quarter
        second so that a cancel is noticed; up to ``timeout`` (None: forever), then raises
        ``queue.Empty``. Cancelling the call leaves no message taken: one the thread takes after
        the cancel is put back."""
        timeout = check_timeout(timeout)
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait = _ASYNC_SLICE if left is None else min(_ASYNC_SLICE, left)
            taking = asyncio.ensure_future(asyncio.to_thread(self._take_decoded, wait))
            try:
                items, values = await asyncio.shield(taking)
            except Empty:
                if left is not None and left <= wait:
                    raise
                continue
            except asyncio.CancelledError:
                taking.add_done_callback(self._put_back_taken)
                raise
            with self._lock:
                self._unacked.extend((g, m.delivery_tag) for g, m, _, _ in items)
            return values[0]

    def _take_decoded(self, wait: float) -> tuple[list[tuple[int, Any, Any, bytes]], list[Any]]:
        items = self._take(1, True, wait, False)
        return items, self._decode(items)

    def _put_back_taken(
        self, taking: asyncio.Future[tuple[list[tuple[int, Any, Any, bytes]], list[Any]]]
    ) -> None:
        """A cancelled get_async's message, taken after the cancel: back to the queue."""
        if taking.cancelled() or taking.exception() is not None:
            return
        items, _ = taking.result()
        tags = [(g, m.delivery_tag) for g, m, _, _ in items]
        with self._lock:
            self._settle_tags(tags, ack=False)

    @contextmanager
    def reserve(self, timeout: float | None = None) -> Iterator[Any]:
        """``with q.reserve() as item:`` -- acknowledged when the block ends normally, put back
        (requeued) when it raises."""
        items = self._take(1, True, timeout, track=False)
        value = self._decode(items)[0]
        tag = [(items[0][0], items[0][1].delivery_tag)]
        try:
            yield value
        except BaseException:
            with self._lock:
                self._settle_tags(tag, ack=False)
            raise
        with self._lock:
            self._settle_tags(tag, ack=True)

    # -- acknowledging ------------------------------------------------------------------------

    def task_done(self, count: int = 1) -> None:
        """Acknowledge the oldest message this handle got and has not acknowledged (``count``:
        that many)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, not {count!r}")
        with self._lock:
            if self._pid != current_pid():
                self._connect()  # a forked child acknowledges only what it got itself
            if count > len(self._unacked):
                raise ValueError(
                    f"task_done() called too many times: this handle of queue {self.name!r} has "
                    f"{len(self._unacked)} unacknowledged message(s), asked to acknowledge {count}"
                )
            tags = [self._unacked.popleft() for _ in range(count)]
            self._settle_tags(tags, ack=True)

    @quieted
    def _settle_tags(self, tags: list[tuple[int, int]], ack: bool) -> None:
        """Ack (or requeue) deliveries; those of a connection since dropped were put back by
        the broker already, and are delivered again."""
        lost = [t for g, t in tags if g != self._generation or self._channel is None]
        try:
            for generation, tag in tags:
                if generation == self._generation and self._channel is not None:
                    if ack:
                        self._channel.basic_ack(tag)
                    else:
                        self._channel.basic_nack(tag, requeue=True)
        except _DROPPED:
            self._disconnect()
            lost = [t for _, t in tags]
        if lost and ack:
            log.warning(
                "queue %r: %d message(s) were put back by RabbitMQ when the connection dropped "
                "before task_done(), so they may be processed twice",
                self.name,
                len(lost),
            )

    def join(self) -> None:
        raise self._unsupported(
            "join()",
            "AMQP gives no reliable count of unacknowledged messages across consumers; use a "
            "store (sqlite://, redis://, postgresql://) for a queue that can be joined",
        )

    def clear(self) -> int:
        """Remove the ready messages (not those delivered and unacknowledged); return how many."""
        result: int = self._call(
            "a purge", lambda ch: ch.queue_purge(self.name).method.message_count
        )
        return result

    # -- sizes --------------------------------------------------------------------------------

    def qsize(self) -> int:
        """The number of ready messages (not counting those delivered and unacknowledged)."""

        def count(channel: Any) -> int:
            result: int = channel.queue_declare(self.name, passive=True).method.message_count
            return result

        return self._call("a qsize", count)

    def position(self, item_id: str) -> int | None:
        raise self._unsupported(
            "position()", "RabbitMQ cannot say how many messages are ahead of one; use a store"
        )

    def _unsupported(self, what: str, hint: str) -> NotSupported:
        return NotSupported(what, self.location, hint)

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the broker puts back what this handle got and did not
        acknowledge."""
        if self._closed.is_set():
            return
        self._closed.set()
        _keeper.discard(self)
        with self._lock:
            self._unacked.clear()
            self._disconnect()

    def __repr__(self) -> str:
        return f"<AmqpQueue {self.name!r} maxsize={self.maxsize} at {self.location}>"


def _bound(arguments: dict[str, Any]) -> int:
    """The maxsize a queue declared with ``arguments`` holds: 0 for none. A quorum queue takes
    one message past its x-max-length; a classic queue stops at it."""
    limit = arguments.get("x-max-length")
    if limit is None:
        return 0
    return int(limit) + 1 if arguments.get("x-queue-type") == "quorum" else max(int(limit), 0)


def _check_amqp_name(name: object) -> str:
    checked = check_name(name, "queue")
    limit = _MAX_NAME - len(UNDECODABLE_SUFFIX)  # room for its side queue's name
    if len(checked.encode()) > limit:
        raise ValueError(
            f"an AMQP queue name is at most {limit} bytes of UTF-8 here (RabbitMQ's 255, less "
            f"room for {UNDECODABLE_SUFFIX!r}), and {checked[:40]!r}... is "
            f"{len(checked.encode())}"
        )
    if checked.startswith("amq."):
        raise ValueError(f"queue names starting with 'amq.' are RabbitMQ's own, not {checked!r}")
    return checked


class _Keeper:
    """One daemon thread per process that services idle handles' connections every few
    seconds, so RabbitMQ's heartbeats keep them (and their unacknowledged messages) alive while
    the program works on what it got."""

    def __init__(self) -> None:
        self._handles: weakref.WeakSet[AmqpQueue] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        # A parent's thread may hold a lock as it forks: the child starts with fresh ones.
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        for handle in list(self._handles):
            handle._lock = threading.Lock()

    def add(self, handle: AmqpQueue) -> None:
        with self._lock:
            self._handles.add(handle)
            if self._thread is None or self._pid != current_pid() or not self._thread.is_alive():
                self._pid = current_pid()
                self._thread = threading.Thread(
                    target=self._run, name="baozi-amqp-keeper", daemon=True
                )
                self._thread.start()

    def discard(self, handle: AmqpQueue) -> None:
        with self._lock:
            self._handles.discard(handle)

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            with self._lock:
                handles = list(self._handles)
            for handle in handles:
                handle._tick()


_keeper = _Keeper()
