"""The HTTP/1.1 connection handling under ``baozi serve``: uvicorn's httptools protocol with a cap
on open connections and a deadline for each request's head.

- A connection beyond ``max_connections`` (per server process) is still read, and its request is
  answered ``503`` with ``Retry-After`` and ``Connection: close``: the client hears why and when
  to come back, and the server goes on answering everyone else.
- A connection must send a complete request head within ``head_timeout`` seconds of opening, and
  of starting each later request; one that sends nothing, or trickles its head a byte at a time
  (slowloris), is closed. Between requests a keep-alive connection may idle for uvicorn's
  ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

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


class CappedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a connection cap and a request-head deadline (see the module)."""

    max_connections = DEFAULT_MAX_CONNECTIONS
    head_timeout = DEFAULT_HEAD_TIMEOUT
    busy_app: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
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
