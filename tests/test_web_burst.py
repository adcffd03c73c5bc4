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
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from baozi import App

from ._helpers import wait_for
from ._web import free_port

HERE = Path(__file__).resolve().parent
BAOZI = [sys.executable, "-m", "baozi"]


class Server:
    def __init__(self, url: str, port: int, proc: subprocess.Popen[str], log: Any) -> None:
        self.url, self.port, self.proc, self.log = url, port, proc, log
        self.base = f"http://127.0.0.1:{port}"


def _start(url: str, *options: str) -> Server:
    port = free_port()
    env = {**os.environ, "BAOZI_TEST_URL": url}
    env.pop("BAOZI_URL", None)
    # Its output goes to a file: a pipe nobody reads until the end could fill, and block it.
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [*BAOZI, "serve", "webapp:app", "--url", url, "--port", str(port), *options]
        + ["--log-level", "warning"],
        cwd=HERE,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(url, port, proc, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{server.base}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the server did not start: {_stop(server)}")
        time.sleep(0.05)


def _stop(server: Server) -> str:
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    server.log.seek(0)
    out: str = server.log.read()
    server.log.close()
    return out


def _serve(url: str, *options: str) -> Iterator[Server]:
    server = _start(url, *options)
    try:
        yield server
    finally:
        out = _stop(server)
        assert "Traceback" not in out, out


_serving = contextmanager(_serve)


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


class Told:
    """What a patient client heard while filing one order: each failed try, and the job it got."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()
        self.answer: tuple[int, dict[str, str], Any] | None = None


async def _insist(port: int, bodies: list[bytes], connections: int, deadline: float) -> list[Told]:
    """Each body POSTed until it is accepted, over ``connections`` keep-alive connections: a
    connection the server drops is opened again, and a 503 or 429 tried again after a pause (a
    short one: the test has no time for the Retry-After it is told)."""
    told = [Told() for _ in bodies]
    turns = iter(range(len(bodies)))

    async def lane() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for k in turns:
            while time.monotonic() < deadline:
                try:
                    if conn is None:
                        conn = await asyncio.open_connection("127.0.0.1", port)
                    conn[1].write(_post(bodies[k]))
                    status, headers, body = await _answer(conn[0])
                except (OSError, asyncio.IncompleteReadError) as exc:
                    told[k].failures[type(exc).__name__] += 1
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    await asyncio.sleep(0.05)
                    continue
                if status in (202, 200):
                    told[k].answer = (status, headers, body)
                    break
                told[k].failures[f"{status} retry-after={headers.get('retry-after')}"] += 1
                await asyncio.sleep(0.1)
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(lane() for _ in range(connections)))
    return told


def _check_each_order_stored(url: str, told: list[Told], *, keyed: bool = False) -> Counter[str]:
    """Every order was accepted, every id handed out is its stored job, and an order is stored
    twice only when a try of it went unanswered (the client could not know it was filed), and
    never when the orders carry a unique key. The failures the clients met, by kind."""
    assert all(t.answer is not None for t in told), "orders never accepted"
    ids = [t.answer[2]["id"] for t in told if t.answer]
    assert len(set(ids)) == len(ids)
    app = App(url)
    try:
        records = app.store.records(queue="default", limit=len(told) * 3)
        stored: Counter[int] = Counter(app.codec.loads(r.payload)[0][0] for r in records)
        by_id = {r.id: r for r in records}
    finally:
        app.store.close()
    for k, t in enumerate(told):
        assert t.answer
        record = by_id.get(t.answer[2]["id"])
        assert record is not None, f"order {k}: the id handed out is no stored job"
        assert app.codec.loads(record.payload)[0][0] == k
        assert stored[k] == 1 or (stored[k] > 1 and t.failures), (k, stored[k], t.failures)
    assert set(stored) == set(range(len(told)))
    if keyed or not any(t.failures for t in told):
        assert sum(stored.values()) == len(told)  # each once
    failures: Counter[str] = Counter()
    for t in told:
        failures.update(t.failures)
    return failures


def _server_children(server: Server) -> list[psutil.Process]:
    """The server's live worker processes (a killed one not yet reaped is left out)."""
    children = []
    for c in psutil.Process(server.proc.pid).children():
        try:
            if "spawn_main" in " ".join(c.cmdline()):
                children.append(c)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return children


def _clients_of(process: psutil.Process, port: int) -> int:
    """How many client connections to ``port`` the server process holds."""
    connections = getattr(process, "net_connections", None) or process.connections
    return sum(
        1
        for c in connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def _burst_with(server: Server, n: int, fault: Any, *, keyed: bool = False) -> list[Told]:
    """A burst of ``n`` orders from 100 connections, with ``fault()`` called in another thread
    once the store holds a fifth of them. Keyed orders carry a unique key each, held for ten
    minutes: a retried one is answered with the job its first try made."""
    import threading

    keys: list[dict[str, Any]] = [
        {"unique_key": f"order-{k}", "unique_for": 600} if keyed else {} for k in range(n)
    ]
    bodies = [_order(args=[k, 0], **keys[k]) for k in range(n)]
    result: list[list[Told]] = []
    runner = threading.Thread(
        target=lambda: result.append(
            asyncio.run(_insist(server.port, bodies, 100, time.monotonic() + 90))
        )
    )
    runner.start()
    app = App(server.url)
    try:
        wait_for(lambda: app.store.job_counts("default")["queued"] >= n // 5, timeout=30)
        assert app.store.job_counts("default")["queued"] < n, "the burst ended before the fault"
    finally:
        app.store.close()
    fault()
    runner.join(120)
    assert result, "the burst did not end"
    return result[0]


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_a_server_process_killed_mid_burst_loses_no_order_and_is_replaced(
    tmp_path: Path, keyed: bool
) -> None:
    # A plain order whose answer was lost with the process may be filed again when the client
    # tries again; an order with a unique key never is.
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    with _serving(url, "--workers", "2") as server:
        before = _server_children(server)
        assert len(before) == 2
        victims: list[tuple[int, int]] = []

        def kill_the_busier() -> None:
            # The kernel need not share the connections evenly between the processes (one
            # may have accepted all 100): the one holding more clients is killed.
            held = [(_clients_of(p, server.port), p) for p in before]
            count, victim = max(held, key=lambda pair: pair[0])
            victims.append((victim.pid, count))
            victim.send_signal(signal.SIGKILL)

        told = _burst_with(server, 3000, kill_the_busier, keyed=keyed)
        assert victims and victims[0][1] > 0, f"no process held a client: {victims}"
        victim = next(p for p in before if p.pid == victims[0][0])
        failures = _check_each_order_stored(url, told, keyed=keyed)
        # The kill landed mid-burst: clients of the killed process lost their connection.
        assert failures, "no client met the kill"
        assert all(not kind.startswith("5") or kind.startswith("503") for kind in failures)
        # The supervisor starts another in its place, and both answer.
        wait_for(
            lambda: (
                len(_server_children(server)) == 2
                and victim.pid not in {c.pid for c in _server_children(server)}
            ),
            timeout=30,
        )
        wait_for(lambda: httpx.get(f"{server.base}/healthz").status_code == 200, timeout=10)


@pytest.mark.parametrize(
    ("retry", "outage"), [(2.0, 0.5), (0.3, 2.0)], ids=["within-retry", "past-retry"]
)
def test_a_redis_restarted_mid_burst_loses_no_order(
    tmp_path: Path, retry: float, outage: float
) -> None:
    # Within the store's retry window (the URL's ?retry=) the server waits the outage out and
    # every order is filed once; past it, the server answers 503 with Retry-After, goes on
    # answering, and files the orders tried again once Redis is back.
    from ._redisserver import PrivateRedis

    redis = PrivateRedis(tmp_path)
    redis.start()
    url = f"{redis.url}?retry={retry}"
    try:
        with _serving(url, "--workers", "2") as server:

            def restart() -> None:
                redis.kill()
                time.sleep(outage)
                redis.start()

            told = _burst_with(server, 3000, restart)
            failures = _check_each_order_stored(url, told)
            if outage < retry:
                assert not failures, failures
            else:
                assert failures, "no client met the outage"
                # Never a dropped connection or another error.
                assert {kind.split()[0] for kind in failures} == {"503"}, failures
                assert all("retry-after=None" not in kind for kind in failures), failures
            assert len(_server_children(server)) == 2
    finally:
        if redis.process is not None:
            redis.process.kill()
            redis.process.wait(10)


def test_a_batch_whose_store_call_is_lost_is_not_filed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store files the batch and the reply is lost (the connection drops after the commit):
    # the order is answered 503, and not filed a second time behind its client's back.
    from baozi.errors import StoreUnavailable

    from ._web import make_app, served

    app = make_app(f"sqlite:///{tmp_path / 'lost.db'}")
    real = app.store.enqueue_placed

    def filed_then_lost(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise StoreUnavailable("the store did not answer (fault injected after the commit)")

    monkeypatch.setattr(app.store, "enqueue_placed", filed_then_lost)
    with served(app) as base, httpx.Client(base_url=base) as http:
        answer = http.post("/api/jobs", json={"task": "add", "args": [1, 2]})
    assert answer.status_code == 503 and "retry-after" in answer.headers, answer.text
    assert app.store.counts("default").ready == 1


def test_store_failures_are_logged_a_line_at_most_every_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from baozi.web.server import _StoreFailures

    failures = _StoreFailures(every=10.0)
    with caplog.at_level("WARNING", logger="baozi.web"):
        for k in range(50):
            failures.failed(ConnectionError(f"down {k}"))
        assert [r.getMessage() for r in caplog.records] == ["store failed: down 0"]
        failures.last -= 10.0  # as if ten seconds went by
        failures.failed(ConnectionError("down 50"))
    assert caplog.records[-1].getMessage() == (
        "store failed: down 50 (and 49 requests more since the last such line)"
    )


def test_a_response_goes_out_in_one_send_and_a_streamed_head_at_once() -> None:
    # Head and body written together leave together; a head whose body comes later still
    # leaves at once (at the loop's next turn), and a response with no body is not held.
    from ._web import served_asgi

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await asyncio.sleep(1.0)
            await send({"type": "http.response.body", "body": b"late", "more_body": False})
        elif path == "/empty":
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        else:
            headers = [(b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"hello"})

    with served_asgi(asgi) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(5)
            sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(65536)  # one segment: the head and the body
            assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"\r\n\r\nhello")
            sock.sendall(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 204")
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 0.8
            rest = b""
            while not rest.endswith(b"0\r\n\r\n"):
                rest += sock.recv(65536)
            assert b"late" in rest
