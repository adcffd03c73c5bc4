#!/usr/bin/env python
"""The ticket office burst: how many orders ``baozi serve`` accepts per second, how fast it
answers each, and whether every accepted order is stored exactly once.

    python bench/burst_bench.py [--stores sqlite,redis] [--n 100000] [-c 1000] [--rate 1000]
        [--seconds 60] [--server-workers 2] [--only closed,poll,newconn,open,bare,celery]
        [--quick]

One run, on this machine, all against 127.0.0.1, with the client in bench/burst/client.py (raw
asyncio protocols on uvloop):
  * bare: the ceiling. The same server stack as ``baozi serve`` (``run_server``: uvicorn, baozi's
    capped httptools protocol, the same number of server processes) in front of an endpoint that
    reads the body and answers 202 with a constant body (bench/burst/bare.py); closed loop
    keep-alive and with a new connection per request.
  * per store (a fresh SQLite file; a fresh key prefix in Redis database 13, deleted before and
    after), a fresh ``baozi serve bench/burst/orders:app`` and one ``baozi worker`` draining
    the queues all along:
      - closed: N single-order POSTs from C keep-alive connections, the worker draining;
      - poll: a burst (--poll-n, as --n by default) into the queue "poll", paused until the
        burst ends (so that a whole burst is left to drain, however fast the worker is; each
        POST's answer then reads a place with the burst so far ahead of it, which costs more
        on a store whose place read grows with the queue's depth); then each of the C clients
        asks ``GET /api/jobs/{id}`` for its last order once a second while the worker drains,
        until its job ends (bounded by --poll-limit): the latency of those GETs, and whether
        the position any client reads ever goes up;
      - newconn: N POSTs (--newconn-n) from C lanes, each on a new connection;
      - open: --rate orders per second for --seconds, whatever the answers do.
    Each run posts to a queue of its own ("closed", "poll", "newconn", "open"); once the worker
    has drained it, the store is checked: every id answered with a 2xx is a stored job, no id came
    twice, and the queue holds as many jobs as were accepted (none stored twice, none extra).
  * celery: the same closed loop against a plain Starlette endpoint that calls Celery's
    ``delay()`` (plain uvicorn with httptools, the same number of processes) on the same Redis,
    a Celery worker (threads) draining it. It needs a venv of its own (celery 5.7 wants
    redis-py >= 6.4):
        python -m venv --system-site-packages /tmp/burst-celery-venv
        /tmp/burst-celery-venv/bin/pip install 'celery==5.7.0' 'redis>=6.4,<9' uvicorn \\
            httptools starlette
    and --celery-python /tmp/burst-celery-venv/bin/python (the default when it exists).

For every run: accepted/s (2xx answers / the client's wall time), p50/p99/max latency to the
answer, errors by kind (429/503 answers carrying Retry-After are counted apart: documented
refusals, not errors), the server's CPU seconds and peak RSS (psutil over its process tree,
sampled every 100 ms), the worker's CPU, and the client's own CPU per request (whether the
client could be the bottleneck). Each run's targets are stated with "met" or "missed".

Writes bench/results/burst-YYYYMMDD-HHMM.md, bench/results/burst-latest.md and the raw figures
(no latency lists) as burst-YYYYMMDD-HHMM.json beside them. Every process it starts runs in a
session of its own and is stopped (SIGTERM, then SIGKILL) on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
BURST = HERE / "burst"
RESULTS = HERE / "results"
CLIENT = BURST / "client.py"
PY = sys.executable
BAOZI = str(Path(PY).with_name("baozi"))
REDIS_BASE = "redis://127.0.0.1:6379/13"
CELERY_PYTHON = "/tmp/burst-celery-venv/bin/python"
QUEUES = ("closed", "poll", "newconn", "open")
TERMINAL = ("succeeded", "failed", "cancelled")
BODY = '{{"task": "orders.order", "args": [1, "A1"], "queue": "{queue}"}}'
BARE_BODY = '{"task": "orders.order", "args": [1, "A1"]}'

# Targets (the issue's): accepted/s in closed loop keep-alive, by store.
CLOSED_RATE = {"sqlite": 3000.0, "redis": 4000.0}
OF_BARE = 0.5
OPEN_P99 = 0.050
LITTLE = 2.0


# -- processes ---------------------------------------------------------------------------------

_STARTED: list[subprocess.Popen[bytes]] = []


def start(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a session of its own (so that it and its children stop together)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a process this script started and the group it leads: SIGTERM, then SIGKILL."""
    if proc not in _STARTED:
        return
    _STARTED.remove(proc)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            # the leader is gone; children left in its group get the same signal next round
            if sig == signal.SIGTERM:
                time.sleep(0.2)
                os.killpg(proc.pid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break


def stop_all() -> None:
    for proc in list(reversed(_STARTED)):
        try:
            stop(proc, grace=5.0)
        except ProcessLookupError:
            pass


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until something on ``port`` answers an HTTP request (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                if sock.recv(16).startswith(b"HTTP/1.1 "):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


class Meter:
    """CPU seconds and peak RSS of a process tree, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.cpu: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def begin(self) -> None:
        self._sample()
        self.base = dict(self.cpu)
        self.peak_rss = 0
        self._sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def end(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        cpu = sum(v - self.base.get(pid, 0.0) for pid, v in self.cpu.items())
        return {"cpu_s": cpu, "peak_rss_mb": self.peak_rss / 2**20}


# -- the client --------------------------------------------------------------------------------


def run_client(port: int, mode: str, *, n: int, c: int, rate: float, seconds: float, body: str,
               poll: float = 0.0, poll_limit: float = 120.0, cap: float = 900.0,
               burst_done: str = "", procs: int = 1) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [PY, str(CLIENT), "--port", str(port), "--mode", mode, "--n", str(n), "-c", str(c),
           "--rate", str(rate), "--seconds", str(seconds), "--body", body, "--out", out]
    if poll:
        cmd += ["--poll", str(poll), "--poll-limit", str(poll_limit)]
    if burst_done:
        cmd += ["--burst-done", burst_done]
    if procs > 1:
        cmd += ["--procs", str(procs)]
    proc = start(cmd)
    try:
        proc.wait(cap)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise RuntimeError(f"the client ran past {cap} s and was stopped") from None
    stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"the client exited with {proc.returncode}")
    with open(out) as fh:
        doc: dict[str, Any] = json.load(fh)
    os.unlink(out)
    return doc


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    statuses = {int(k): v for k, v in doc["statuses"].items()}
    accepted = sum(v for k, v in statuses.items() if 200 <= k < 300)
    errors: dict[str, int] = dict(doc["errors"])
    refused = {}
    for status, count in statuses.items():
        if 200 <= status < 300:
            continue
        without = errors.get(f"{status} without Retry-After", 0)
        if status in (429, 503):
            if count - without:
                refused[str(status)] = count - without
        elif count - without:
            errors[f"{status} with Retry-After"] = count - without
    lat = doc["latencies"]
    wall = doc["wall"]
    sent = doc["sent"]
    row: dict[str, Any] = {
        "sent": sent,
        "accepted": accepted,
        "status_202": statuses.get(202, 0),
        "wall_s": wall,
        "accepted_per_s": accepted / wall if wall else 0.0,
        "p50_ms": _ms(pct(lat, 0.50)),
        "p99_ms": _ms(pct(lat, 0.99)),
        "max_ms": _ms(lat[-1] if lat else None),
        "p99_reused_ms": _ms(pct(doc.get("reused_latencies", []), 0.99)),
        "errors": errors,
        "refused_with_retry_after": refused,
        "retry_after_values": doc.get("retry_after", {}),
        "client_cpu_s": doc.get("cpu"),
        "client_cpu_us_per_request": 1e6 * doc["cpu"] / sent if sent and "cpu" in doc else None,
        "client_core_share": doc["cpu"] / wall if wall and "cpu" in doc else None,
    }
    if "poll" in doc:
        poll = doc["poll"]
        plat = poll["latencies"]
        row["poll"] = {
            "clients": poll["clients"],
            "seconds": poll["seconds"],
            "requests": len(plat),
            "p50_ms": _ms(pct(plat, 0.50)),
            "p99_ms": _ms(pct(plat, 0.99)),
            "max_ms": _ms(plat[-1] if plat else None),
            "statuses": poll["statuses"],
            "errors": poll["errors"],
            "positions_seen": poll["positions_seen"],
            "position_rises": poll["position_rises"],
            "client_cpu_s": doc.get("poll_cpu"),
        }
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds


# -- the store ---------------------------------------------------------------------------------


def open_store(url: str) -> Any:
    import baozi

    return baozi.App(url)


def drain(url: str, queue: str, limit: float) -> tuple[float | None, dict[str, int]]:
    """Seconds until no job of ``queue`` is waiting, scheduled, queued or running (None past
    ``limit``), and the queue's counts then."""
    app = open_store(url)
    started = time.monotonic()
    try:
        while True:
            counts = app.store.job_counts(queue)
            if not any(counts.get(s, 0) for s in ("waiting", "scheduled", "queued", "running")):
                return time.monotonic() - started, counts
            if time.monotonic() - started > limit:
                return None, counts
            time.sleep(0.25)
    finally:
        app.store.close()


def store_check(url: str, queue: str, ids: list[str], accepted: int) -> dict[str, Any]:
    """Every 2xx id a stored job, none twice; the queue holds as many jobs as were accepted."""
    app = open_store(url)
    try:
        unique = list(dict.fromkeys(ids))
        found = 0
        for i in range(0, len(unique), 2000):
            found += len(app.store.records_of(unique[i : i + 2000]))
        counts = app.store.job_counts(queue)
    finally:
        app.store.close()
    stored = sum(counts.values())
    check = {
        "ids": len(ids),
        "accepted": accepted,
        "duplicate_ids": len(ids) - len(unique),
        "missing": len(unique) - found,
        "stored": stored,
        "stored_by_status": {k: v for k, v in counts.items() if v},
    }
    check["ok"] = (
        check["duplicate_ids"] == 0 and check["missing"] == 0 and stored == accepted == len(ids)
    )
    return check


def redis_delete(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_BASE)
    deleted = 0
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


def redis_version() -> str:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_BASE)
        version = str(client.info("server")["redis_version"])
        client.close()
        return version
    except Exception as exc:  # noqa: BLE001 -- reported, not fatal
        return f"unavailable ({exc})"


# -- one measured run --------------------------------------------------------------------------


def measured(server: subprocess.Popen[bytes], worker: subprocess.Popen[bytes] | None, port: int,
             mode: str, args: argparse.Namespace, body: str, *, n: int, poll: bool = False,
             hold: tuple[str, str] | None = None) -> dict[str, Any]:
    """One client run, the server's and worker's use measured around it. With ``hold`` (store
    URL, queue), the queue is paused until the burst ends (the client writes a file then), so
    that the polling that follows sees the whole burst drain."""
    burst_done = ""
    watcher = None
    if hold is not None:
        url, queue = hold
        burst_done = tempfile.mktemp(suffix=".done", prefix="burst-")
        app = open_store(url)
        app.pause(queue)
        stop_watch = threading.Event()

        def resume_when_done() -> None:
            try:
                while not stop_watch.is_set() and not os.path.exists(burst_done):
                    time.sleep(0.02)
            finally:
                app.resume(queue)
                app.store.close()

        watcher = threading.Thread(target=resume_when_done, daemon=True)
        watcher.start()
    load_before = os.getloadavg()[0]
    smeter = Meter(server.pid)
    wmeter = Meter(worker.pid) if worker is not None else None
    smeter.begin()
    if wmeter is not None:
        wmeter.begin()
    try:
        doc = run_client(port, "closed" if mode == "poll" else mode, n=n, c=args.c,
                         rate=args.rate, seconds=args.seconds, body=body,
                         poll=1.0 if poll else 0.0, poll_limit=args.poll_limit,
                         cap=args.client_cap, burst_done=burst_done, procs=args.client_procs)
    finally:
        server_use = smeter.end()
        worker_use = wmeter.end() if wmeter is not None else None
        if watcher is not None:
            stop_watch.set()
            watcher.join()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(burst_done)
    row = summarize(doc)
    row["mode"] = mode
    row["load1_before"] = load_before
    row["n"] = n if mode != "open" else int(args.rate * args.seconds)
    row["c"] = args.c
    row["server_cpu_s"] = server_use["cpu_s"]
    row["server_peak_rss_mb"] = server_use["peak_rss_mb"]
    if worker_use is not None:
        row["worker_cpu_s"] = worker_use["cpu_s"]
        row["worker_peak_rss_mb"] = worker_use["peak_rss_mb"]
    row["_ids"] = doc["ids"]
    return row


def _pythonpath() -> str:
    """bench/burst (the apps) ahead of any PYTHONPATH given (e.g. another tree's src/)."""
    return os.pathsep.join(p for p in (str(BURST), os.environ.get("PYTHONPATH", "")) if p)


def settle(seconds: float = 2.0) -> None:
    """A pause between runs: sockets of the last run close, the machine quietens."""
    time.sleep(seconds)


# -- the systems -------------------------------------------------------------------------------


def run_bare(args: argparse.Namespace, logs: Path) -> list[dict[str, Any]]:
    port = free_port()
    server = start([PY, str(BURST / "serve_bare.py"), "--port", str(port), "--workers",
                    str(args.server_workers), "--max-connections", str(args.max_connections),
                    "--log-level", "warning"], cwd=BURST, log=logs / "bare-server.log")
    rows = []
    try:
        wait_http(port, server)
        for mode in ("closed", "newconn"):
            if mode not in args.modes:
                continue
            n = args.n if mode == "closed" else args.newconn_n
            print(f"  bare {mode}: {n} requests, {args.c} connections", flush=True)
            row = measured(server, None, port, mode, args, BARE_BODY, n=n)
            row.pop("_ids")
            row["system"] = "bare"
            rows.append(row)
            _print_row(row)
            settle()
    finally:
        stop(server)
    return rows


def run_store(store: str, args: argparse.Namespace, logs: Path, tmp: Path) -> list[dict[str, Any]]:
    prefix = f"burst{secrets.token_hex(4)}"
    if store == "sqlite":
        url = f"sqlite:///{tmp}/burst-{prefix}.db"
    else:
        url = f"{REDIS_BASE}?prefix={prefix}"
        redis_delete(prefix)
    env = {"BURST_URL": url, "PYTHONPATH": _pythonpath()}
    open_store(url).store.close()  # the file / connection, made before two processes race
    port = free_port()
    server = start([BAOZI, "serve", "orders:app", "--port", str(port), "--workers",
                    str(args.server_workers), "--max-connections", str(args.max_connections),
                    "--log-level", "warning", "--url", url], env=env, cwd=BURST,
                   log=logs / f"{store}-server.log")
    worker = start([BAOZI, "worker", "orders:app", "--url", url, "-P", args.worker_pool,
                    "-c", str(args.worker_concurrency), "-p", str(args.worker_processes),
                    "-Q", ",".join(QUEUES), "-q"], env=env, cwd=BURST,
                   log=logs / f"{store}-worker.log")
    rows = []
    try:
        wait_http(port, server)
        plan = [("closed", args.n), ("poll", args.poll_n), ("newconn", args.newconn_n),
                ("open", int(args.rate * args.seconds))]
        for mode, n in plan:
            if mode not in args.modes:
                continue
            if server.poll() is not None or worker.poll() is not None:
                raise RuntimeError("the server or the worker exited")
            poll = mode == "poll"
            what = f"{args.rate:g}/s for {args.seconds:g} s" if mode == "open" else \
                f"{n} orders, {args.c} connections"
            extra = " into a paused queue, then each client polls its last order" if poll else ""
            print(f"  {store} {mode}: {what}{extra}", flush=True)
            try:
                row = measured(server, worker, port, mode, args, BODY.format(queue=mode), n=n,
                               poll=poll, hold=(url, mode) if poll else None)
            except RuntimeError as exc:  # a client past its cap: the next runs still go
                print(f"    failed: {exc}", flush=True)
                rows.append({"system": store, "mode": mode, "skipped": f"failed: {exc}"})
                continue
            row["system"] = store
            ids = row.pop("_ids")
            drained, counts = drain(url, mode, args.drain_limit)
            row["drain_after_client_s"] = drained
            row["store_check"] = store_check(url, mode, ids, row["accepted"])
            rows.append(row)
            _print_row(row)
            settle()
    finally:
        stop(server)
        stop(worker)
        if store == "redis":
            redis_delete(prefix)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp}/burst-{prefix}.db{suffix}").unlink(missing_ok=True)
    return rows


def run_celery(args: argparse.Namespace, logs: Path) -> list[dict[str, Any]]:
    python = args.celery_python
    if not python or not Path(python).exists():
        print(f"  celery: skipped (no celery venv at {python!r}; see the docstring)", flush=True)
        return [{"system": "celery", "mode": "closed", "skipped": f"no python at {python!r}"}]
    queue = f"burst-celery-{secrets.token_hex(4)}"
    env = {"BURST_CELERY_BROKER": REDIS_BASE, "BURST_CELERY_QUEUE": queue,
           "PYTHONPATH": str(BURST)}
    port = free_port()
    server = start([python, "-m", "uvicorn", "celery_orders:web", "--http", "httptools",
                    "--workers", str(args.server_workers), "--port", str(port), "--host",
                    "127.0.0.1", "--log-level", "warning"], env=env, cwd=BURST,
                   log=logs / "celery-server.log")
    worker = start([python, "-m", "celery", "-A", "celery_orders:celery", "worker", "-P",
                    "threads", "-c", str(args.celery_concurrency), "-Q", queue,
                    "--loglevel", "warning", "--without-gossip", "--without-mingle",
                    "--without-heartbeat"], env=env, cwd=BURST, log=logs / "celery-worker.log")
    rows = []
    try:
        wait_http(port, server)
        print(f"  celery closed: {args.n} orders, {args.c} connections", flush=True)
        row = measured(server, worker, port, "closed", args, BARE_BODY, n=args.n)
        ids = row.pop("_ids")
        row["system"] = "celery"
        row["duplicate_ids"] = len(ids) - len(set(ids))
        rows.append(row)
        _print_row(row)
    finally:
        stop(server)
        stop(worker)
        _celery_cleanup(queue)
    return rows


def _celery_cleanup(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_BASE)
    try:
        keys = [queue, *(f"{queue}\x06\x16{i}" for i in range(10))]
        # kombu's routing tables for the queue (and its empty "deadlines" table)
        keys += [k for k in client.scan_iter(match=f"_kombu.binding*{queue}*")]
        keys.append("_kombu.binding_deadlines")
        client.delete(*keys)
        client.delete("unacked", "unacked_index", "unacked_mutex")
    finally:
        client.close()


# -- targets and the report --------------------------------------------------------------------


def judge(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Attach to each row its targets: (what, met, the figure)."""
    bare = {r["mode"]: r for r in rows if r.get("system") == "bare" and "accepted_per_s" in r}
    for row in rows:
        if "accepted_per_s" not in row:
            continue
        targets: list[tuple[str, bool, str]] = []
        system, mode = row["system"], row["mode"]
        errors = sum(row["errors"].values())
        targets.append(("0 errors (429/503 with Retry-After apart)", errors == 0, f"{errors}"))
        if system in CLOSED_RATE:
            check = row["store_check"]
            targets.append((
                "every 2xx stored exactly once",
                bool(check["ok"]),
                f"{check['accepted']} accepted, {check['stored']} stored, "
                f"{check['missing']} missing, {check['duplicate_ids']} duplicate ids",
            ))
        rate = row["accepted_per_s"]
        little = LITTLE * row["c"] / rate if rate else float("inf")
        if mode == "closed" and system in CLOSED_RATE:
            goal = CLOSED_RATE[system]
            targets.append((f">= {goal:,.0f} accepted/s", rate >= goal, f"{rate:,.0f}/s"))
        if mode in ("closed", "newconn") and system in (*CLOSED_RATE, "celery") and mode in bare:
            ratio = rate / bare[mode]["accepted_per_s"]
            row["of_bare"] = ratio
            if system != "celery":
                targets.append((f">= {OF_BARE:.0%} of bare {mode}", ratio >= OF_BARE,
                                f"{ratio:.0%}"))
        if mode == "closed" and system in CLOSED_RATE:
            p99 = row["p99_ms"] / 1000
            targets.append((
                f"p99 <= {LITTLE:g} x C / throughput",
                p99 <= little,
                f"{1000 * p99:.0f} ms vs {1000 * little:.0f} ms",
            ))
        if mode == "open":
            targets.append((f"p99 < {OPEN_P99 * 1000:.0f} ms", row["p99_ms"] < OPEN_P99 * 1000,
                            f"{row['p99_ms']:.1f} ms"))
        if "poll" in row:
            poll = row["poll"]
            p99 = poll["p99_ms"]
            perr = sum(poll["errors"].values()) + sum(
                v for k, v in poll["statuses"].items() if not k.startswith("2"))
            targets.append((f"poll p99 < {OPEN_P99 * 1000:.0f} ms",
                            p99 is not None and p99 < OPEN_P99 * 1000,
                            "no polls" if p99 is None else f"{p99:.1f} ms"))
            targets.append(("poll: 0 errors", perr == 0, f"{perr}"))
            targets.append(("poll: position never goes up", poll["position_rises"] == 0,
                            f"{poll['position_rises']} rises in {poll['positions_seen']} reads"))
            targets.append(("poll: positions were read (the test is not vacuous)",
                            poll["positions_seen"] > 0, f"{poll['positions_seen']} reads"))
        row["little_bound_ms"] = 1000 * little
        row["targets"] = [{"target": t, "met": m, "figure": f} for t, m, f in targets]


def _f(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _errs(row: dict[str, Any]) -> str:
    parts = [f"{k}: {v}" for k, v in row["errors"].items()]
    return ", ".join(parts) or "0"


def _print_row(row: dict[str, Any]) -> None:
    print(f"    {row['accepted']:,} accepted in {row['wall_s']:.1f} s = "
          f"{row['accepted_per_s']:,.0f}/s; p50 {_f(row['p50_ms'], '.1f')} ms, "
          f"p99 {_f(row['p99_ms'], '.1f')} ms, max {_f(row['max_ms'], '.1f')} ms; "
          f"errors {_errs(row)}; refused {row['refused_with_retry_after'] or 0}; "
          f"server {row['server_cpu_s']:.1f} CPU s, {row['server_peak_rss_mb']:.0f} MB; "
          f"worker {_f(row.get('worker_cpu_s'), '.1f')} CPU s; "
          f"client {_f(row['client_cpu_us_per_request'], '.0f')} us CPU/request "
          f"({_f(row['client_core_share'], '.0%')} of a core)", flush=True)
    if "poll" in row:
        p = row["poll"]
        print(f"    poll: {p['requests']:,} GETs by {p['clients']} clients in "
              f"{p['seconds']:.1f} s; p50 {_f(p['p50_ms'], '.1f')} ms, p99 "
              f"{_f(p['p99_ms'], '.1f')} ms, max {_f(p['max_ms'], '.1f')} ms; "
              f"rises {p['position_rises']}; errors {p['errors'] or 0}", flush=True)
    if "store_check" in row:
        print(f"    store: {row['store_check']}; drained "
              f"{_f(row['drain_after_client_s'], '.1f')} s after the client", flush=True)


def machine(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import baozi

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": redis_version(),
        "baozi": getattr(baozi, "__version__", "?"),
        "baozi_src": str(Path(baozi.__file__).parent),
        "baozi_commit": _git_head(Path(baozi.__file__).parent),
        "command": "python bench/burst_bench.py " + shlex.join(argv),
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE),
        "ephemeral_ports": _read("/proc/sys/net/ipv4/ip_local_port_range"),
        "tcp_tw_reuse": _read("/proc/sys/net/ipv4/tcp_tw_reuse"),
        "server_workers": args.server_workers,
        "worker": f"-P {args.worker_pool} -c {args.worker_concurrency} "
                  f"-p {args.worker_processes}",
    }


def _git_head(where: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    if out.returncode != 0:
        return "not in a git tree"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _read(path: str) -> str:
    try:
        return " ".join(Path(path).read_text().split())
    except OSError:
        return "?"


def report(rows: list[dict[str, Any]], info: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# Burst benchmark: the ticket office",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"Redis {info['redis']}; {info['platform']}",
        f"- command: `{info['command']}`; baozi from {info['baozi_src']} at "
        f"{info['baozi_commit']}",
        f"- server: {args.server_workers} process(es), --max-connections "
        f"{args.max_connections}; worker `baozi worker {info['worker']}` draining all along; "
        f"client: bench/burst/client.py ({args.client_procs} uvloop process(es)) on the same "
        "machine",
        f"- closed loop: {args.n:,} POSTs from {args.c:,} connections; newconn: "
        f"{args.newconn_n:,} POSTs, {args.c:,} lanes, a new connection each; poll: "
        f"{args.poll_n:,} POSTs into a paused queue, then polling; open loop: "
        f"{args.rate:g}/s for {args.seconds:g} s",
        "- load average (1 min) before each run: "
        + ", ".join(f"{r['system']} {r['mode']} {r['load1_before']:.1f}" for r in rows
                    if "load1_before" in r)
        + f" (the machine has {info['cores']} cores: a load well above what this benchmark's "
        "own processes make means something else ran beside it)",
        "",
        "| system | mode | accepted | accepted/s | of bare | p50 ms | p99 ms | max ms | "
        "p99 reused conn. ms | errors | 429/503 w/ Retry-After | server CPU s | "
        "server peak RSS MB | worker CPU s | client CPU us/req | stored once |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['system']} | {row['mode']} | skipped: {row['skipped']} "
                         "||||||||||||||")
            continue
        check = row.get("store_check")
        stored = "-" if check is None else (
            f"yes ({check['stored']:,})" if check["ok"] else
            f"NO: {check['stored']:,} stored, {check['missing']} missing, "
            f"{check['duplicate_ids']} dup ids")
        refused = ", ".join(f"{k}: {v}" for k, v in row["refused_with_retry_after"].items())
        lines.append(
            f"| {row['system']} | {row['mode']} | {row['accepted']:,} | "
            f"{row['accepted_per_s']:,.0f} | {_f(row.get('of_bare'), '.0%')} | "
            f"{_f(row['p50_ms'], '.1f')} | {_f(row['p99_ms'], '.1f')} | "
            f"{_f(row['max_ms'], '.1f')} | {_f(row['p99_reused_ms'], '.1f')} | "
            f"{_errs(row)} | {refused or '0'} | "
            f"{row['server_cpu_s']:.1f} | {row['server_peak_rss_mb']:.0f} | "
            f"{_f(row.get('worker_cpu_s'), '.1f')} | "
            f"{_f(row['client_cpu_us_per_request'], '.0f')} | {stored} |"
        )
    polls = [r for r in rows if "poll" in r]
    if polls:
        lines += [
            "",
            "Polling (the poll run: its burst lands in a paused queue; when the burst ends the "
            "queue is resumed and each client GETs its last order once a second until it ends, "
            "while the worker drains):",
            "",
            "| store | clients | GETs | seconds | p50 ms | p99 ms | max ms | errors | "
            "positions read | rises |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in polls:
            p = row["poll"]
            bad = {**p["errors"], **{k: v for k, v in p["statuses"].items()
                                     if not k.startswith("2")}}
            lines.append(
                f"| {row['system']} | {p['clients']} | {p['requests']:,} | {p['seconds']:.1f} | "
                f"{_f(p['p50_ms'], '.1f')} | {_f(p['p99_ms'], '.1f')} | "
                f"{_f(p['max_ms'], '.1f')} | {bad or 0} | {p['positions_seen']:,} | "
                f"{p['position_rises']} |"
            )
    ratio = _celery_ratio(rows)
    if ratio is not None:
        lines += ["", f"baozi / Celery (closed loop keep-alive, the same Redis): {ratio}."]
    lines += ["", "## Targets", ""]
    for row in rows:
        for t in row.get("targets", []):
            lines.append(f"- {row['system']} {row['mode']}: {t['target']}: "
                         f"**{'met' if t['met'] else 'missed'}** ({t['figure']})")
    lines += ["", "## Notes", ""]
    lines.append(
        "- accepted/s is the 2xx answers over the client's wall time; latency is from the "
        "request's first byte written (or the connect, for a new connection) to the whole "
        "answer read. The client's CPU per request and its share of a core show whether it "
        "could be what limits the rate (all processes share the machine's cores).")
    lines.append(
        "- p99 reused conn.: the p99 of the requests sent on a connection already open (without "
        "the first request of each keep-alive connection, whose latency holds the connect of "
        "1,000 clients arriving at once).")
    lines.append(
        "- the poll run's burst goes into a paused queue (so that the polling follows a whole "
        "burst draining, whatever the relative speeds of server and worker); its accepted/s is "
        "therefore not judged: the closed row, with the worker draining all along, is.")
    lines.append(
        "- server CPU and peak RSS: the server's process tree (uvicorn's supervisor and its "
        "worker processes), psutil every 100 ms; worker CPU likewise for `baozi worker`.")
    lines.append(
        "- the store check runs once the worker has drained the run's queue: records_of() over "
        "every 2xx id, and job_counts() of the run's own queue against the 2xx count.")
    lines.append(
        "- Celery: a plain Starlette endpoint on plain uvicorn (httptools), `order.delay()` in "
        "the threadpool, a Celery worker (`-P threads`) draining; no store check "
        "(its broker list is consumed).")
    return "\n".join(lines) + "\n"


def _celery_ratio(rows: list[dict[str, Any]]) -> str | None:
    celery = next((r for r in rows if r.get("system") == "celery" and "accepted_per_s" in r),
                  None)
    if celery is None or not celery["accepted_per_s"]:
        return None
    parts = []
    for row in rows:
        if row.get("system") in CLOSED_RATE and row.get("mode") == "closed":
            parts.append(f"{row['system']} {row['accepted_per_s'] / celery['accepted_per_s']:.2f}x"
                         f" ({row['accepted_per_s']:,.0f} vs {celery['accepted_per_s']:,.0f}/s)")
    return "; ".join(parts) or None


# -- main --------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stores", default="sqlite,redis")
    p.add_argument("--n", type=int, default=None, help="closed-loop POSTs (100,000)")
    p.add_argument("--newconn-n", type=int, default=None, help="newconn POSTs (as --n)")
    p.add_argument("-c", type=int, default=1000, help="concurrent connections")
    p.add_argument("--rate", type=float, default=1000.0, help="open loop: orders per second")
    p.add_argument("--seconds", type=float, default=None, help="open loop: seconds (60)")
    p.add_argument("--server-workers", type=int, default=2)
    p.add_argument("--client-procs", type=int, default=1,
                   help="client processes sharing the load (client.py --procs)")
    p.add_argument("--max-connections", type=int, default=10_000,
                   help="per server process (baozi serve --max-connections)")
    p.add_argument("--worker-pool", default="thread")
    p.add_argument("--worker-concurrency", type=int, default=8)
    p.add_argument("--worker-processes", type=int, default=1)
    p.add_argument("--celery-python", default=os.environ.get("BENCH_CELERY_PYTHON",
                                                             CELERY_PYTHON))
    p.add_argument("--celery-concurrency", type=int, default=8)
    p.add_argument("--only", default="closed,newconn,open,poll,bare,celery")
    p.add_argument("--poll-n", type=int, default=None,
                   help="POSTs of the polling run's burst (as --n)")
    p.add_argument("--poll-limit", type=float, default=None,
                   help="seconds the polling may go on (120; 60 with --quick)")
    p.add_argument("--drain-limit", type=float, default=300.0)
    p.add_argument("--client-cap", type=float, default=900.0,
                   help="seconds after which a client process is stopped")
    p.add_argument("--quick", action="store_true",
                   help="a fast check: --n 10000, open loop 10 s, polling 60 s at most")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    args.n = args.n or (10_000 if args.quick else 100_000)
    args.newconn_n = args.newconn_n or args.n
    args.poll_n = args.poll_n or args.n
    args.seconds = args.seconds or (10.0 if args.quick else 60.0)
    args.poll_limit = args.poll_limit or (60.0 if args.quick else 120.0)
    args.modes = set(args.only.split(","))
    unknown = args.modes - {"closed", "newconn", "open", "poll", "bare", "celery"}
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}")
    args.store_list = [s for s in args.stores.split(",") if s]
    if set(args.store_list) - {"sqlite", "redis"}:
        p.error("--stores: sqlite and/or redis")
    return args


def check_file_limit(args: argparse.Namespace) -> None:
    """The client needs a descriptor per connection (more in the open loop when every one is
    busy); it raises its soft limit itself, within the hard limit. Fail early if that cannot be
    enough."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.c + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"the open-file hard limit {hard} is under the {need} the client needs "
                 f"for -c {args.c}: raise it (ulimit -Hn) or lower -c")
    print(f"open files: soft {soft}, hard {hard} (client and server raise their soft limit; "
          f"{need} needed)", flush=True)


def main(argv: list[str]) -> int:
    args = parse(argv)
    check_file_limit(args)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    atexit.register(stop_all)
    info = machine(args, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    tmp = Path(tempfile.mkdtemp(prefix="burst-"))
    logs = tmp / "logs"
    logs.mkdir()
    print(f"logs in {logs} (removed at the end if empty)", flush=True)
    rows: list[dict[str, Any]] = []
    interrupted = False
    try:
        if "bare" in args.modes:
            rows += run_bare(args, logs)
            settle()
        for store in args.store_list:
            rows += run_store(store, args, logs, tmp)
            settle()
        if "celery" in args.modes and "closed" in args.modes:
            rows += run_celery(args, logs)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping what was started; the report holds the runs so far",
              flush=True)
    finally:
        stop_all()
    judge(rows, args)
    text = report(rows, info, args)
    if interrupted:
        text = text.replace("\n", "\n\n**Interrupted: only the runs that finished are here.**\n", 1)
    (out / f"burst-{stamp}.md").write_text(text)
    (out / "burst-latest.md").write_text(text)
    (out / f"burst-{stamp}.json").write_text(
        json.dumps({"machine": info, "rows": rows}, indent=1, default=str) + "\n")
    print(text)
    print(f"wrote {out / f'burst-{stamp}.md'} and burst-latest.md, raw figures in "
          f"burst-{stamp}.json; logs in {logs}", flush=True)
    if not any((logs / f).stat().st_size for f in os.listdir(logs)):
        shutil.rmtree(tmp, ignore_errors=True)  # nothing logged: nothing to keep
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
