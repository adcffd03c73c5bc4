"""One AMQP connection per process and broker URL, run by an IO thread of its own.

The job transport publishes many messages at once from many threads and consumes while the
worker's threads run jobs, which pika's blocking adapter cannot do (one call at a time, each
publish waiting for its confirm). A :class:`Link` runs pika's ``SelectConnection`` on a daemon
thread: other threads hand it work (:meth:`Link.call`), publishes are pipelined and their
publisher confirms arrive as callbacks, and deliveries reach each :class:`Subscription`'s
callback. When the connection drops the thread connects again, with backoff, and every
subscription consumes again; publishes not yet confirmed are reported refused (their senders
keep a mark in the store and publish again).

Callbacks given to a link run on its IO thread: they must be quick and must not call the store.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._outage import shown_url
from .._process import current_pid
from ._pika import pika, quiet

__all__ = ["Delivery", "Link", "Subscription", "link_for"]

log = logging.getLogger("baozi.transport")

_BACKOFF = (0.1, 5.0)  # reconnecting waits between these
_PERSISTENT = 2

Done = Callable[[list[str], list[str]], None]
"""Told, on the IO thread, which message ids of a publish were confirmed and which refused."""


@dataclass(slots=True)
class _Batch:
    done: Done
    left: int
    confirmed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def settle(self, message_id: str, ok: bool) -> None:
        (self.confirmed if ok else self.refused).append(message_id)
        self.left -= 1
        if self.left == 0:
            try:
                self.done(self.confirmed, self.refused)
            except Exception:  # a caller's bug must not stop the IO thread
                log.exception("a publish's confirm callback failed")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message a subscription got: which channel it came on (``generation``), its delivery
    tag there, its body, and whether the broker delivered it before."""

    generation: int
    tag: int
    body: bytes
    redelivered: bool


class Subscription:
    """A consumer of one queue, on a channel of its own, consumed again on every connection."""

    def __init__(
        self,
        link: Link,
        queue: str,
        arguments: dict[str, Any],
        prefetch: int,
        on_message: Callable[[Delivery], None],
    ) -> None:
        self.link = link
        self.queue = queue
        self.arguments = arguments
        self.prefetch = prefetch
        self.on_message = on_message
        self.cancelled = False
        self._channel: Any = None
        self._generation = -1
        self._started = -1  # the connection it last started consuming on
        self._tag: str | None = None

    # On the IO thread:

    def _start(self, conn: Any, generation: int) -> None:
        if self.cancelled or self._started == generation:
            return
        self._started = generation

        def opened(channel: Any) -> None:
            # Delivery tags are the channel's own: a channel opened again starts over.
            self._channel, self._generation = channel, next(_channels)
            channel.add_on_close_callback(self._channel_closed)
            channel.basic_qos(prefetch_count=self.prefetch, callback=lambda _f: declare())

        def declare() -> None:
            self.link._declare(self._channel, self.queue, self.arguments, consume)

        def consume() -> None:
            if self.cancelled or self._channel is None or not self._channel.is_open:
                return
            self._tag = self._channel.basic_consume(self.queue, self._delivered)

        conn.channel(on_open_callback=opened)

    def _delivered(self, _channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        self.on_message(
            Delivery(self._generation, method.delivery_tag, body, bool(method.redelivered))
        )

    def _channel_closed(self, channel: Any, reason: Exception) -> None:
        if channel is not self._channel:
            return
        self._channel = None
        if self.cancelled or self.link._conn is None or not self.link._conn.is_open:
            return  # the connection's end: consumed again on the next one
        log.warning(
            "transport: the channel of queue %r closed (%s); opening another", self.queue, reason
        )
        self._started = -1
        self._start(self.link._conn, self.link._generation)

    def _settle(self, generation: int, tags: list[int], ack: bool) -> None:
        channel = self._channel
        if generation != self._generation or channel is None or not channel.is_open:
            return  # the broker put them back when their channel closed
        for tag in tags:
            if ack:
                channel.basic_ack(tag)
            else:
                channel.basic_nack(tag, requeue=True)

    def _cancel(self) -> None:
        self.cancelled = True
        channel, tag = self._channel, self._tag
        if channel is not None and channel.is_open and tag is not None:
            channel.basic_cancel(tag)

    def _close(self) -> None:
        self.cancelled = True
        channel, self._channel = self._channel, None
        if channel is not None and channel.is_open:
            channel.close()

    # From any thread:

    def ack(self, generation: int, tags: list[int]) -> None:
        """Acknowledge these deliveries (those of a connection since dropped are the broker's
        again, and are skipped)."""
        if tags:
            self.link.call(lambda: self._settle(generation, tags, True))

    def requeue(self, generation: int, tags: list[int]) -> None:
        """Give these deliveries back to the queue, for another consumer."""
        if tags:
            self.link.call(lambda: self._settle(generation, tags, False))

    def cancel(self) -> None:
        """Receive no more; what was delivered stays this subscription's until settled."""
        self.link.call(self._cancel)
        self.link._forget(self)

    def close(self) -> None:
        """Close the channel: the broker puts back every delivery not yet acknowledged."""
        self.link.call(self._close)
        self.link._forget(self)


class Link:
    """An AMQP connection on an IO thread of its own (see the module's text)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = shown_url(url)
        self._params = pika.URLParameters(url)
        self._lock = threading.Lock()
        self._commands: deque[Callable[[], None]] = deque()
        self._conn: Any = None  # the open SelectConnection (IO thread)
        self._channel: Any = None  # the publishing channel, in confirm mode (IO thread)
        self._generation = 0
        self._seq = 0  # the publishing channel's last delivery tag
        self._unconfirmed: dict[int, tuple[_Batch, str]] = {}
        self._returned: set[str] = set()
        self._declared: dict[str, list[Callable[[], None]] | None] = {}  # None: declared
        self._subscriptions: list[Subscription] = []
        self._up = threading.Event()
        self.failure = ""  # why the last connection attempt failed, for errors
        self._thread = threading.Thread(target=self._run, name="baozi-amqp-link", daemon=True)
        self._thread.start()

    # -- from any thread ----------------------------------------------------------------------

    def call(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the IO thread, once connected (in the order given)."""
        with self._lock:
            self._commands.append(command)
            conn = self._conn
        if conn is not None:
            try:
                conn.ioloop.add_callback_threadsafe(self._drain)
            except Exception:  # noqa: BLE001 -- closing: the next connection runs it
                pass

    def wait_connected(self, timeout: float) -> bool:
        """Whether the link is connected, waiting up to ``timeout`` seconds for it."""
        return self._up.wait(timeout)

    def publish(
        self,
        queue: str,
        arguments: dict[str, Any],
        ids: Iterable[str],
        done: Done,
        companion: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Publish each id as a persistent message to ``queue`` (declared with ``arguments``
        first, once per connection, after its ``companion`` queue: the one its messages are
        dead-lettered to); ``done(confirmed, refused)`` is called on the IO thread when the
        broker has answered for them all (refused: a negative confirm, an unroutable message,
        or a connection that dropped first)."""
        ids = list(ids)
        if not ids:
            return
        batch = _Batch(done, len(ids))
        self.call(lambda: self._publish(queue, arguments, ids, batch, companion))

    def subscribe(
        self,
        queue: str,
        arguments: dict[str, Any],
        prefetch: int,
        on_message: Callable[[Delivery], None],
    ) -> Subscription:
        """Consume ``queue`` (declared with ``arguments``) with ``prefetch`` unacknowledged
        deliveries at most; ``on_message`` gets each on the IO thread."""
        sub = Subscription(self, queue, arguments, prefetch, on_message)
        with self._lock:
            self._subscriptions.append(sub)
        self.call(lambda: sub._start(self._conn, self._generation))
        return sub

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

    # -- the IO thread ------------------------------------------------------------------------

    def _run(self) -> None:
        pause = _BACKOFF[0]
        while True:
            with quiet():
                conn = pika.SelectConnection(
                    self._params,
                    on_open_callback=self._opened,
                    on_open_error_callback=self._open_failed,
                    on_close_callback=self._closed,
                )
                conn.ioloop.start()
            if self._up.is_set():
                pause = _BACKOFF[0]
            self._up.clear()
            time.sleep(pause)
            pause = min(pause * 2, _BACKOFF[1])

    def _opened(self, conn: Any) -> None:
        self._generation += 1
        conn.channel(on_open_callback=lambda ch: self._publishing(conn, ch, first=True))

    def _publishing(self, conn: Any, channel: Any, first: bool = False) -> None:
        def confirmed(_frame: Any) -> None:
            with self._lock:
                self._conn = conn
                subs = list(self._subscriptions) if first else []
            self._up.set()
            self.failure = ""
            for sub in subs:  # a new connection: each consumes again
                sub._start(conn, self._generation)
            self._drain()

        self._channel, self._seq = channel, 0
        self._declared = {}
        channel.add_on_return_callback(self._returned_message)
        channel.add_on_close_callback(self._publishing_closed)
        channel.confirm_delivery(self._confirm, callback=confirmed)

    def _publishing_closed(self, channel: Any, reason: Exception) -> None:
        if channel is not self._channel:
            return
        self._channel = None
        self._fail_unconfirmed()
        conn = self._conn
        if conn is not None and conn.is_open:
            log.warning("transport: the publishing channel closed (%s); opening another", reason)
            with self._lock:
                self._conn = None  # commands wait for the new channel
            conn.channel(on_open_callback=lambda ch: self._publishing(conn, ch))

    def _open_failed(self, conn: Any, error: Exception) -> None:
        self.failure = f"{type(error).__name__}: {error}"
        conn.ioloop.stop()

    def _closed(self, conn: Any, reason: Exception) -> None:
        with self._lock:
            self._conn = None
        self._channel = None
        if self._up.is_set():
            log.warning(
                "transport: the connection to %s dropped (%s); connecting again",
                self.location,
                reason,
            )
        self.failure = f"{type(reason).__name__}: {reason}"
        self._fail_unconfirmed()
        conn.ioloop.stop()

    def _fail_unconfirmed(self) -> None:
        unconfirmed, self._unconfirmed = self._unconfirmed, {}
        self._returned.clear()
        for batch, message_id in unconfirmed.values():
            batch.settle(message_id, False)
        for waiting in self._declared.values():
            for run in waiting or ():
                run()  # each publishes into a closed channel and is refused at once
        self._declared = {}

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._conn is None or not self._commands:
                    return
                command = self._commands.popleft()
            try:
                command()
            except Exception:  # noqa: BLE001 -- one bad command must not stop the others
                log.exception("transport: a command on the IO thread failed")

    def _declare(
        self, channel: Any, queue: str, arguments: dict[str, Any], then: Callable[[], None]
    ) -> None:
        """Declare ``queue`` with ``arguments`` on a channel of its own (a refusal closes that
        one), then run ``then``: a queue declared otherwise is used as it is, with a warning."""

        def opened(side: Any) -> None:
            def refused(_ch: Any, reason: Exception) -> None:
                if getattr(reason, "reply_code", 0) == 406:
                    log.warning(
                        "transport: queue %r exists with other settings than baozi's (%s); "
                        "using it as it is",
                        queue,
                        getattr(reason, "reply_text", reason),
                    )
                    then()

            side.add_on_close_callback(refused)

            def declared(_frame: Any) -> None:
                side.close()
                then()

            side.queue_declare(queue, durable=True, arguments=arguments, callback=declared)

        if self._conn is not None:
            self._conn.channel(on_open_callback=opened)

    def _publish(
        self,
        queue: str,
        arguments: dict[str, Any],
        ids: list[str],
        batch: _Batch,
        companion: tuple[str, dict[str, Any]] | None,
    ) -> None:
        if queue not in self._declared:
            waiting: list[Callable[[], None]] = []
            self._declared[queue] = waiting

            def ready() -> None:
                runs, self._declared[queue] = self._declared.get(queue) or [], None
                for run in runs:
                    run()

            waiting.append(lambda: self._send(queue, ids, batch))
            if companion is None:
                self._declare(self._channel, queue, arguments, ready)
            else:
                self._declare(
                    self._channel,
                    companion[0],
                    companion[1],
                    lambda: self._declare(self._channel, queue, arguments, ready),
                )
            return
        state = self._declared[queue]
        if state is not None:  # being declared: after it
            state.append(lambda: self._send(queue, ids, batch))
            return
        self._send(queue, ids, batch)

    def _send(self, queue: str, ids: list[str], batch: _Batch) -> None:
        channel = self._channel
        for n, message_id in enumerate(ids):
            if channel is None or not channel.is_open:
                for rest in ids[n:]:
                    batch.settle(rest, False)
                return
            properties = pika.BasicProperties(
                delivery_mode=_PERSISTENT, content_type="text/plain", message_id=message_id
            )
            channel.basic_publish("", queue, message_id.encode(), properties, mandatory=True)
            self._seq += 1
            self._unconfirmed[self._seq] = (batch, message_id)

    def _returned_message(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        if properties.message_id:
            self._returned.add(properties.message_id)

    def _confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        tags = (
            [t for t in self._unconfirmed if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            entry = self._unconfirmed.pop(tag, None)
            if entry is None:
                continue
            batch, message_id = entry
            routed = message_id not in self._returned
            self._returned.discard(message_id)
            batch.settle(message_id, ok and routed)


_channels = itertools.count(1)  # numbers each subscription channel of the process
_links: dict[tuple[str, int], Link] = {}
_links_lock = threading.Lock()


def link_for(url: str) -> Link:
    """This process's link to the broker at ``url`` (made on first use; a forked child makes its
    own)."""
    key = (url, current_pid())
    with _links_lock:
        link = _links.get(key)
        if link is None:
            link = _links[key] = Link(url)
        return link


def _forked() -> None:
    global _links_lock
    _links_lock = threading.Lock()
    _links.clear()


os.register_at_fork(after_in_child=_forked)
