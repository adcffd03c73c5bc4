"""The Redis store's subscriptions (the change feed and the hand-off reader): a line that goes
silent is pinged, and one whose pong never comes is dropped and subscribed again -- against a
stand-in server that stops answering once subscribed, as a half-open connection does.

The store pings after 5 s of silence and gives up 5 s later, so each test waits about 10 s."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from baozi.backends import open_store
from baozi.testing.contract.consumer import Inbox

from ._helpers import wait_for


def _command(buf: bytes) -> tuple[list[bytes] | None, bytes]:
    """The first whole command in ``buf`` (an array of bulk strings) and what follows it."""
    if b"\r\n" not in buf:
        return None, buf
    head, rest = buf.split(b"\r\n", 1)
    parts = []
    for _ in range(int(head[1:])):
        if b"\r\n" not in rest:
            return None, buf
        size, rest = rest.split(b"\r\n", 1)
        n = int(size[1:])
        if len(rest) < n + 2:
            return None, buf
        parts.append(rest[:n])
        rest = rest[n + 2 :]
    return parts, rest


class SilentRedis:
    """Answers a connection's set-up, confirms a SUBSCRIBE, and then says nothing: no pong."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.subscribes = 0
        self.values: dict[bytes, bytes] = {}  # what SET stored (the store's layout version)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        subscribed = [False]  # this connection's
        with conn:
            while data := conn.recv(65536):
                buf += data
                while True:
                    command, buf = _command(buf)
                    if command is None:
                        break
                    conn.sendall(self._answer(command, subscribed))

    def _answer(self, command: list[bytes], subscribed: list[bool]) -> bytes:
        name = command[0].upper()
        if name == b"SUBSCRIBE":
            self.subscribes += 1
            subscribed[0] = True
            channel = command[1]
            return b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
        if name == b"PING":
            # Before its subscribe a line answers (some redis-py versions ping a new connection
            # first); once subscribed it is dead: nothing comes back.
            return b"" if subscribed[0] else b"+PONG\r\n"
        if name == b"HGET":
            return b"$-1\r\n"
        if name == b"SCAN":  # an empty database
            return b"*2\r\n$1\r\n0\r\n*0\r\n"
        if name == b"SET":
            self.values.setdefault(command[1], command[2])
        if name == b"GET":
            value = self.values.get(command[1])
            return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
        return b"+OK\r\n"

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def silent() -> Iterator[SilentRedis]:
    fake = SilentRedis()
    yield fake
    fake.close()


def test_a_change_feed_whose_pings_go_unanswered_subscribes_again(
    silent: SilentRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="baozi")
    store = open_store(f"redis://127.0.0.1:{silent.port}/0")
    wakes: list[None] = []
    stop = store.on_change(lambda: wakes.append(None))  # a waiter: the feed stays subscribed
    try:
        assert silent.subscribes == 1
        subscribed_wakes = len(wakes)
        wait_for(lambda: silent.subscribes >= 2, timeout=60)
        assert len(wakes) > subscribed_wakes  # the drop woke the waiter, which looks again
        assert "no answer to a ping on the change feed" in caplog.text
    finally:
        stop()
        store.close()


def test_a_hand_off_reader_whose_pings_go_unanswered_subscribes_again(
    silent: SilentRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="baozi")
    store = open_store(f"redis://127.0.0.1:{silent.port}/0")
    consumer = store.consumer("w1", ["q"], 30.0, Inbox())  # reads its hand-off channel
    try:
        wait_for(lambda: silent.subscribes >= 2, timeout=60)
        assert "no answer to a ping on the hand-off channel" in caplog.text
    finally:
        consumer.close()
        store.close()
