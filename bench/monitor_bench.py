#!/usr/bin/env python
"""The URL monitor against its ceiling: N checks of a local server that answers each after 100 ms,
C in flight in all, start-up included, beside a bare asyncio client measured in the same run.

    python bench/monitor_bench.py [--n 10000] [--delay 0.1] [-c 1000] [--rounds 3] [--only WORDS]

Each round runs, in turn (the order rotates each round), each just after a run of the ceiling:

- the ceiling: bench/monitor/bare.py, raw asyncio sockets, no HTTP library;
- ``baozi monitor URLS -q -c C`` in-process, with ``-p 1`` and ``-p 2`` on the default client
  (greenlets on geventhttpclient, gevent being installed), and ``-p 2`` on aiohttp;
- ``baozi monitor URLS --via-queue`` beside ``baozi worker baozi.monitor:app -P POOL -c C``
  (async and gevent pools; also 2 processes of C/2), both launched at once on a fresh SQLite store;
- the floor of --via-queue: the same, with workers that sleep 100 ms instead of checking
  (bench/monitor/app_floor.py), so the queue's own cost shows apart from the client's.

Each row: wall time from launch to the monitor's exit, its ratio to this round's ceiling and to the
ideal (N x delay / C), the CPU of the client's processes and of the server, the peak memory (RSS,
summed over the monitor's and the worker's process trees, sampled every 50 ms). Then the CPU per
request of each client tried (bench/monitor/clients.py, against a server that answers at once).
Writes bench/results/monitor-YYYYMMDD-HHMM.md and monitor-latest.md, and the README's table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PY = sys.executable
CLIENTS = ["bare", "aiohttp", "aiohttp-uvloop", "geventhttpclient", "httpx", "httpx-gevent"]
TARGETS = {  # the issue's: -p 2 within 1.25x of the ceiling, the worker pools within 2.5x
    "monitor -p 2": 1.25,
    "via-queue async": 2.5,
    "via-queue gevent": 2.5,
    "via-queue async 2": 2.5,
    "via-queue gevent 2": 2.5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(delay: float) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    argv = [PY, str(HERE / "monitor" / "server.py"), str(port), str(delay)]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server, f"http://127.0.0.1:{port}/"


def tree_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in family:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def watch(main: subprocess.Popen[bytes], others: list[subprocess.Popen[bytes]]) -> int:
    """Wait for ``main``, sampling the peak RSS of it and ``others`` (with their children)."""
    procs = [psutil.Process(p.pid) for p in [main, *others]]
    peak = 0
    while main.poll() is None:
        peak = max(peak, tree_rss(procs))
        time.sleep(0.05)
    return peak


def run_one(name: str, argv: list[str], worker: list[str] | None, env: dict[str, str]) -> dict:
    """Launch ``argv`` (and ``worker`` beside it) at once; time it to its exit."""
    cpu = children_cpu()
    started = time.monotonic()
    helpers = [] if worker is None else [subprocess.Popen(worker, env=env, cwd=ROOT)]
    main = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        peak = watch(main, helpers)
        wall = time.monotonic() - started
    finally:
        for proc in [main, *helpers]:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(60)
    return {
        "name": name,
        "wall": wall,
        "peak": peak,
        "cpu": children_cpu() - cpu,
        "ok": main.returncode == 0,
    }


def configs(
    url: str, urls: Path, n: int, c: int, delay: float
) -> list[tuple[str, Callable[[], dict]]]:
    """Every run of a round, as (name, a function that runs it once)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    monitor = [PY, "-m", "baozi", "monitor", str(urls), "-q", "--timeout", "10"]

    def inprocess(p: int, client: str | None = None) -> Callable[[], dict]:
        argv = [*monitor, "-c", str(c), "-p", str(p)]
        name = f"monitor -p {p}"
        if client is not None:  # else the default: gevent where it is installed
            argv += ["--client", client]
            name += f" --client {client}"
        return lambda: run_one(name, argv, None, env)

    def via_queue(pool: str, procs: int, floor: bool = False) -> Callable[[], dict]:
        def go() -> dict:
            work = tempfile.mkdtemp(prefix="bench-monitor-")
            store = {**env, "BAOZI_URL": f"sqlite:///{work}/store.db"}
            app = "baozi.monitor:app"
            if floor:  # the same job name, answered by a sleep: the queue's own cost
                app = "app_floor:app"
                store["PYTHONPATH"] += os.pathsep + str(HERE / "monitor")
                store["BENCH_DELAY"] = str(delay)
            worker = [PY, "-m", "baozi", "worker", app, "-q", "-P", pool]
            worker += ["-c", str(c // procs), "-p", str(procs)]
            try:
                name = f"via-queue {pool}" + ("" if procs == 1 else f" {procs} x c{c // procs}")
                if floor:
                    name += f", a {delay * 1000:.0f} ms sleep instead of a check (floor)"
                return run_one(name, [*monitor, "--via-queue"], worker, store)
            finally:
                shutil.rmtree(work, ignore_errors=True)

        return go

    bare = [PY, str(HERE / "monitor" / "bare.py"), url, str(n), str(c)]
    return [
        ("bare", lambda: run_one("bare asyncio client (ceiling)", bare, None, env)),
        ("monitor -p 1", inprocess(1)),
        ("monitor -p 2", inprocess(2)),
        ("monitor -p 2 aiohttp", inprocess(2, "aiohttp")),
        ("via-queue async", via_queue("async", 1)),
        ("via-queue gevent", via_queue("gevent", 1)),
        ("via-queue async 2", via_queue("async", 2)),
        ("via-queue gevent 2", via_queue("gevent", 2)),
        ("floor via-queue async", via_queue("async", 1, floor=True)),
        ("floor via-queue gevent", via_queue("gevent", 1, floor=True)),
    ]


def client_cpu(url: str, n: int, c: int, only: list[str] | None) -> dict[str, dict]:
    """Each client's CPU per request against a server that answers at once."""
    out = {}
    for client in CLIENTS:
        if only and not any(w in client for w in only):
            continue
        argv = [PY, str(HERE / "monitor" / "clients.py"), client, url, str(n), str(c)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
        if done.returncode != 0:
            print(f"{client}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        out[client] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {client:18} {out[client]['cpu'] / n * 1e6:7.0f} us/request", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("-c", "--concurrency", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="runs (and clients) whose names contain these words")
    ap.add_argument("--cpu-n", type=int, default=2000, help="requests per client in the CPU part")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--out", type=Path, help="the report's path (default: bench/results/)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers stop too
    load = [os.getloadavg()]
    started = dt.datetime.now(dt.UTC)
    server, url = start_server(args.delay)
    fast, fast_url = start_server(0.0)
    urls = Path(tempfile.mkdtemp(prefix="bench-monitor-urls-")) / "urls.txt"
    urls.write_text(f"{url}\n" * args.n)
    runs = configs(url, urls, args.n, args.concurrency, args.delay)
    bare = runs[0][1]
    if args.only:
        runs = [r for r in runs if r[0] == "bare" or any(w in r[0] for w in args.only)]
    rows: dict[str, list[dict]] = {}
    cpu: list[dict[str, dict]] = []
    try:
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}", flush=True)
            others = [r for r in runs if r[0] != "bare"]
            order = others[round_ % len(others) :] + others[: round_ % len(others)]
            for i, (key, run) in enumerate(order):
                # The ceiling just before each run: on a shared machine the load drifts within
                # a round, so each run is compared with a bare client that met the same load.
                ceiling = measure(bare, server, f"{round_}.{i}", rows, "bare")
                measure(run, server, ceiling["round"], rows, key)
            cpu.append(client_cpu(fast_url, args.cpu_n, 100, args.only))
            load.append(os.getloadavg())
    finally:
        server.terminate()
        fast.terminate()
        shutil.rmtree(urls.parent, ignore_errors=True)
    report(rows, cpu, args, started, load)


def measure(
    run: Callable[[], dict], server: subprocess.Popen[str], pair: str, rows: dict, key: str
) -> dict:
    """Run once; note the server's CPU meanwhile and the pair (ceiling, run) it belongs to."""
    before = psutil.Process(server.pid).cpu_times()
    row = run()
    after = psutil.Process(server.pid).cpu_times()
    row["server_cpu"] = max(0.0, after.user + after.system - before.user - before.system)
    row["round"] = pair
    rows.setdefault(key, []).append(row)
    print(
        f"  {row['name']:34} {row['wall']:6.2f} s  cpu {row['cpu']:5.2f} s  "
        f"server {row['server_cpu']:4.2f} s  peak {row['peak'] / 2**20:4.0f} MB  "
        f"{'ok' if row['ok'] else 'NOT ALL OK'}",
        flush=True,
    )
    return row


def _med(values: list[float], fmt: str) -> str:
    """Median (min–max) of ``values``, each in ``fmt``."""
    mid = format(statistics.median(values), fmt)
    if len(values) == 1:
        return mid
    return f"{mid} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def table(rows: dict[str, list[dict]], args: argparse.Namespace) -> str:
    n, ideal = args.n, args.n * args.delay / args.concurrency
    ceiling = {r["round"]: r["wall"] for r in rows.get("bare", [])}
    cores = os.cpu_count() or 1
    lines = [
        "| run | wall s | × ceiling | × ideal | checks/s | client CPU s | server CPU s "
        "| CPU bound s | peak MB | all ok | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in rows.items():
        walls = [r["wall"] for r in runs]
        ratios = [r["wall"] / ceiling[r["round"]] for r in runs if r["round"] in ceiling]
        goal = TARGETS.get(key)
        met = ""
        if goal is not None and ratios:
            verdict = "met" if statistics.median(ratios) <= goal else "missed"
            met = f"≤ {goal}x ceiling: {verdict}"
        lines.append(
            f"| {runs[0]['name']} | {_med(walls, '.2f')} | {_med(ratios, '.2f')}x "
            f"| {_med([w / ideal for w in walls], '.2f')}x "
            f"| {statistics.median(n / w for w in walls):,.0f} "
            f"| {_med([r['cpu'] for r in runs], '.2f')} "
            f"| {_med([r['server_cpu'] for r in runs], '.2f')} "
            f"| {_med([(r['cpu'] + r['server_cpu']) / cores for r in runs], '.2f')} "
            f"| {_med([r['peak'] / 2**20 for r in runs], '.0f')} "
            f"| {'yes' if all(r['ok'] for r in runs) else 'NO'} | {met} |"
        )
    return "\n".join(lines)


def cpu_table(cpu: list[dict[str, dict]], n: int) -> str:
    lines = [
        "| client | CPU per request µs | requests/s of CPU | answered 200 |",
        "|---|---|---|---|",
    ]
    for client in CLIENTS:
        seen = [c[client] for c in cpu if client in c]
        if not seen:
            continue
        per = [s["cpu"] / s["n"] * 1e6 for s in seen]
        ok = all(s["ok"] == s["n"] for s in seen)
        lines.append(
            f"| {client} | {_med(per, '.0f')} | {1e6 / statistics.median(per):,.0f} "
            f"| {'all' if ok else 'NOT ALL'} |"
        )
    return "\n".join(lines)


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    gib = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {gib:.0f} GiB, Python {platform.python_version()}"


def report(
    rows: dict[str, list[dict]],
    cpu: list[dict[str, dict]],
    args: argparse.Namespace,
    started: dt.datetime,
    load: list[tuple[float, float, float]],
) -> None:
    import aiohttp

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    loads = ", ".join(f"{one:.1f}" for one, _, _ in load)
    ideal = args.n * args.delay / args.concurrency
    main_table = table(rows, args)
    text = (
        f"# URL monitor against its ceiling\n\n"
        f"Run {started:%Y-%m-%d %H:%M} UTC, {args.rounds} round(s), commit {commit}. "
        f"Machine: {machine()}; aiohttp {aiohttp.__version__}. "
        f"1-minute load average at the start and after each round: {loads} (the machine was "
        "shared with other work: figures are noisy).\n\n"
        f"{args.n:,} checks of a local server (bench/monitor/server.py) that answers each after "
        f"{args.delay * 1000:.0f} ms, {args.concurrency:,} in flight in all, start-up included: "
        "wall time from launch to the monitor's exit (for --via-queue, the worker is launched at "
        "the same moment on a fresh SQLite store; enqueueing and collecting the results count). "
        f"Ideal = checks x delay / in flight = {ideal:.2f} s. Ceiling = the bare asyncio client "
        "on raw sockets (bench/monitor/bare.py), run again just before every other run; × "
        "ceiling is each run's ratio to the ceiling run just before it (the ceiling's own row "
        "gathers all of its runs). Client CPU = user + system time of the monitor's (and worker's) "
        "processes; server CPU = the server's over the same run; CPU bound = (client CPU + server CPU) / "
        "cores, the least wall time that CPU allows if every core were busy all along. Peak memory = RSS summed over "
        "the monitor's and the worker's process trees, sampled every 50 ms. Cells: median "
        "(min–max) over the rounds.\n\n" + main_table + "\n\n"
        f"CPU per request of each client tried: {args.cpu_n:,} requests, 100 in flight, against "
        "a server that answers at once, the requests alone timed in the client's process "
        "(bench/monitor/clients.py); the greenlet clients run under gevent's patching.\n\n"
        + cpu_table(cpu, args.cpu_n)
        + "\n"
    )
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"monitor-{started:%Y%m%d-%H%M}.md"
    out.write_text(text)
    raw = {"args": vars(args) | {"out": str(args.out)}, "rows": rows, "cpu": cpu, "load": load}
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    if args.out is None:
        (RESULTS / "monitor-latest.md").write_text(text)
    print(text)
    if not args.no_readme and args.out is None:
        readme = ROOT / "README.md"
        body = readme.read_text()
        marked = re.compile(r"(<!-- bench:monitor -->\n).*?(<!-- /bench:monitor -->)", re.S)
        if marked.search(body):
            new = main_table + "\n\n" + cpu_table(cpu, args.cpu_n) + "\n"
            readme.write_text(marked.sub(lambda m: m.group(1) + new + m.group(2), body))


if __name__ == "__main__":
    main()
