"""The URL monitor: check that every URL answers as expected, thousands at once.

In-process it runs coroutines on one thread (httpx's async client). With ``--via-queue`` each
URL is a job for :func:`check_url` -- the same check with httpx's blocking client, so it suits the
thread and gevent pools -- run by workers anywhere: ``baozi worker baozi.monitor:app -P gevent``.
Every failure is a reason in words (refused, DNS, TLS, timeout, redirect, status), never a
traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from .app import App

__all__ = ["Check", "app", "check_many", "check_url", "reason_for"]

SHARD = 50
"""Connections per async client (see :func:`check_many`)."""

TASK = "baozi.monitor:check_url"
"""The job name the monitor enqueues; every worker's app can run it (see ``App.resolve``)."""


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
        return asdict(self)


def reason_for(exc: BaseException, timeout: float) -> str:
    """A short reason in words for a failed request (the exception chain decides)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain)
    for e in chain:
        if isinstance(e, ssl.SSLError) or "SSL" in type(e).__name__:
            return f"TLS error: {_first_line(e)}"
        if isinstance(e, socket.gaierror):
            return f"DNS lookup failed: {_first_line(e)}"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS error: {_first_line(exc)}"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "DNS lookup failed"
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a URL it can check: {_first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _judge(url: str, response: httpx.Response, expect: int, started: float) -> Check:
    seconds = time.monotonic() - started
    status = response.status_code
    if status == expect:
        return Check(url, True, status, seconds, "ok")
    if response.is_redirect:
        where = response.headers.get("location", "?")
        return Check(url, False, status, seconds, f"redirect ({status}) to {where}")
    return Check(url, False, status, seconds, f"HTTP {status} (expected {expect})")


_clients: dict[float, list[httpx.Client]] = {}
_turn = itertools.count()
_clients_lock = threading.Lock()


def _client(timeout: float) -> httpx.Client:
    """One of the process's shared clients, taken in turn: connections stay alive across jobs,
    and no job pays for a client of its own (its TLS context alone costs milliseconds) -- a
    greenlet per job would otherwise make one each time."""
    ring = _clients.get(timeout)
    if ring is None:
        with _clients_lock:
            ring = _clients.get(timeout)
            if ring is None:
                limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)
                ring = _clients[timeout] = [
                    httpx.Client(timeout=timeout, follow_redirects=False, limits=limits)
                    for _ in range(40)
                ]
    return ring[next(_turn) % len(ring)]


def check_url(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
    """Check one URL with httpx's blocking client; the job behind ``--via-queue``."""
    started = time.monotonic()
    try:
        response = _client(timeout).get(url)
    except Exception as exc:  # every failure becomes a reason
        return Check(
            url, False, None, time.monotonic() - started, reason_for(exc, timeout)
        ).as_dict()
    return _judge(url, response, expect, started).as_dict()


async def _check(client: httpx.AsyncClient, url: str, expect: int, timeout: float) -> Check:
    started = time.monotonic()
    try:
        response = await client.get(url)
    except Exception as exc:  # every failure becomes a reason
        return Check(url, False, None, time.monotonic() - started, reason_for(exc, timeout))
    return _judge(url, response, expect, started)


async def check_many(
    urls: Iterable[str],
    expect: int = 200,
    timeout: float = 5.0,
    concurrency: int = 500,
    on_done: Callable[[Check], object] | None = None,
) -> list[Check]:
    """Check every URL, ``concurrency`` at a time, on this event loop; results in input order."""
    urls = list(urls)
    gate = asyncio.Semaphore(concurrency)
    # Several clients of at most SHARD connections each: one client's pool slows down with the
    # square of its connections, and a thousand in one pool spend their time managing it.
    shards = max(1, -(-concurrency // SHARD))
    per = -(-concurrency // shards)
    limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
    clients = [
        httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        for _ in range(shards)
    ]
    try:

        async def one(i: int, url: str) -> Check:
            async with gate:
                result = await _check(clients[i % shards], url, expect, timeout)
            if on_done is not None:
                on_done(result)
            return result

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))
    finally:
        for client in clients:
            await client.aclose()


def check_via_queue(
    app: App,
    urls: list[str],
    expect: int,
    timeout: float,
    on_done: Callable[[Check], object] | None = None,
    wait: float | None = None,
) -> list[Check]:
    """Enqueue one :func:`check_url` job per URL and wait for workers to run them all."""
    task = app.tasks.get(TASK) or app.task(name=TASK)(check_url)
    jobs = task.map([(u, expect, timeout) for u in urls])
    results: dict[str, Check] = {}
    deadline = None if wait is None else time.monotonic() + wait
    for job, url in zip(jobs, urls, strict=True):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            fields = job.result(timeout=left)
            check = Check(**fields)
        except TimeoutError:
            check = Check(url, False, None, 0.0, "no worker checked it in time")
        except Exception as exc:  # the job failed in the worker: still a reason, not a trace
            check = Check(url, False, None, 0.0, f"the check failed in the worker: {exc}")
        results[job.id] = check
        if on_done is not None:
            on_done(check)
    return [results[j.id] for j in jobs]


app = App(importable=("baozi",))
"""An app whose workers run the monitor's checks: ``baozi worker baozi.monitor:app -P gevent``.
Its store is ``BAOZI_URL`` (or the worker's ``--url``)."""
app.task(name=TASK)(check_url)
