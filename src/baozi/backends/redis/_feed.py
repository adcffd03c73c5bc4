"""The change feed: the store's change channel, listened to while anyone in this process waits."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import redis

from ._subscriber import Subscriber

if TYPE_CHECKING:
    from ._server import Server

log = logging.getLogger("baozi.redis")


class Feed(Subscriber):
    """One thread per process that listens to the store's change channel while anyone waits.

    A token handed out first makes sure the subscription is live, so no change after the token
    is missed. The thread unsubscribes once nobody has asked for a token or waited for
    :data:`LINGER` seconds -- a producer, or a worker with work, receives nothing -- and signals
    as it does, so that a token taken before cannot miss a change: its waiter wakes (spuriously)
    and asks again. When the connection drops it signals too, and reconnects with backoff; until
    it is back, new tokens wait for it.
    """

    LINGER = 1.0

    def __init__(self, server: Server) -> None:
        super().__init__(server, server.channel, "the change feed", "baozi's blocking calls")
        self._signal = server.signal
        self._lock = threading.Lock()
        self._want = threading.Event()  # someone asked for a token
        self._last_want = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._refused: BaseException | None = None

    def ensure(self) -> None:
        """Return once the feed is subscribed (see :meth:`Subscriber.wait_live`)."""
        if self._refused is not None:
            raise self.refusal(self._refused)
        with self._lock:
            self._last_want = time.monotonic()
            if self._live.is_set():
                return
            self._want.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._listen, name="baozi-redis-feed", daemon=True
                )
                self._thread.start()
        self.wait_live()

    def stop(self) -> None:
        """End the thread (the store's last handle closed)."""
        self._closed = True
        self._want.set()

    def _idle(self) -> bool:
        """Stop listening if nobody wants to; decided under the lock :meth:`ensure` takes."""
        with self._lock:
            if (
                time.monotonic() - self._last_want < self.LINGER
                or self._signal.waiting
                or self._closed
            ):
                return False
            self._want.clear()
            self._live.clear()
        self._signal.notify()  # tokens from before the unsubscribe must not wait on it
        return True

    def _listen(self) -> None:
        checked = 0.0
        try:
            while not self._closed:
                if not self._want.wait(1.0):
                    continue
                now = time.monotonic()
                if now - checked >= 0.25:  # also while messages keep coming
                    checked = now
                    if self._live.is_set() and self._idle():
                        self.close()
                        continue
                if self.read(0.25) is not None:
                    self._signal.notify()
        finally:
            self.close()

    def subscribed(self) -> None:
        self._refused = None
        self._signal.notify()  # whatever changed before the subscription

    def failed(self, exc: Exception) -> bool:
        self._signal.notify()  # whatever changed while the line was down
        if not isinstance(exc, redis.ResponseError):
            return True
        # Refused: say so, rather than "unreachable", and stop asking.
        self._refused = exc
        self._want.clear()
        log.warning("Redis at %s refused the change feed's subscribe: %s", self._server.where, exc)
        return False
