"""The ceiling for the monitor benchmark: a bare asyncio client on raw sockets, no HTTP library.

    python bench/monitor/bare.py URL N CONCURRENCY

CONCURRENCY keep-alive connections, each a protocol that writes a GET, counts the answer's bytes
by its Content-Length, and writes the next. No redirects, no TLS, no header parsing beyond the
status line and the length: the least CPU a check can cost in Python. It prints how many answered
200 and exits 0 when all did.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit


class _Getter(asyncio.Protocol):
    def __init__(self, request: bytes, todo: list[int], ok: list[int], done: asyncio.Future[None]):
        self.request, self.todo, self.ok, self.done = request, todo, ok, done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if self.todo[0] <= 0:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.todo[0] -= 1
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        if head.startswith(b"http/1.1 200"):
            self.ok[0] += 1
        self.buffer = self.buffer[end + 4 + length :]
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def main(url: str, n: int, concurrency: int) -> int:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    todo, ok = [n], [0]
    dones = []
    for _ in range(min(concurrency, n)):
        done: asyncio.Future[None] = loop.create_future()
        dones.append(done)
        await loop.create_connection(lambda d=done: _Getter(request, todo, ok, d), host, port)
    await asyncio.gather(*dones)
    return ok[0]


if __name__ == "__main__":
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    answered = asyncio.run(main(url, n, c))
    print(answered)
    sys.exit(0 if answered == n else 1)
