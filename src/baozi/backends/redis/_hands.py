"""Hand-offs: jobs that a push or a settle leases straight to a worker of this process waiting
idle, sent on this process's own channel and given to that worker's receiver."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from ._link import Link
from ._subscriber import Subscriber

log = logging.getLogger("baozi.redis")

Receiver = Callable[[str, list[Any], Callable[[], None]], object]
"""Takes handed jobs: their queue, the reserve script's flat reply, and a function to call once
they are counted as the worker's own."""


class Hands(Link):
    """What a server link adds for hand-offs: receivers by worker (owner), and the reader."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # Jobs handed to this process's idle workers come on a channel of its own, to the
        # receiver of the worker (owner) they are leased to.
        self.hand_channel = f"{self.prefix}:hand:{secrets.token_hex(8)}"
        self.receivers: dict[str, Receiver] = {}
        self.received: dict[str, int] = {}  # handed jobs each receiver has taken in
        self._waits_on: dict[str, set[str]] = {}  # the queues each receiver may wait idle on
        # Owners that stopped receiving, until their fence comes back on the channel: hand-offs
        # published before it are still read (and returned), so none is left to its lease.
        self.draining: dict[str, threading.Event] = {}
        self._hands = HandReader(self)

    def receive(self, owner: str, receiver: Receiver | None) -> None:
        """Have jobs handed to ``owner`` given to ``receiver`` (on a hand-off reader's thread);
        None stops that, and takes the owner off every queue."""
        if receiver is not None:
            self.receivers[owner] = receiver
            self.received.setdefault(owner, 0)
            self._hands.ensure()
            return
        fence = threading.Event()
        reading = self._hands.live
        if reading:
            self.draining[owner] = fence
        self.receivers.pop(owner, None)
        queues = self._waits_on.pop(owner, set())
        commands: list[tuple[Any, ...]] = [
            ("ZREM", f"{self.prefix}:q:{q}:w", owner) for q in sorted(queues)
        ]
        commands.append(("HDEL", f"{self.prefix}:wi", owner))
        commands.append(("HDEL", f"{self.prefix}:wh", owner))
        # Once off the idle lists no script hands it anything more; one that did before
        # published before this fence, so the reader has seen it when the fence comes back.
        commands.append(("PUBLISH", self.hand_channel, _field(b"") + _field(owner.encode())))
        self.received.pop(owner, None)
        try:
            self.call("stop hand-offs", lambda retried: self.pipeline(*commands))
            if reading and not fence.wait(_FENCE_WAIT):
                log.warning(
                    "worker %s: the hand-off channel did not echo its stop within %g s; a job "
                    "handed to it just before may wait out its lease",
                    owner,
                    _FENCE_WAIT,
                )
        finally:
            self.draining.pop(owner, None)

    def hand_to(self, owner: str, queue: str) -> tuple[str, int]:
        """What a reserve by ``owner`` names so that it waits idle for jobs handed to it: the
        channel ('' when it does not receive them, or the reader is down) and how many handed
        jobs it has taken in."""
        if owner in self.receivers and self._hands.live:
            self._waits_on.setdefault(owner, set()).add(queue)
            return self.hand_channel, self.received.get(owner, 0)
        return "", 0

    def dispatch(self, data: bytes) -> None:
        """Jobs handed to a worker of this process: give them to its receiver."""
        fields = _fields(data)
        queue, owner, flat = fields[0].decode(), fields[1].decode(), fields[2:]
        if not queue:  # a stopping worker's fence: everything handed to it was read
            fence = self.draining.get(owner)
            if fence is not None:
                fence.set()
            return
        receiver = self.receivers.get(owner)
        n = len(flat) // 6

        def took() -> None:
            if owner in self.received:
                self.received[owner] += n

        try:
            if receiver is not None:
                receiver(queue, flat, took)
                return
            # Its worker stopped meanwhile: the jobs go back to their place at once.
            self.hand_back(queue, owner, [flat[i].decode() for i in range(0, len(flat), 6)])
        except Exception:  # noqa: BLE001 -- their leases run out and they run again
            log.exception("jobs handed to worker %s: could not take or return them", owner)

    def hand_back(self, queue: str, owner: str, ids: list[str]) -> None:
        """Return handed jobs unstarted to their place, without counting a delivery."""
        self.run("lease", queue, owner, "return", "0.0", *ids)


_FENCE_WAIT = 2.0  # how long a stopping worker waits for its fence to come back


def _field(value: bytes) -> bytes:
    """A value as a hand-off message writes it: its length, ':', the value."""
    return str(len(value)).encode() + b":" + value


def _fields(data: bytes) -> list[bytes]:
    """Split a hand-off message: each value written as its length, ':', the value."""
    out: list[bytes] = []
    i, end = 0, len(data)
    while i < end:
        j = data.index(b":", i)
        k = j + 1 + int(data[i:j])
        out.append(data[j + 1 : k])
        i = k
    return out


class HandReader(Subscriber):
    """Reads this process's hand-off channel on a connection of its own, while any worker here
    receives jobs from it.

    The thread that reads a message gives the reading over to a second thread -- which waits
    for that, and exists as long as any reader does -- and then hands the jobs to their worker's
    receiver itself, so the receiver may start a job right in this thread, without waking
    another. At most two threads wait to read; more exist only while receivers run jobs.
    """

    def __init__(self, server: Hands) -> None:
        super().__init__(server, server.hand_channel, "the hand-off channel", "idle workers")
        self._host = server
        self._read = threading.Lock()  # held by the thread that reads
        self._state = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads waiting to read

    def ensure(self) -> None:
        """Return once the channel is subscribed (see :meth:`Subscriber.wait_live`)."""
        with self._state:
            if self._threads == 0:
                self._spawn()
        self.wait_live()

    def _spawn(self) -> None:  # holds _state
        self._threads += 1
        threading.Thread(target=self._run, name="baozi-redis-hand", daemon=True).start()

    def _wanted(self) -> bool:
        host = self._host
        return bool(host.receivers or host.draining) and not host._released

    def _run(self) -> None:
        try:
            while self._wanted():
                with self._state:
                    if self._waiting >= 2:
                        return  # enough threads wait already
                    self._waiting += 1
                self._read.acquire()
                try:
                    with self._state:
                        self._waiting -= 1
                        if self._waiting == 0:
                            self._spawn()  # the next to read, while this one may work
                    data = self.read(1.0)
                finally:
                    self._read.release()
                if data is not None:
                    self._host.dispatch(data)
        finally:
            with self._state:
                self._threads -= 1
                if self._threads == 0 and self._wanted():
                    self._spawn()  # a receiver came while this one was leaving
                last = self._threads == 0
            if last:
                with self._read, self._state:
                    if self._threads == 0:  # still: no reader started meanwhile
                        self.close()

    def subscribed(self) -> None:
        # Jobs handed while no reader listened are lost on the way (their leases run out and
        # they run again): none of them is on its way any more.
        hands = self._host
        for owner in list(hands.receivers):
            handed = hands.execute("HGET", f"{hands.prefix}:wh", owner)
            hands.received[owner] = int(handed or 0)
