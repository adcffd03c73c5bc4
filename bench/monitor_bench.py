#!/usr/bin/env python
"""The URL monitor at scale: 10,000 checks of a local server that answers each after 100 ms,
run as jobs by each kind of pool, beside the ideal time (N x delay / concurrency).

    python bench/monitor_bench.py [--n 10000] [--delay 0.1] [--only async gevent]

Each configuration: a fresh SQLite store, N jobs enqueued with ``map``, then
``baozi worker app_monitor:app -P POOL -c C [-p P] --burst`` timed from launch to exit (so worker
start-up is included), with the peak memory (RSS) of the worker's process tree sampled every 50 ms.
Also ``baozi monitor`` in-process (coroutines, no queue). Writes bench/results/monitor-latest.md
and updates the README table between its markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

CONFIGS = [  # (name, pool, concurrency, processes, task)
    ("thread c50", "thread", 50, 1, "check"),
    ("thread c200", "thread", 200, 1, "check"),
    ("async c1000", "async", 1000, 1, "check_async"),
    ("gevent c1000", "gevent", 1000, 1, "check"),
    ("async 2 x c1000", "async", 1000, 2, "check_async"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_worker(name: str, pool: str, c: int, procs: int, task: str, url: str, n: int) -> dict:
    work = tempfile.mkdtemp(prefix="bench-monitor-")
    store = f"sqlite:///{work}/store.db"
    env = {**os.environ, "BENCH_URL": store, "PYTHONPATH": f"{HERE / 'monitor'}:{ROOT / 'src'}"}
    enqueue = (
        f"import app_monitor as m; t = m.app.tasks[{task!r}]; "
        f"[t.map([({url!r}, 200, 10.0)] * 1000) for _ in range({n // 1000})]"
    )
    subprocess.run([sys.executable, "-c", enqueue], env=env, check=True, cwd=HERE / "monitor")
    argv = [sys.executable, "-m", "baozi", "worker", "app_monitor:app", "-q", "--burst"]
    argv += ["-P", pool, "-c", str(c), "-p", str(procs)]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=HERE / "monitor")
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    wall = time.monotonic() - started
    check = (  # checks that answered 200 (a job can succeed with a failed check in it)
        "import app_monitor as m; s = m.app.store; "
        f"print(sum(m.app.codec.loads(r.result)['ok'] for r in s.records('default', 'succeeded', {n})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        env=env,
        cwd=HERE / "monitor",
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "name": name,
        "concurrency": c * procs,
        "wall": wall,
        "peak": peak,
        "ok": int(done.stdout.strip()),
        "rc": proc.returncode,
    }


def run_inprocess(url: str, n: int, c: int) -> dict:
    urls = Path(tempfile.mkdtemp()) / "urls.txt"
    urls.write_text(f"{url}\n" * n)
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baozi",
            "monitor",
            str(urls),
            "-q",
            "-c",
            str(c),
            "--timeout",
            "10",
        ],
        cwd=ROOT,
    )
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    return {
        "name": f"baozi monitor c{c} (in-process)",
        "concurrency": c,
        "wall": time.monotonic() - started,
        "peak": peak,
        "ok": n if proc.returncode == 0 else -1,
        "rc": proc.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--only", nargs="*", help="config names containing these words")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "monitor" / "server.py"), str(port), str(args.delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    url = f"http://127.0.0.1:{port}/"
    rows = []
    try:
        for name, pool, c, procs, task in CONFIGS:
            if args.only and not any(w in name for w in args.only):
                continue
            row = run_worker(name, pool, c, procs, task, url, args.n)
            rows.append(row)
            print(
                f"{name:24} {row['wall']:6.2f} s  {row['ok']} ok  peak {row['peak'] / 2**20:.0f} MB",
                flush=True,
            )
        if not args.only or any("monitor" in w for w in args.only):
            row = run_inprocess(url, args.n, 1000)
            rows.append(row)
            print(
                f"{row['name']:24} {row['wall']:6.2f} s  peak {row['peak'] / 2**20:.0f} MB",
                flush=True,
            )
    finally:
        server.terminate()
    report(rows, args)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    n, delay = args.n, args.delay
    lines = [
        "| run | concurrency | wall s | checks/s | ideal s | wall / ideal | peak memory MB | all ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ideal = n * delay / r["concurrency"]
        lines.append(
            f"| {r['name']} | {r['concurrency']:,} | {r['wall']:.2f} | {n / r['wall']:,.0f} | "
            f"{ideal:.2f} | {r['wall'] / ideal:.2f}x | {r['peak'] / 2**20:.0f} | "
            f"{'yes' if r['ok'] == n and r['rc'] in (0, 1) else 'NO'} |"
        )
    table = "\n".join(lines)
    cpu = platform.processor() or platform.machine()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# URL monitor at scale\n\nRun {when}. Machine: {os.cpu_count()} cores ({cpu}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}.\n\n"
        f"{n:,} checks of a local server that answers each after {delay * 1000:.0f} ms; each run a "
        "fresh SQLite store, the jobs enqueued first, the worker timed from launch to exit "
        "(start-up included); peak RSS of the worker's process tree. Ideal = checks x delay / "
        "concurrency.\n\n" + table + "\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "monitor-latest.md").write_text(text)
    print(text)
    if not args.no_readme:
        readme = ROOT / "README.md"
        body = readme.read_text()
        marked = re.compile(r"(<!-- bench:monitor -->\n).*?(<!-- /bench:monitor -->)", re.S)
        if marked.search(body):
            readme.write_text(marked.sub(lambda m: m.group(1) + table + "\n" + m.group(2), body))


if __name__ == "__main__":
    main()
