"""The burst benchmark's HTTP client: raw asyncio protocols on uvloop, no HTTP library, so that
the client is not what limits the rate.

    python bench/burst/client.py --port P --mode closed|newconn|open [--n N] [-c C] [--rate R]
        [--seconds S] [--path /api/jobs] [--body JSON] [--poll SECONDS] [--poll-limit SECONDS]
        [--burst-done FILE] [--idle-max SECONDS] [--procs K] [--out FILE]

- ``closed``: C keep-alive connections, each sending its next POST as soon as the last answer
  arrived, N in all.
- ``newconn``: the same, but every request on a connection of its own (``Connection: close``).
- ``open``: POSTs start at a fixed R per second for S seconds, whatever the answers do; each
  goes out on an idle one of C keep-alive connections (a new one if none is idle).

With ``--poll``, each connection then asks ``GET /api/jobs/{id}`` for the last job it was given,
once every that many seconds, until the job has ended, and records each answer's latency and the
position it read (which must never go up).

With ``--procs K``, K client processes share the load (requests, connections and rate split
evenly) and their reports are merged into one.

Writes one JSON document: counts by status and by error kind, latencies (seconds, sorted), the
ids handed out with a 2xx, retry-after values seen, the polls' latencies and any rise in a
position, the latencies of the requests sent on a connection already open
(``reused_latencies``), and the client's own CPU seconds (``cpu``: the burst; ``poll_cpu``:
the polling).
It raises its open-file soft limit to the hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

_ID = re.compile(rb'"id":\s*"([^"]+)"')
_POSITION = re.compile(rb'"position":\s*(null|-?\d+)')
_STATUS = re.compile(rb'"status":\s*"([a-z]+)"')


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class Conn(asyncio.Protocol):
    """One HTTP/1.1 connection: send a request, wait for its whole answer."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.last = time.monotonic()  # when it last finished an answer (or was made)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed before the answer"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._parse()

    def _parse(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).split(b"\r\n")
        status = int(head[0].split(b" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        self.last = time.monotonic()
        self.waiter.set_result(Answer(status, headers, body))

    async def request(self, raw: bytes) -> Answer:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return await self.waiter


def post(path: str, body: bytes, *, close: bool = False) -> bytes:
    conn = b"Connection: close\r\n" if close else b""
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        + conn
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def get(path: str) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def usable(conn: Conn | None, idle_max: float) -> bool:
    """Whether to send the next request on ``conn``: open, and idle for less than ``idle_max``
    seconds. A server closes a connection idle past its keep-alive timeout (uvicorn's: 5 s); a
    request sent just as it does would fail for no fault of the server's, so a connection idle
    that long is closed here and a new one made instead, as HTTP clients' pools do."""
    if conn is None or conn.closed.done():
        return False
    if time.monotonic() - conn.last < idle_max:
        return True
    if conn.transport is not None:
        conn.transport.close()
    return False


class Run:
    def __init__(self, port: int, raw: bytes, raw_close: bytes, idle_max: float = 4.0) -> None:
        self.port = port
        self.idle_max = idle_max
        self.raw = raw
        self.raw_close = raw_close
        self.latencies: list[float] = []
        self.reused: list[float] = []  # the latencies of requests on a connection already open
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.ids: list[str] = []
        self.retry_after: Counter[str] = Counter()
        self.last_id: dict[int, str] = {}

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Conn, "127.0.0.1", self.port)
        return conn

    def record(self, answer: Answer, started: float, slot: int, reused: bool) -> None:
        latency = time.perf_counter() - started
        self.latencies.append(latency)
        if reused:
            self.reused.append(latency)
        self.statuses[answer.status] += 1
        if 200 <= answer.status < 300:
            match = _ID.search(answer.body)
            if match:
                job_id = match.group(1).decode()
                self.ids.append(job_id)
                self.last_id[slot] = job_id
            elif answer.body != b"{}" and b"bare" not in answer.body:
                self.errors["2xx without an id"] += 1
        else:
            if b"retry-after" in answer.headers:
                self.retry_after[answer.headers[b"retry-after"].decode()] += 1
            else:
                self.errors[f"{answer.status} without Retry-After"] += 1

    def failed(self, exc: BaseException) -> None:
        self.errors[type(exc).__name__] += 1

    async def one(self, conn: Conn | None, slot: int, close: bool) -> Conn | None:
        started = time.perf_counter()
        reused = usable(conn, self.idle_max)
        try:
            if not reused:
                conn = await self.connect()
            assert conn is not None
            answer = await conn.request(self.raw_close if close else self.raw)
        except (TimeoutError, OSError) as exc:
            self.failed(exc)
            return None
        self.record(answer, started, slot, reused)
        if close or answer.headers.get(b"connection", b"").lower() == b"close":
            assert conn.transport is not None
            conn.transport.close()
            return None
        return conn

    async def closed_loop(self, n: int, c: int, close: bool) -> None:
        counter = iter(range(n))

        async def lane(slot: int) -> None:
            conn: Conn | None = None
            for _ in counter:
                conn = await self.one(conn, slot, close)
            if conn is not None and conn.transport is not None:
                self.conns.append((slot, conn))

        self.conns: list[tuple[int, Conn]] = []
        await asyncio.gather(*(lane(i) for i in range(c)))

    async def open_loop(self, rate: float, seconds: float, c: int) -> None:
        idle: list[tuple[int, Conn | None]] = [(i, None) for i in range(c)]
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        overflow = c

        async def fire(slot: int, conn: Conn | None) -> None:
            conn = await self.one(conn, slot, False)
            idle.append((slot, conn))

        start = loop.time()
        total = int(rate * seconds)
        for k in range(total):
            due = start + k / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if idle:
                slot, conn = idle.pop()
            else:
                slot, conn, overflow = overflow, None, overflow + 1
            task = loop.create_task(fire(slot, conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        self.conns = [(s, c_) for s, c_ in idle if c_ is not None and not c_.closed.done()]

    async def poll(self, every: float, limit: float) -> dict[str, Any]:
        latencies: list[float] = []
        rises = 0
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        positions_seen = 0
        deadline = time.perf_counter() + limit
        conns = dict(self.conns)
        slots = [s for s in self.last_id]

        async def follow(slot: int, offset: float) -> None:
            nonlocal rises, positions_seen
            await asyncio.sleep(offset)
            job_id = self.last_id[slot]
            conn = conns.get(slot)
            last: int | None = None
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    if not usable(conn, self.idle_max):
                        conn = await self.connect()
                    assert conn is not None
                    answer = await conn.request(get(f"/api/jobs/{job_id}"))
                except OSError as exc:
                    errors[type(exc).__name__] += 1
                    conn = None
                    await asyncio.sleep(every)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[answer.status] += 1
                match = _POSITION.search(answer.body)
                if match and match.group(1) != b"null":
                    positions_seen += 1
                    pos = int(match.group(1))
                    if last is not None and pos > last:
                        rises += 1
                    last = pos
                status = _STATUS.search(answer.body)
                if status and status.group(1) in (b"succeeded", b"failed", b"cancelled"):
                    return
                await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))

        started = time.perf_counter()
        await asyncio.gather(
            *(follow(s, every * i / max(1, len(slots))) for i, s in enumerate(slots))
        )
        return {
            "clients": len(slots),
            "seconds": time.perf_counter() - started,
            "latencies": sorted(latencies),
            "statuses": {str(k): v for k, v in statuses.items()},
            "errors": dict(errors),
            "positions_seen": positions_seen,
            "position_rises": rises,
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    body = args.body.encode()
    run = Run(args.port, post(args.path, body), post(args.path, body, close=True), args.idle_max)
    started = time.perf_counter()
    t0 = time.time()
    cpu = _cpu()
    if args.mode == "open":
        await run.open_loop(args.rate, args.seconds, args.c)
    else:
        await run.closed_loop(args.n, args.c, close=args.mode == "newconn")
    wall = time.perf_counter() - started
    cpu = _cpu() - cpu
    out: dict[str, Any] = {
        "mode": args.mode,
        "wall": wall,
        "t0": t0,
        "t1": t0 + wall,
        "cpu": cpu,
        "sent": len(run.latencies) + sum(run.errors.values()),
        "statuses": {str(k): v for k, v in run.statuses.items()},
        "errors": dict(run.errors),
        "retry_after": dict(run.retry_after),
        "latencies": sorted(run.latencies),
        "reused_latencies": sorted(run.reused),
        "ids": run.ids,
    }
    if args.burst_done:
        with open(args.burst_done, "w") as fh:
            fh.write(f"{time.time()}\n")
    if args.poll:
        cpu = _cpu()
        out["poll"] = await run.poll(args.poll, args.poll_limit)
        out["poll_cpu"] = _cpu() - cpu
    for _, conn in getattr(run, "conns", []):
        if conn.transport is not None:
            conn.transport.close()
    return out


def _share(total: int, k: int, i: int) -> int:
    return total // k + (1 if i < total % k else 0)


def split_run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load from ``args.procs`` client processes, each with its share of the requests,
    connections and rate, and merge what they report into one document of the same form."""
    k = args.procs
    tmp = tempfile.mkdtemp(prefix="burst-client-")
    children = []
    for i in range(k):
        cmd = [
            sys.executable, os.path.abspath(__file__), "--port", str(args.port),
            "--mode", args.mode, "--n", str(_share(args.n, k, i)),
            "-c", str(_share(args.c, k, i)), "--rate", str(args.rate / k),
            "--seconds", str(args.seconds), "--path", args.path, "--body", args.body,
            "--poll", str(args.poll), "--poll-limit", str(args.poll_limit),
            "--idle-max", str(args.idle_max), "--out", os.path.join(tmp, f"{i}.json"),
        ]  # fmt: skip
        if args.burst_done:
            cmd += ["--burst-done", os.path.join(tmp, f"{i}.done")]
        children.append(subprocess.Popen(cmd))
    signalled = not args.burst_done
    while any(child.poll() is None for child in children):
        if not signalled and all(os.path.exists(os.path.join(tmp, f"{i}.done")) for i in range(k)):
            with open(args.burst_done, "w") as fh:
                fh.write(f"{time.time()}\n")
            signalled = True
        time.sleep(0.02)
    if not signalled:
        with open(args.burst_done, "w") as fh:
            fh.write(f"{time.time()}\n")
    failed = [child.returncode for child in children if child.returncode != 0]
    if failed:
        raise SystemExit(f"client processes exited with {failed}")
    docs = []
    for i in range(k):
        path = os.path.join(tmp, f"{i}.json")
        with open(path) as fh:
            docs.append(json.load(fh))
        os.unlink(path)
        if os.path.exists(os.path.join(tmp, f"{i}.done")):
            os.unlink(os.path.join(tmp, f"{i}.done"))
    os.rmdir(tmp)
    return merge(docs)


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    def added(key: str, of: list[dict[str, Any]]) -> dict[str, int]:
        total: Counter[str] = Counter()
        for doc in of:
            total.update(doc[key])
        return dict(total)

    t0, t1 = min(d["t0"] for d in docs), max(d["t1"] for d in docs)
    out: dict[str, Any] = {
        "mode": docs[0]["mode"],
        "procs": len(docs),
        "wall": t1 - t0,
        "t0": t0,
        "t1": t1,
        "cpu": sum(d["cpu"] for d in docs),
        "sent": sum(d["sent"] for d in docs),
        "statuses": added("statuses", docs),
        "errors": added("errors", docs),
        "retry_after": added("retry_after", docs),
        "latencies": list(heapq.merge(*(d["latencies"] for d in docs))),
        "reused_latencies": list(heapq.merge(*(d["reused_latencies"] for d in docs))),
        "ids": [i for d in docs for i in d["ids"]],
    }
    polls = [d["poll"] for d in docs if "poll" in d]
    if polls:
        out["poll"] = {
            "clients": sum(p["clients"] for p in polls),
            "seconds": max(p["seconds"] for p in polls),
            "latencies": list(heapq.merge(*(p["latencies"] for p in polls))),
            "statuses": added("statuses", polls),
            "errors": added("errors", polls),
            "positions_seen": sum(p["positions_seen"] for p in polls),
            "position_rises": sum(p["position_rises"] for p in polls),
        }
        out["poll_cpu"] = sum(d.get("poll_cpu", 0.0) for d in docs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["closed", "newconn", "open"], default="closed")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("-c", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--path", default="/api/jobs")
    parser.add_argument("--body", default='{"task": "order", "args": [1, "A1"]}')
    parser.add_argument("--poll", type=float, default=0.0)
    parser.add_argument("--poll-limit", type=float, default=120.0)
    parser.add_argument("--out", default="-")
    parser.add_argument(
        "--idle-max",
        type=float,
        default=4.0,
        help="seconds a keep-alive connection may sit idle before it is replaced (under the "
        "server's keep-alive timeout)",
    )
    parser.add_argument(
        "--burst-done", default="", metavar="FILE", help="write FILE when the burst has ended"
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=1,
        help="split the requests, connections and rate across this many client processes",
    )
    args = parser.parse_args()
    # up to the hard limit: the open loop opens connections beyond -c when every one is busy
    _raise_file_limit(max(4 * args.c, 1 << 20))
    if args.procs > 1:
        result = split_run(args)
    else:
        if uvloop is not None:
            uvloop.install()
        result = asyncio.run(main_async(args))
    text = json.dumps(result)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
