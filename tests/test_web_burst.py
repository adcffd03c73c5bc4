"""``baozi serve`` under a burst: several server processes on one port, orders filed in batches
(group commit) with exact places, a cap on connections, a deadline for a request's head, and
pipelined requests -- against real server processes on real stores."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from baozi import App

from ._web import free_port

HERE = Path(__file__).resolve().parent
BAOZI = [sys.executable, "-m", "baozi"]


class Server:
    def __init__(self, url: str, port: int, proc: subprocess.Popen[str]) -> None:
        self.url, self.port, self.proc = url, port, proc
        self.base = f"http://127.0.0.1:{port}"


def _start(url: str, *options: str) -> Server:
    port = free_port()
    env = {**os.environ, "BAOZI_TEST_URL": url}
    env.pop("BAOZI_URL", None)
    proc = subprocess.Popen(
        [*BAOZI, "serve", "webapp:app", "--url", url, "--port", str(port), *options]
        + ["--log-level", "warning"],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(url, port, proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{server.base}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            raise AssertionError(
                f"the server did not start: {proc.stdout.read() if proc.stdout else ''}"
            )
        time.sleep(0.05)


def _stop(server: Server) -> str:
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        out, _ = proc.communicate()
    return out


def _serve(url: str, *options: str) -> Iterator[Server]:
    server = _start(url, *options)
    try:
        yield server
    finally:
        out = _stop(server)
        assert "Traceback" not in out, out


@pytest.fixture
def two(shared_url: str) -> Iterator[Server]:
    """``baozi serve --workers 2`` on each store several processes can share."""
    yield from _serve(shared_url, "--workers", "2")


def _order(task: str = "add", args: list[Any] | None = None, **more: Any) -> bytes:
    return json.dumps({"task": task, "args": [1, 2] if args is None else args, **more}).encode()


def _post(body: bytes, *, close: bool = False) -> bytes:
    return (
        b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, json.loads(body) if body else None


async def _burst(
    port: int, bodies: list[bytes], connections: int
) -> list[tuple[int, dict[str, str], Any]]:
    """Each body POSTed once, over ``connections`` keep-alive connections at once; the answers
    in the bodies' order."""
    answers: list[Any] = [None] * len(bodies)
    turns = iter(range(len(bodies)))

    async def lane() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for k in turns:
                writer.write(_post(bodies[k]))
                answers[k] = await _answer(reader)
        finally:
            writer.close()

    await asyncio.gather(*(lane() for _ in range(connections)))
    return answers


def test_two_server_processes_file_a_burst_once_each_with_exact_places(two: Server) -> None:
    bodies = [_order(args=[i, 1]) for i in range(400)]
    # Orders that cannot be filed, among them: refused alone, the others filed regardless.
    bad = {50: _order(task="nope"), 120: _order(args=[1]), 300: _order(kwargs={"c": 3})}
    bad_status = {50: 404, 120: 422, 300: 422}
    for k, body in bad.items():
        bodies[k] = body
    answers = asyncio.run(_burst(two.port, bodies, 100))
    for k, (status, _, body) in enumerate(answers):
        if k in bad:
            assert status == bad_status[k], (k, status, body)
        else:
            assert status == 202, (k, status, body)
            assert body["status"] == "queued" and not body["deduplicated"]
    good = [body for k, (_, _, body) in enumerate(answers) if k not in bad]
    ids = [b["id"] for b in good]
    assert len(set(ids)) == len(ids) == 397
    # No worker takes any: the places handed out are each place in line, once.
    assert sorted(b["position"] for b in good) == list(range(397))
    app = App(two.url)
    try:
        records = app.store.records_of(ids)
        assert set(records) == set(ids)
        assert app.store.job_counts("default")["queued"] == 397
        # The places given match the store's, job by job.
        for body in good[::40]:
            assert app.job(body["id"]).position() == body["position"]
    finally:
        app.store.close()
    # Both processes answer, from the store: their counts agree.
    counts = set()
    for _ in range(8):
        with httpx.Client(base_url=two.base) as client:
            (default,) = [
                q for q in client.get("/api/queues").json()["queues"] if q["name"] == "default"
            ]
            counts.add(default["ready"])
    assert counts == {397}
    children = psutil.Process(two.proc.pid).children(recursive=True)
    assert (
        sum("serve" in " ".join(c.cmdline()) or "spawn" in " ".join(c.cmdline()) for c in children)
        >= 2
    )


def test_a_burst_into_a_bounded_queue_files_what_fits_and_answers_429_to_the_rest(
    two: Server,
) -> None:
    bodies = [_order(args=[i, 1], queue="small") for i in range(60)]
    answers = asyncio.run(_burst(two.port, bodies, 30))
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {202: 2, 429: 58}, statuses
    assert all("retry-after" in headers for status, headers, _ in answers if status == 429)
    app = App(two.url)
    try:
        assert app.store.job_counts("small")["queued"] == 2
    finally:
        app.store.close()


def test_pipelined_requests_are_answered_in_order(two: Server) -> None:
    async def pipeline() -> list[Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", two.port)
        writer.write(b"".join(_post(_order(args=[i, 0])) for i in range(5)))
        answers = [await _answer(reader) for _ in range(5)]
        writer.close()
        return answers

    answers = asyncio.run(pipeline())
    assert [status for status, _, _ in answers] == [202] * 5
    ids = [body["id"] for _, _, body in answers]
    assert len(set(ids)) == 5
    positions = [body["position"] for _, _, body in answers]
    assert positions == sorted(positions)
    app = App(two.url)
    try:
        assert [app.job(i).snapshot().position for i in ids] == positions
    finally:
        app.store.close()


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(
        f"sqlite:///{tmp_path / 'capped.db'}", "--max-connections", "4", "--head-timeout", "0.5"
    )


def test_connections_past_the_cap_get_503_with_retry_after_and_the_server_goes_on(
    capped: Server,
) -> None:
    async def run() -> None:
        held = [await asyncio.open_connection("127.0.0.1", capped.port) for _ in range(4)]
        for reader, writer in held:  # each of the four is served, and stays open
            writer.write(_post(_order()))
            status, headers, _ = await _answer(reader)
            assert status == 202 and headers.get("connection") != "close"
        reader, writer = await asyncio.open_connection("127.0.0.1", capped.port)
        writer.write(_post(_order()))
        status, headers, body = await _answer(reader)
        assert status == 503, body
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        assert "limit of 4 connections" in body["error"]
        assert await reader.read() == b""  # closed by the server
        for reader, writer in held:  # the held ones go on being served
            writer.write(_post(_order()))
            assert (await _answer(reader))[0] == 202
        for _, writer in held[:2]:
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", capped.port)
        writer.write(_post(_order()))
        assert (await _answer(reader))[0] == 202  # room again
        writer.close()
        for _, writer in held[2:]:
            writer.close()

    asyncio.run(run())
    app = App(capped.url)
    try:
        assert app.store.job_counts("default")["queued"] == 4 + 4 + 1  # the refused one: none
    finally:
        app.store.close()


def test_a_connection_that_sends_no_request_head_in_time_is_closed(capped: Server) -> None:
    def closed_within(sock: socket.socket, seconds: float) -> bool:
        sock.settimeout(seconds)
        try:
            return sock.recv(100) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    silent = socket.create_connection(("127.0.0.1", capped.port))
    trickle = socket.create_connection(("127.0.0.1", capped.port))
    trickle.sendall(b"POST /api/jobs HTTP/1.1\r\nHo")
    started = time.monotonic()
    assert closed_within(silent, 10) and closed_within(trickle, 10)
    assert time.monotonic() - started < 5  # the deadline is 0.5 s; generous for a busy machine
    # A connection that keeps sending whole requests is kept.
    with httpx.Client(base_url=capped.base) as client:
        for _ in range(3):
            assert client.post("/api/jobs", json={"task": "add", "args": [1, 2]}).status_code == 202
            time.sleep(0.3)
    # The server answers as before.
    assert httpx.get(f"{capped.base}/healthz").status_code == 200
