#!/usr/bin/env python
"""How fast ``baozi serve`` files jobs through ``POST /api/jobs:batch``, how the single
``POST /api/jobs`` compares with the code at a976bf7, and where the single POST spends its time.

    python bench/batch_bench.py [--parts batch,single,profile,profile-batch]
        [--stores sqlite,redis]
        [--batches 100] [--inflight 2,4,8] [--server-workers 1,2] [--batch-rounds 1]
        [--single-n 10000] [-c 200] [--rounds 3] [--old-src /tmp/baozi-a976bf7/src]
        [--profile-seconds 20] [--quiet-wait 20]

One run, on this machine, all against 127.0.0.1; the processes are started as
bench/burst_bench.py starts them (its helpers are imported, not copied), and the single POSTs
are sent by its client (bench/burst/client.py, closed loop keep-alive).

1. batch: for every store, server process count (``--server-workers``) and number of batches
   in flight (``--inflight``): a fresh store (a new SQLite file; a new key prefix in Redis
   database 15), a fresh ``baozi serve``, and a client (this file's ``client`` command, on the
   burst client's connections) that keeps K batches of 1,000 jobs in flight, ``--batches`` in
   all after one warm-up batch per lane. The 1,000 entries mix two tasks and two queues (each
   task on each queue, in turn). No worker runs: each run has a store of its own, so the queues
   never grow past one run. Afterwards the store is checked: every id returned is a stored job,
   none came twice, and the two queues hold exactly as many jobs as were answered.
2. single: single ``POST /api/jobs`` of the code here (/work/main/src) and of the code at
   ``--old-src`` (a worktree at a976bf7), one server process each, a fresh store per run, the
   same closed-loop client (C keep-alive connections, N requests); runs interleaved old, new,
   old, new over ``--rounds`` rounds; medians and new/old.
3. profile: py-spy (``record --format raw --gil``: the thread holding the GIL) on the current
   server under the single-POST load, per store; the top frames by own time and by time within
   them. profile-batch: the same under 4 batches in flight.

Writes bench/results/batch-YYYYMMDD-HHMM.md (the raw figures, the servers' logs and py-spy's
stacks stay in the run's temporary directory, named at the start and the end). Every
process it starts runs in a session of its own and is stopped on exit, Ctrl-C or failure.

    python bench/batch_bench.py client --port P --body-file F --batches N --inflight K --out F
is the batch client alone;
    python bench/batch_bench.py report TMPDIR [DEST]
writes a finished run's report again from its temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import json
import os
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(HERE / "burst")]

import burst_bench as burst  # noqa: E402  (bench/burst_bench.py: processes, meters, the client)
import client as burst_client  # noqa: E402  (bench/burst/client.py: raw HTTP/1.1 on uvloop)

PY = sys.executable
BAOZI = burst.BAOZI
REDIS_DB = "redis://127.0.0.1:6379/15"
OLD_SRC = "/tmp/baozi-a976bf7/src"
TASKS = (("orders.order", [1, "A1"]), ("orders.refund", [1, 2.5]))
QUEUES = ("batch-a", "batch-b")
BATCH_JOBS = 1000
SINGLE_BODY = '{"task": "orders.order", "args": [1, "A1"]}'
APP = '''"""The batch benchmark's app: two trivial tasks on the store BURST_URL names."""
import os

import baozi

app = baozi.App(os.environ.get("BURST_URL", "memory://batch"))


@app.task(name="orders.order")
def order(customer: int, ref: str) -> str:
    return ref


@app.task(name="orders.refund")
def refund(customer: int, amount: float) -> float:
    return amount
'''

# Targets (the issue's).
BATCH_RATE = 20_000.0
SINGLE_RATIO = 2.0

burst.REDIS_BASE = REDIS_DB  # burst.redis_delete() scans the database this names


# -- the batch client --------------------------------------------------------------------------


def batch_body() -> bytes:
    """1,000 entries: each of the two tasks on each of the two queues, in turn."""
    jobs = []
    for i in range(BATCH_JOBS):
        task, args = TASKS[i % 2]
        jobs.append({"task": task, "args": args, "queue": QUEUES[(i // 2) % 2]})
    return json.dumps({"jobs": jobs}).encode()


async def _batches(port: int, raw: bytes, n: int, inflight: int) -> dict[str, Any]:
    """K lanes, each on a keep-alive connection: one warm-up batch each, then N batches in all
    shared among them, each lane sending its next as soon as its last is answered."""
    loop = asyncio.get_running_loop()
    conns = [
        (await loop.create_connection(burst_client.Conn, "127.0.0.1", port))[1]
        for _ in range(inflight)
    ]
    ids: list[str] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []

    async def send(conn: burst_client.Conn, timed: bool) -> None:
        started = time.perf_counter()
        try:
            answer = await conn.request(raw)
        except OSError as exc:
            errors[type(exc).__name__] += 1
            return
        if timed:
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] += 1
        got = burst_client._ID.findall(answer.body) if answer.status == 202 else []
        ids.extend(i.decode() for i in got)
        if answer.status != 202:
            errors[f"{answer.status}: {answer.body[:300].decode(errors='replace')}"] += 1
        elif len(got) != BATCH_JOBS:
            errors[f"202 with {len(got)} ids"] += 1

    await asyncio.gather(*(send(c, False) for c in conns))
    warm = len(ids)
    counter = iter(range(n))

    async def lane(conn: burst_client.Conn) -> None:
        for _ in counter:
            await send(conn, True)

    cpu = burst_client._cpu()
    started = time.perf_counter()
    await asyncio.gather(*(lane(c) for c in conns))
    wall = time.perf_counter() - started
    cpu = burst_client._cpu() - cpu
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "latencies": sorted(latencies),
        "ids": ids,
        "warmup_ids": warm,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
    }


def client_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="batch_bench.py client")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--inflight", type=int, default=4)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    raw = burst_client.post("/api/jobs:batch", Path(args.body_file).read_bytes())
    if burst_client.uvloop is not None:
        burst_client.uvloop.install()
    doc = asyncio.run(_batches(args.port, raw, args.batches, args.inflight))
    Path(args.out).write_text(json.dumps(doc))


# -- stores and servers ------------------------------------------------------------------------


class Fresh:
    """A store of its own for one run: a new SQLite file, or a new key prefix in Redis."""

    def __init__(self, store: str, tmp: Path) -> None:
        self.store = store
        self.prefix = f"batchbench{secrets.token_hex(4)}"
        self.path = tmp / f"{self.prefix}.db"
        self.url = (
            f"sqlite:///{self.path}" if store == "sqlite" else f"{REDIS_DB}?prefix={self.prefix}"
        )

    def drop(self) -> None:
        if self.store == "redis":
            burst.redis_delete(self.prefix)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def which_baozi(src: str | None) -> str:
    """The baozi package a server started with PYTHONPATH=src imports."""
    env = {**os.environ, "PYTHONPATH": src or ""}
    out = subprocess.run(
        [PY, "-c", "import baozi; print(baozi.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def start_server(
    fresh: Fresh,
    app_dir: Path,
    module: str,
    log: Path,
    *,
    src: str | None,
    workers: int | None = None,
) -> tuple[Any, int]:
    """``baozi serve module:app`` on the fresh store, src/ and app_dir first on its path;
    ``workers`` None for a baozi whose serve has no --workers (a976bf7)."""
    port = burst.free_port()
    path = os.pathsep.join(p for p in (src, str(app_dir)) if p)
    cmd = [
        BAOZI,
        "serve",
        f"{module}:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--url",
        fresh.url,
    ]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    server = burst.start(
        cmd, env={"BURST_URL": fresh.url, "PYTHONPATH": path}, cwd=app_dir, log=log
    )
    burst.wait_http(port, server)
    return server, port


def quiet(limit: float, cores: float = 0.5) -> float:
    """Wait up to ``limit`` seconds for the machine to keep fewer than ``cores`` cores busy
    (other engineers' work shares it); the load average (1 min) then."""
    import psutil

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if psutil.cpu_percent(interval=1.0) / 100 * (os.cpu_count() or 1) < cores:
            break
    return os.getloadavg()[0]


def redis_pid() -> int | None:
    """The redis-server on port 6379 (its CPU is the store's side of a Redis run; it also serves
    whatever else runs on the machine)."""
    import psutil

    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "redis-server" and any(
            ":6379" in part for part in proc.info["cmdline"] or []
        ):
            return int(proc.pid)
    return None


class Meters:
    """The server's process tree and, on Redis, redis-server: CPU seconds over one run."""

    def __init__(self, server_pid: int, store: str) -> None:
        rpid = redis_pid() if store == "redis" else None
        self.server = burst.Meter(server_pid)
        self.redis = burst.Meter(rpid) if rpid is not None else None

    def __enter__(self) -> Meters:
        self.server.begin()
        if self.redis is not None:
            self.redis.begin()
        self.use = {"cpu_s": 0.0, "peak_rss_mb": 0.0, "redis_cpu_s": None}
        return self

    def __exit__(self, *exc: object) -> None:
        self.use.update(self.server.end())
        if self.redis is not None:
            self.use["redis_cpu_s"] = self.redis.end()["cpu_s"]


def count_stored(url: str, ids: list[str]) -> dict[str, Any]:
    """Every id a stored job, none twice, and the queues hold exactly that many jobs."""
    app = burst.open_store(url)
    try:
        unique = list(dict.fromkeys(ids))
        found = 0
        for i in range(0, len(unique), 2000):
            found += len(app.store.records_of(unique[i : i + 2000]))
        stored = sum(sum(app.store.job_counts(q).values()) for q in QUEUES)
    finally:
        app.store.close()
    check = {
        "ids": len(ids),
        "duplicate_ids": len(ids) - len(unique),
        "missing": len(unique) - found,
        "stored": stored,
    }
    check["ok"] = check["duplicate_ids"] == 0 and check["missing"] == 0 and stored == len(ids)
    return check


# -- part 1: the batch endpoint ----------------------------------------------------------------


def batch_run(
    store: str, workers: int, inflight: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    fresh = Fresh(store, tmp)
    burst.open_store(fresh.url).store.close()
    row: dict[str, Any] = {"store": store, "server_workers": workers, "inflight": inflight}
    server = None
    try:
        server, port = start_server(
            fresh,
            tmp,
            "batch_app",
            tmp / f"batch-{store}.log",
            src=str(ROOT / "src"),
            workers=workers,
        )
        row["load1_before"] = quiet(args.quiet_wait)
        out = tmp / "batch-client.json"
        with Meters(server.pid, store) as meters:
            client = burst.start(
                [
                    PY,
                    str(Path(__file__).resolve()),
                    "client",
                    "--port",
                    str(port),
                    "--body-file",
                    str(tmp / "body.json"),
                    "--batches",
                    str(args.batches),
                    "--inflight",
                    str(inflight),
                    "--out",
                    str(out),
                ]
            )
            try:
                client.wait(args.client_cap)
            finally:
                burst.stop(client)
        use = meters.use
        if client.returncode != 0:
            raise RuntimeError(f"the batch client exited with {client.returncode}")
        doc = json.loads(out.read_text())
        out.unlink()
        burst.stop(server)
        server = None
        row.update(summarize_batches(doc, use))
        row["store_check"] = count_stored(fresh.url, doc["ids"])
    except (RuntimeError, OSError) as exc:
        row["failed"] = str(exc)
    finally:
        if server is not None:
            burst.stop(server)
        fresh.drop()
    return row


def summarize_batches(doc: dict[str, Any], use: dict[str, float]) -> dict[str, Any]:
    lat, wall = doc["latencies"], doc["wall"]
    ok = doc["statuses"].get("202", 0)
    return {
        "batches": len(lat),
        "batches_202": ok,
        "wall_s": wall,
        "jobs_per_s": ok * BATCH_JOBS / wall if wall else 0.0,
        "batches_per_s": ok / wall if wall else 0.0,
        "p50_ms": 1000 * (burst.pct(lat, 0.50) or 0),
        "p99_ms": 1000 * (burst.pct(lat, 0.99) or 0),
        "max_ms": 1000 * (lat[-1] if lat else 0),
        "server_cpu_s": use["cpu_s"],
        "server_peak_rss_mb": use["peak_rss_mb"],
        "server_cores": use["cpu_s"] / wall if wall else 0.0,
        "server_cpu_us_per_job": 1e6 * use["cpu_s"] / (ok * BATCH_JOBS) if ok else None,
        "redis_cpu_s": use["redis_cpu_s"],
        "client_cpu_s": doc["cpu"],
        "errors": doc["errors"],
        "warmup_ids": doc["warmup_ids"],
    }


def part_batch(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    (tmp / "batch_app.py").write_text(APP)
    (tmp / "body.json").write_bytes(batch_body())
    rows = []
    for rnd in range(args.batch_rounds):
        for store in args.store_list:
            for workers in args.server_workers:
                for inflight in args.inflight:
                    print(
                        f"  batch round {rnd + 1}: {store}, --workers {workers}, "
                        f"{inflight} in flight",
                        flush=True,
                    )
                    row = batch_run(store, workers, inflight, args, tmp)
                    row["round"] = rnd + 1
                    rows.append(row)
                    print("    " + _batch_line(row), flush=True)
    return rows


def _batch_line(row: dict[str, Any]) -> str:
    if "failed" in row:
        return f"FAILED: {row['failed']}"
    return (
        f"{row['jobs_per_s']:,.0f} jobs/s, {row['batches_per_s']:.1f} batches/s, p50 "
        f"{row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, server "
        f"{row['server_cores']:.2f} cores, errors {row['errors'] or 0}, "
        f"store {row['store_check']}, load {row['load1_before']:.1f}"
    )


# -- part 2: single POSTs, old and new ---------------------------------------------------------


def single_run(store: str, version: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fresh = Fresh(store, tmp)
    src = args.old_src if version == "old" else str(ROOT / "src")
    row: dict[str, Any] = {"store": store, "version": version}
    server = None
    try:
        server, port = start_server(
            fresh, burst.BURST, "orders", tmp / f"single-{version}.log", src=src
        )
        row["load1_before"] = quiet(args.quiet_wait)
        with Meters(server.pid, store) as meters:
            doc = burst.run_client(
                port,
                "closed",
                n=args.single_n,
                c=args.c,
                rate=0.0,
                seconds=0.0,
                body=SINGLE_BODY,
                cap=args.client_cap,
            )
        use = meters.use
        summary = burst.summarize(doc)
        row.update(
            {
                k: summary[k]
                for k in (
                    "sent",
                    "accepted",
                    "status_202",
                    "wall_s",
                    "accepted_per_s",
                    "p50_ms",
                    "p99_ms",
                    "errors",
                    "refused_with_retry_after",
                    "client_cpu_us_per_request",
                )
            }
        )
        row["duplicate_ids"] = len(doc["ids"]) - len(set(doc["ids"]))
        row["server_cpu_s"] = use["cpu_s"]
        row["server_cpu_us_per_job"] = 1e6 * use["cpu_s"] / max(1, summary["accepted"])
        row["redis_cpu_us_per_job"] = (
            None
            if use["redis_cpu_s"] is None
            else 1e6 * use["redis_cpu_s"] / max(1, summary["accepted"])
        )
    except (RuntimeError, OSError) as exc:
        row["failed"] = str(exc)
    finally:
        if server is not None:
            burst.stop(server)
        fresh.drop()
    return row


def part_single(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for rnd in range(args.rounds):
        for store in args.store_list:
            for version in ("old", "new"):
                print(f"  single round {rnd + 1}: {store} {version}", flush=True)
                row = single_run(store, version, args, tmp)
                row["round"] = rnd + 1
                rows.append(row)
                if "failed" in row:
                    print(f"    FAILED: {row['failed']}", flush=True)
                else:
                    print(
                        f"    {row['accepted_per_s']:,.0f}/s, p50 {row['p50_ms']:.1f} ms, p99 "
                        f"{row['p99_ms']:.1f} ms, server {row['server_cpu_us_per_job']:.0f} "
                        f"us CPU/job, errors {row['errors'] or 0}, "
                        f"load {row['load1_before']:.1f}",
                        flush=True,
                    )
    return rows


# -- part 3: the profile -----------------------------------------------------------------------


def profile_load(kind: str, port: int, args: argparse.Namespace, tmp: Path) -> list[str]:
    """The client command that keeps the server busy while it is profiled: single POSTs (the
    burst client, closed loop) or batches (this file's client, 4 in flight)."""
    if kind == "single":
        return [PY, str(burst.CLIENT), "--port", str(port), "--mode", "closed", "--n",
                str(10**7), "-c", str(args.c), "--body", SINGLE_BODY, "--out", os.devnull]  # fmt: skip
    return [PY, str(Path(__file__).resolve()), "client", "--port", str(port), "--body-file",
            str(tmp / "body.json"), "--batches", str(10**6), "--inflight", "4", "--out",
            os.devnull]  # fmt: skip


def profile_run(store: str, kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    fresh = Fresh(store, tmp)
    raw = tmp / f"profile-{kind}-{store}.txt"
    row: dict[str, Any] = {"store": store, "load": kind}
    server = spy = client = None
    app, module = (burst.BURST, "orders") if kind == "single" else (tmp, "batch_app")
    try:
        server, port = start_server(fresh, app, module, tmp / "profile.log", src=str(ROOT / "src"))
        row["load1_before"] = quiet(args.quiet_wait)
        client = burst.start(profile_load(kind, port, args, tmp))
        time.sleep(2.0)  # past the connects
        spy = burst.start([str(Path(PY).with_name("py-spy")), "record", "--format", "raw", "-o",
                           str(raw), "--pid", str(server.pid), "--subprocesses", "--duration",
                           str(int(args.profile_seconds)), "--rate", "250", "--gil",
                           "--nonblocking"], log=tmp / "py-spy.log")  # fmt: skip
        spy.wait(args.profile_seconds + 60)
        row.update(fold(raw.read_text()))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        row["failed"] = str(exc)
    finally:
        for proc in (client, spy, server):
            if proc is not None:
                burst.stop(proc)
        fresh.drop()
    return row


def _frame_name(frame: str) -> str:
    """``fn (path/to/file.py:12)`` as ``fn (file.py)``: the line number apart, one frame per
    function."""
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[parts.index("baozi") :]) if "baozi" in parts else "/".join(parts[-2:])
    return f"{name} ({short})"


_ENTRY = (
    "click/",
    "baozi/cli/",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "threading.py",
    "<module>",
    "run_server (baozi/web/server.py)",
    "serve (baozi/web/server.py)",
)
"""Frames on the way into the server's loop or a thread: on (nearly) every stack, they would
fill a top list of time *within* a function and say nothing about where it goes."""


_STAGES: list[tuple[str, tuple[str, ...], bool]] = [
    # (stage, what a frame's name holds, whether only the innermost frame counts): a sample
    # goes to the first stage one of whose names is on its stack (entry frames left out).
    ("socket send (uvloop's transport.write in _OneSend)", ("_OneSend.",), True),
    ("uvloop's own loop (C: epoll, recv, callbacks; Runner.run)", ("Runner.run",), True),
    ("store call (worker thread)", ("enqueue_placed", "enqueue_across", "_file_placed"), False),
    (
        "job views (snapshot_of, job_view; worker thread)",
        ("Api._view", "_placed_view", "Api._brief"),
        False,
    ),  # fmt: skip
    (
        "orders made jobs (Intake.plain: checks, codec; worker thread)",
        ("Intake.file", "_file_batch"),
        False,
    ),  # fmt: skip
    ("JSON encode of answers", ("json/encoder.py",), False),
    (
        "JSON decode and checks of bodies",
        ("parse_enqueue", "parse_batch", "_read_raw_body", "_read_body"),
        False,
    ),  # fmt: skip
    (
        "hand-off to the worker thread (_Batches, anyio, queue, threading)",
        ("_Batches.", "anyio/", "concurrency.py", "queue.py", "threading.py"),
        False,
    ),
    (
        "HTTP response (uvicorn's send: header checks, keep-alive timer; wrappers)",
        ("RequestResponseCycle.send", "_send_json", "send_with_headers", "JSONResponse"),
        False,
    ),
    (
        "HTTP request (httptools callbacks, head timer, ASGI task, _Guard, Starlette)",
        ("httptools_impl.py", "baozi/web/", "starlette/"),
        False,
    ),
]
"""Where a request's time goes, stage by stage. py-spy's --nonblocking samples can tear a
stack (a frame of one moment under another's), so a few percent land in a stage by accident."""


def _stage(frames: list[str]) -> str:
    inner = [f for f in frames if not any(e in f for e in _ENTRY)] or frames
    for stage, names, leaf in _STAGES:
        look = inner[-1:] if leaf else inner
        if any(n in f for f in look for n in names):
            return stage
    return "other (observer, estimator, GC...)"


def fold(text: str, top: int = 15) -> dict[str, Any]:
    """py-spy's collapsed stacks: the share of the samples each function runs itself (own) and
    is anywhere on the stack (within; entry frames left out), the top ``top`` of each, own
    time by file, and the samples by stage of a request."""
    stages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += n
        stages[_stage(frames)] += n
        own[frames[-1]] += n
        files[frames[-1].rpartition(" (")[2].rstrip(")")] += n
        for name in set(frames):
            if not any(e in name for e in _ENTRY):
                within[name] += n

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in c.most_common(top)]

    return {"samples": total, "own": share(own), "within": share(within), "files": share(files),
            "stages": share(stages)}  # fmt: skip


def part_profile(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    (tmp / "batch_app.py").write_text(APP)
    (tmp / "body.json").write_bytes(batch_body())
    rows = []
    kinds = [k for k, part in (("single", "profile"), ("batch", "profile-batch"))
             if part in args.part_list]  # fmt: skip
    for kind in kinds:
        for store in args.store_list:
            print(f"  profile: {store}, {kind} POSTs, {args.profile_seconds:g} s", flush=True)
            row = profile_run(store, kind, args, tmp)
            rows.append(row)
            if "failed" in row:
                print(f"    FAILED: {row['failed']}", flush=True)
            else:
                for name, share in row["own"][:5]:
                    print(f"    {share:6.1%} {name}", flush=True)
    return rows


# -- the report --------------------------------------------------------------------------------


def report(out: dict[str, Any], args: argparse.Namespace) -> str:
    info = out["machine"]
    lines = [
        "# Batch benchmark: POST /api/jobs:batch, single POSTs against a976bf7, and a profile",
        "",
        f"- date: {info['date']} (started), {out['ended']} (ended)",
        f"- machine: {info['cpu']}, {info['cores']} cores ({info['lscpu']}); "
        f"{info['memory']}; Python {info['python']}; Redis {info['redis']}; {info['platform']}",
        f"- load average (1/5/15 min): {out['load_start']} at the start, {out['load_end']} "
        "at the end (2 cores: other engineers' tests shared the machine; each run waited up "
        f"to {args.quiet_wait:g} s for fewer than 0.5 busy cores and its 1-min load is in its row)",
        f"- command: `{info['command']}`",
        f"- new code: {info['baozi_src']} at {info['baozi_commit']}; old code: "
        f"{out.get('old_baozi', '-')} (a976bf7)",
        "",
    ]
    if out.get("batch"):
        lines += batch_section(out["batch"], args)
    if out.get("single"):
        lines += single_section(out["single"], args)
    if out.get("profile"):
        lines += profile_section(out["profile"], args)
    return "\n".join(lines) + "\n"


def batch_section(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        "## 1. POST /api/jobs:batch (1,000 jobs a batch: 2 tasks x 2 queues)",
        "",
        f"{args.batches} timed batches per run (after one warm-up batch per lane), a fresh "
        "store and a fresh `baozi serve` per run, no worker (each run's store is its own, so "
        "the queues never hold more than one run's jobs). Server CPU: its process tree "
        "(psutil); cores = CPU s / wall s.",
        "",
        "| store | --workers | in flight | round | jobs/s | batches/s | p50 ms | p99 ms | "
        "max ms | server CPU s | server cores | server us/job | redis-server CPU s | "
        "client CPU s | errors | stored exactly once | load1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        head = f"| {r['store']} | {r['server_workers']} | {r['inflight']} | {r['round']} "
        if "failed" in r:
            lines.append(head + f"| failed: {r['failed']} |||||||||||||")
            continue
        c = r["store_check"]
        stored = (
            f"yes ({c['stored']:,})"
            if c["ok"]
            else (
                f"NO: {c['ids']:,} ids, {c['stored']:,} stored, {c['missing']} missing, "
                f"{c['duplicate_ids']} dup"
            )
        )
        errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        lines.append(
            head + f"| {r['jobs_per_s']:,.0f} | {r['batches_per_s']:.1f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['max_ms']:.0f} | {r['server_cpu_s']:.1f} | "
            f"{r['server_cores']:.2f} | {burst._f(r['server_cpu_us_per_job'], '.1f')} | "
            f"{burst._f(r['redis_cpu_s'], '.1f')} | {r['client_cpu_s']:.2f} | "
            f"{errs} | {stored} | {r['load1_before']:.1f} |"
        )
    lines += ["", "Best per store:", ""]
    for store in args.store_list:
        done = [r for r in rows if r["store"] == store and "jobs_per_s" in r]
        if not done:
            lines.append(f"- {store}: no run finished")
            continue
        b = max(done, key=lambda r: r["jobs_per_s"])
        met = b["jobs_per_s"] >= BATCH_RATE
        lines.append(
            f"- {store}: **{b['jobs_per_s']:,.0f} jobs/s** ({b['batches_per_s']:.1f} batches/s, "
            f"p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms) with --workers "
            f"{b['server_workers']} and {b['inflight']} batches in flight; target >= "
            f"{BATCH_RATE:,.0f} jobs/s: **{'met' if met else 'missed'}**; every run's ids "
            f"stored exactly once: {'yes' if all(r['store_check']['ok'] for r in done) else 'NO'}"
        )
    return lines + [""]


def single_section(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        "## 2. Single POST /api/jobs: current code against a976bf7",
        "",
        f"Closed loop, {args.c} keep-alive connections, {args.single_n:,} requests per run "
        "(bench/burst/client.py), body `" + SINGLE_BODY + "`; one server process each "
        "(`baozi serve orders:app` from bench/burst), a fresh store per run, no worker; runs "
        "interleaved old, new per store in each round.",
        "",
        "| round | store | version | accepted/s | p50 ms | p99 ms | server us CPU/job | "
        "redis-server us CPU/job | client us CPU/req | non-2xx / errors | load1 |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        head = f"| {r['round']} | {r['store']} | {r['version']} "
        if "failed" in r:
            lines.append(head + f"| failed: {r['failed']} |||||||")
            continue
        bad = r["sent"] - r["accepted"]
        errs = f"{bad} non-2xx; {r['errors'] or 0}"
        lines.append(
            head + f"| {r['accepted_per_s']:,.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['server_cpu_us_per_job']:.0f} | "
            f"{burst._f(r['redis_cpu_us_per_job'])} | "
            f"{burst._f(r['client_cpu_us_per_request'])} | {errs} | "
            f"{r['load1_before']:.1f} |"
        )
    lines += [
        "",
        "| store | old median/s | new median/s | new/old | per-round new/old | "
        "old us/job | new us/job | target >= 2x |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for store in args.store_list:
        med = {}
        for v in ("old", "new"):
            got = [
                r
                for r in rows
                if r["store"] == store and r["version"] == v and "accepted_per_s" in r
            ]
            med[v] = (
                statistics.median(r["accepted_per_s"] for r in got) if got else None,
                statistics.median(r["server_cpu_us_per_job"] for r in got) if got else None,
            )
        pairs = []
        for rnd in sorted({r["round"] for r in rows}):
            o = [r for r in rows if (r["store"], r["version"], r["round"]) == (store, "old", rnd)]
            n = [r for r in rows if (r["store"], r["version"], r["round"]) == (store, "new", rnd)]
            if o and n and "accepted_per_s" in o[0] and "accepted_per_s" in n[0]:
                pairs.append(f"{n[0]['accepted_per_s'] / o[0]['accepted_per_s']:.2f}")
        (o_rate, o_us), (n_rate, n_us) = med["old"], med["new"]
        ratio = n_rate / o_rate if o_rate and n_rate else None
        lines.append(
            f"| {store} | {burst._f(o_rate)} | {burst._f(n_rate)} | "
            f"**{burst._f(ratio, '.2f')}x** | {', '.join(pairs)} | {burst._f(o_us)} | "
            f"{burst._f(n_us)} | "
            f"{'-' if ratio is None else ('met' if ratio >= SINGLE_RATIO else 'missed')} |"
        )
    return lines + [""]


def profile_section(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        "## 3. Where the server's time goes (py-spy)",
        "",
        f"`py-spy record --format raw --gil --nonblocking --subprocesses --rate 250 --duration "
        f"{int(args.profile_seconds)}` on the current server (one process) while a client kept "
        f"it busy: single POSTs from the closed-loop client ({args.c} connections), and (rows "
        "marked batch) 4 batches of 1,000 in flight. `--gil` samples only the thread holding "
        "the GIL, so the shares are of the server's Python time (the event loop's thread and "
        "the worker threads that call the store); C code called from a Python function counts "
        "as that function's own time (the socket send in `_OneSend.write`, uvloop's loop in "
        "`Runner.run`, the C JSON encoder in `iterencode`). *own*: the function itself was "
        "running; *within*: it was anywhere on the stack (the entry frames, on every stack, "
        "left out).",
        "",
    ]
    for r in rows:
        if "failed" in r:
            lines += [f"### {r['load']} POSTs, {r['store']}: failed: {r['failed']}", ""]
            continue
        lines += [
            f"### {r['load']} POSTs, {r['store']} ({r['samples']:,} samples; load1 "
            f"{r['load1_before']:.1f})",
            "",
            "| # | own | function | within | function |",
            "|---:|---:|---|---:|---|",
        ]
        for i, ((on, os_), (wn, ws)) in enumerate(zip(r["own"], r["within"], strict=False)):
            lines.append(f"| {i + 1} | {os_:.1%} | `{on}` | {ws:.1%} | `{wn}` |")
        lines += [
            "",
            "Own time by file: " + ", ".join(f"{f} {s:.1%}" for f, s in r["files"][:10]),
            "",
            "By stage (each sample in the first stage on its stack, in this order):",
            "",
            *(f"- {s:.1%} {stage}" for stage, s in _in_order(r.get("stages", []))),
            "",
        ]
    return lines


def _in_order(stages: list[tuple[str, float]]) -> list[tuple[str, float]]:
    order = [name for name, _, _ in _STAGES]
    return sorted(stages, key=lambda x: order.index(x[0]) if x[0] in order else len(order))


# -- main --------------------------------------------------------------------------------------


def machine(argv: list[str]) -> dict[str, Any]:
    ns = argparse.Namespace(
        server_workers=1, worker_pool="-", worker_concurrency=0, worker_processes=0
    )
    info = burst.machine(ns, argv)
    info["command"] = "python bench/batch_bench.py " + shlex.join(argv)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    keep = ("CPU(s):", "Model name:", "Thread(s) per core:", "Hypervisor vendor:")
    info["lscpu"] = "; ".join(" ".join(x.split()) for x in lscpu if x.startswith(keep))
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    info["memory"] = f"{int(mem) / 2**20:.1f} GiB memory"
    return info


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="batch,single,profile,profile-batch")
    p.add_argument("--stores", default="sqlite,redis")
    p.add_argument("--batches", type=int, default=100, help="timed batches per batch run")
    p.add_argument("--inflight", default="2,4,8", help="batches in flight (one run each)")
    p.add_argument("--server-workers", default="1,2", help="baozi serve --workers (each)")
    p.add_argument("--batch-rounds", type=int, default=1)
    p.add_argument("--single-n", type=int, default=10_000)
    p.add_argument("-c", type=int, default=200, help="single POSTs: keep-alive connections")
    p.add_argument("--rounds", type=int, default=3, help="single POSTs: old/new rounds")
    p.add_argument("--old-src", default=OLD_SRC)
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait before each run for fewer than 0.5 busy cores",
    )
    p.add_argument("--client-cap", type=float, default=600.0)
    p.add_argument("--out", default=str(burst.RESULTS))
    args = p.parse_args(argv)
    args.part_list = [x for x in args.parts.split(",") if x]
    args.store_list = [x for x in args.stores.split(",") if x]
    args.inflight = [int(x) for x in args.inflight.split(",")]
    args.server_workers = [int(x) for x in args.server_workers.split(",")]
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["client"]:
        client_main(argv[1:])
        return 0
    if argv[:1] == ["report"]:
        return report_again(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else burst.RESULTS)
    args = parse(argv)
    signal.signal(signal.SIGTERM, burst._on_signal)
    signal.signal(signal.SIGINT, burst._on_signal)
    atexit.register(burst.stop_all)
    out: dict[str, Any] = {"machine": machine(argv), "load_start": _load()}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    tmp = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    print(f"logs in {tmp}; load {out['load_start']}", flush=True)
    if "single" in args.part_list:
        out["old_baozi"] = which_baozi(args.old_src)
        print(
            f"  old code imports {out['old_baozi']}; new code imports "
            f"{which_baozi(str(ROOT / 'src'))}",
            flush=True,
        )
        if not out["old_baozi"].startswith(args.old_src):
            sys.exit(f"--old-src {args.old_src} does not import its own baozi")
    interrupted = False
    try:
        for part, run in (
            ("batch", part_batch),
            ("single", part_single),
            ("profile", part_profile),
        ):
            if part in args.part_list or f"{part}-batch" in args.part_list:
                out[part] = run(args, tmp)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping what was started", flush=True)
    finally:
        burst.stop_all()
    out["load_end"] = _load()
    out["ended"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = report(out, args)
    if interrupted:
        text = text.replace("\n", "\n\n**Interrupted: only the runs that finished are here.**\n", 1)
    dest = Path(args.out)
    (dest / f"batch-{stamp}.md").write_text(text)
    (tmp / f"batch-{stamp}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(text)
    print(
        f"wrote {dest / f'batch-{stamp}.md'}; raw figures (batch-{stamp}.json), logs and "
        f"profiles in {tmp}",
        flush=True,
    )
    return 130 if interrupted else 0


def report_again(tmp: Path, dest: Path) -> int:
    """Write the report of a finished run again from its temporary directory (its raw figures,
    and py-spy's stacks folded anew)."""
    found = sorted(tmp.glob("batch-*.json"))
    if not found:
        sys.exit(f"no batch-*.json in {tmp}")
    out = json.loads(found[-1].read_text())
    args = parse(shlex.split(out["machine"]["command"])[2:])
    for row in out.get("profile", []):
        raw = tmp / f"profile-{row['load']}-{row['store']}.txt"
        if "failed" not in row and raw.exists():
            row.update(fold(raw.read_text()))
    text = report(out, args)
    path = dest / found[-1].with_suffix(".md").name
    path.write_text(text)
    print(text)
    print(f"wrote {path}", flush=True)
    return 0


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
