"""What a check found: the :class:`Check` record and the reason in words for each failure."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Check", "failed", "judge", "reason_for"]


@dataclass(frozen=True, slots=True)
class Check:
    """How one URL answered."""

    url: str
    ok: bool
    status: int | None
    seconds: float
    reason: str
    """"ok", or why not: "HTTP 404 (expected 200)", "connection refused", "timed out after 5s"..."""

    def as_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies each field, a cost paid once per job.
        return {
            "url": self.url,
            "ok": self.ok,
            "status": self.status,
            "seconds": self.seconds,
            "reason": self.reason,
        }


def judge(url: str, status: int, location: str | None, expect: int, started: float) -> Check:
    """The check of a URL that answered ``status`` (and ``location``, its Location header)."""
    seconds = time.monotonic() - started
    if status == expect:
        return Check(url, True, status, seconds, "ok")
    if 300 <= status < 400 and location is not None:
        return Check(url, False, status, seconds, f"redirect ({status}) to {location}")
    return Check(url, False, status, seconds, f"HTTP {status} (expected {expect})")


def failed(url: str, exc: BaseException, timeout: float, started: float) -> Check:
    """The check of a URL whose request raised ``exc``."""
    return Check(url, False, None, time.monotonic() - started, reason_for(exc, timeout))


def reason_for(exc: BaseException, timeout: float) -> str:
    """A short reason in words for a failed request; the exception chain decides, so it serves
    every client (aiohttp, geventhttpclient, or the socket and ssl errors under them)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, TimeoutError) or type(e).__name__ == "Timeout":
            return f"timed out after {timeout:g}s"
    for e in chain:
        if isinstance(e, ssl.SSLError | ssl.CertificateError) or "SSL" in type(e).__name__:
            return f"TLS error: {_first_line(e)}"
        if isinstance(e, socket.gaierror) or "DNSError" in type(e).__name__:
            return f"DNS lookup failed: {_first_line(e)}"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    text = " ".join(str(e) for e in chain)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if any("URL" in type(e).__name__ or "Url" in type(e).__name__ for e in chain):
        return f"not a URL it can check: {_first_line(exc)}"
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain):
        return "connection reset by the server"
    if "ServerDisconnected" in type(exc).__name__:
        return "the server closed the connection without an answer"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        os_error = getattr(seen, "os_error", None)  # aiohttp keeps the socket's error here
        if isinstance(os_error, BaseException) and os_error is not seen:
            chain.append(os_error)
        seen = seen.__cause__ or seen.__context__
    return chain


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
