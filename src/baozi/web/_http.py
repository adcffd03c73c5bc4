"""The HTTP/1.1 connection handling under ``baozi serve``: uvicorn's httptools protocol with a cap
on open connections and a deadline for each request's head.

- A connection beyond ``max_connections`` (per server process) is still read, and its request is
  answered ``503`` with ``Retry-After`` and ``Connection: close``: the client hears why and when
  to come back, and the server goes on answering everyone else.
- A connection must send a complete request head within ``head_timeout`` seconds of opening, and
  of starting each later request; one that sends nothing, or trickles its head a byte at a time
  (slowloris), is closed. Between requests a keep-alive connection may idle for uvicorn's
  ``timeout_keep_alive``.
- A response goes out in one send where uvicorn makes two (its head, then its body): each send
  on a socket is a system call, and on loopback the kernel delivers the data to the reader within
  it -- about a tenth of the server's CPU for a small JSON answer.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import httptools  # noqa: F401 -- the C parser the protocol below runs on (baozi[web] installs it)
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_HEAD_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "protocol", "raise_file_limit"]

DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_HEAD_TIMEOUT = 10.0
RETRY_AFTER = 1


def _busy_app(limit: int) -> Any:
    body = json.dumps(
        {
            "error": f"this server process holds its limit of {limit} connections; "
            f"retry after {RETRY_AFTER} s"
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER).encode()),
        (b"connection", b"close"),
    ]

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return busy


class _OneSend:
    """A connection's transport whose writes of one turn of the event loop go out as one: a write
    is held until the next write (then both are sent at once) or the loop's next turn, whichever
    comes first. A response's head and body, written one after the other, make one send; a head
    whose body comes later (a stream) leaves at the next turn, as good as at once."""

    __slots__ = ("_transport", "_loop", "_held", "_timer")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._timer: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._timer = self._loop.call_soon(self._flush)
            return
        self._held = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.write(held + data)

    def _flush(self) -> None:
        self._timer = None
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, set_protocol...
        return getattr(self._transport, name)


class CappedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a connection cap and a request-head deadline (see the module)."""

    max_connections = DEFAULT_MAX_CONNECTIONS
    head_timeout = DEFAULT_HEAD_TIMEOUT
    busy_app: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _OneSend(transport, self.loop)  # type: ignore[assignment]
        self._over = len(self.connections) > self.max_connections
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # A response under way when the server stops is a stream (the dashboard's events): it
        # would hold the shutdown for as long as its client listens. Tell it the client left,
        # so that it ends; the browser comes back to the next server.
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.close()
            return
        super().shutdown()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        if not self._over:
            super().on_headers_complete()
            return
        app, self.app = self.app, self.busy_app
        try:
            super().on_headers_complete()
        finally:
            self.app = app


def protocol(max_connections: int, head_timeout: float) -> type[CappedProtocol]:
    """The protocol class for one server's settings (uvicorn makes one instance per
    connection). A class defined here, at module level, so that worker processes can import it;
    its settings travel in the environment (see ``serve``)."""
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections}")
    if not head_timeout > 0:
        raise ValueError(f"head_timeout must be a positive number of seconds, not {head_timeout}")
    CappedProtocol.max_connections = max_connections
    CappedProtocol.head_timeout = head_timeout
    CappedProtocol.busy_app = staticmethod(_busy_app(max_connections))
    return CappedProtocol


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (within the hard limit), so that
    the connection cap, not the limit, decides when connections are refused; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft
