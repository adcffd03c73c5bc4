"""One channel subscription on a connection of its own: subscribe, read, ping a silent line, and
reconnect with backoff when it fails."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from ..._outage import outage
from ...errors import StoreError, StoreUnavailable
from ._link import Link, disconnect


def lost(server: Link, exc: Exception) -> Exception:
    """A listener's failure in baozi's terms: the server refused (it answered), or it is gone."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, redis.ResponseError):
        return StoreError(f"Redis at {server.where} refused: {exc}")
    return StoreUnavailable(f"lost the connection to Redis at {server.where}: {exc}")


class Subscriber:
    """A subscription to ``channel``, read by calling :meth:`read` over and over (by one thread at
    a time): it subscribes when it has no connection, and after a failure it waits a backoff
    pause and subscribes again on the next call.

    The connection is read directly: the client library's PubSub object spends several times
    longer on each message, and the reading thread holds the GIL meanwhile. Subclasses hear of
    the subscription through :meth:`subscribed`, of failures through :meth:`failed`.
    """

    PING_AFTER = 5.0
    """Seconds of silence after which the line is pinged; it counts as dead when the pong does
    not come within as long again (a half-open connection says nothing otherwise)."""

    def __init__(self, server: Link, channel: str, what: str, needed_by: str) -> None:
        self._server = server
        self.channel = channel
        self._what = what  # in outage reports: "the change feed"
        self._needed_by = needed_by  # in the refusal: "idle workers"
        self._conn: Any = None
        self._live = threading.Event()  # subscribed
        self._heard = self._pinged = 0.0
        self._pause = 0.05  # before the next attempt after a failure
        self._error: BaseException | None = None

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def read(self, timeout: float) -> bytes | None:
        """The data of the next message, or None after ``timeout`` seconds without one (or after
        a failure and its backoff pause)."""
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._server._connect()
                conn.send_command("SUBSCRIBE", self.channel)
                self._heard, self._pinged = time.monotonic(), 0.0
            if not conn.can_read(timeout=timeout):
                now = time.monotonic()
                if self._pinged and now - self._pinged > self.PING_AFTER:
                    raise redis.ConnectionError(f"no answer to a ping on {self._what}")
                if not self._pinged and now - self._heard > self.PING_AFTER:
                    conn.send_command("PING")
                    self._pinged = now
                return None
            reply = conn.read_response()
            self._heard, self._pinged = time.monotonic(), 0.0
            kind = reply[0]
            if kind == b"message":
                return bytes(reply[2])
            if kind == b"subscribe":
                self.subscribed()
                self._live.set()
                self._pause = 0.05
                outage(self._server.url).ok(self._what)
            return None  # a pong
        except Exception as exc:  # noqa: BLE001 -- any failure: reconnect with backoff
            self._error = exc
            self.close()
            if self.failed(exc):
                outage(self._server.url).failed(lost(self._server, exc), self._what)
                time.sleep(self._pause)
                self._pause = min(self._pause * 2, 2.0)
            return None

    def subscribed(self) -> None:
        """Called when the subscription is confirmed, before it counts as live."""

    def failed(self, exc: Exception) -> bool:
        """Called when the line failed (closed by now); True to report it and retry after the
        backoff pause, False when the subclass dealt with it."""
        return True

    def close(self) -> None:
        """Drop the subscription (the next :meth:`read` subscribes again)."""
        self._live.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            disconnect(conn)

    def wait_live(self) -> None:
        """Wait until subscribed, for the retry window and a little more; raise StoreError when
        the server refused the subscribe, StoreUnavailable when it did not answer."""
        server = self._server
        if self._live.wait(server.retry + 2.5):
            return
        if isinstance(self._error, redis.ResponseError):  # it answered: with a refusal
            raise self.refusal(self._error)
        raise StoreUnavailable(
            f"Redis at {server.where} did not answer a subscribe to {self.channel} "
            f"({self._error}); check that redis-server is running and reachable"
        )

    def refusal(self, exc: BaseException) -> StoreError:
        """The error for a subscribe the server refused (an ACL user without the command, say)."""
        server = self._server
        return StoreError(
            f"Redis at {server.where} refused to subscribe to {self.channel} ({exc}); "
            f"{self._needed_by} need the SUBSCRIBE command and that channel "
            f"(for an ACL user: +subscribe and &{server.prefix}:*)"
        )
