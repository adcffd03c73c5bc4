#!/usr/bin/env python
"""Queue throughput, cross-process wake-up latency and idle cost: baozi.Queue beside its peers.

One run measures, interleaved over several rounds on this machine:
  * put + get + acknowledge of N single items (items/s), for baozi on SQLite (default durability
    and fsync), persist-queue's SQLiteAckQueue and SQLiteQueue, litequeue, baozi on memory:// and
    the standard library's in-memory queue.Queue (the upper bound);
  * the same with baozi's batch calls (put_many / get_many + task_done(count));
  * wake-up latency of a get() blocked in another process when an item is put;
  * the CPU used by a consumer blocked on an empty queue.
It prints a markdown table with ratios and writes it under bench/results/.

    python bench/queue_bench.py [--n 20000] [--n-fsync 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ITEM = "x" * 32
BATCH = 1000


# -- systems: each returns (put, get_and_ack, close) for a fresh queue in ``d`` -------------------


def stdlib(d: str) -> tuple[Callable[[Any], None], Callable[[], Any], Callable[[], None]]:
    q: queue.Queue[Any] = queue.Queue()

    def get() -> Any:
        item = q.get()
        q.task_done()
        return item

    return q.put, get, lambda: None


def baozi_queue(url_suffix: str = "") -> Callable[[str], Any]:
    def make(d: str) -> Any:
        import baozi

        url = (
            "memory://bench-" + os.path.basename(d)
            if url_suffix == "memory"
            else f"sqlite:///{d}/baozi.db{url_suffix}"
        )
        q = baozi.Queue("bench", url=url)

        def get() -> Any:
            item = q.get()
            q.task_done()
            return item

        return q.put, get, q.close

    return make


def persist_ack(d: str) -> Any:
    import persistqueue

    q = persistqueue.SQLiteAckQueue(d)

    def get() -> Any:
        item = q.get()
        q.ack(item)
        return item

    return q.put, get, lambda: None


def persist_plain(d: str) -> Any:
    import persistqueue

    q = persistqueue.SQLiteQueue(d, auto_commit=True)
    return q.put, q.get, lambda: None


def litequeue_q(d: str) -> Any:
    import litequeue

    q = litequeue.LiteQueue(f"{d}/lite.db")

    def get() -> Any:
        msg = q.pop()
        q.done(msg.message_id)
        return msg.data

    return q.put, get, q.close


SINGLE: dict[str, tuple[Callable[[str], Any], str]] = {
    "baozi (SQLite, default: survives kill -9)": (baozi_queue(), "WAL, synchronous=NORMAL"),
    "baozi (SQLite, durable=fsync: survives power loss)": (
        baozi_queue("?durable=fsync"),
        "WAL, synchronous=FULL",
    ),
    "persist-queue SQLiteAckQueue": (
        persist_ack,
        "WAL, synchronous=FULL (SQLite default), get + ack",
    ),
    "persist-queue SQLiteQueue": (
        persist_plain,
        "WAL, synchronous=FULL, auto_commit=True, get deletes (no ack)",
    ),
    "litequeue": (litequeue_q, "WAL, synchronous=NORMAL, pop + done"),
    "baozi (memory://)": (baozi_queue("memory"), "in-process, not durable"),
    "queue.Queue (stdlib)": (stdlib, "in-process, not durable: the upper bound"),
}
BATCHED = {
    "baozi batches (SQLite, default)": "",
    "baozi batches (SQLite, durable=fsync)": "?durable=fsync",
}


def run_single(make: Callable[[str], Any], n: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as d:
        put, get, close = make(d)
        t0 = time.perf_counter()
        for _ in range(n):
            put(ITEM)
        t1 = time.perf_counter()
        for _ in range(n):
            get()
        t2 = time.perf_counter()
        close()
    return n / (t1 - t0), n / (t2 - t1), n / (t2 - t0)


def run_batched(suffix: str, n: int) -> tuple[float, float, float]:
    import baozi

    with tempfile.TemporaryDirectory() as d:
        q = baozi.Queue("bench", url=f"sqlite:///{d}/baozi.db{suffix}")
        items = [ITEM] * BATCH
        t0 = time.perf_counter()
        for _ in range(n // BATCH):
            q.put_many(items)
        t1 = time.perf_counter()
        got = 0
        while got < n:
            batch = q.get_many(BATCH)
            q.task_done(len(batch))
            got += len(batch)
        t2 = time.perf_counter()
        q.close()
    return n / (t1 - t0), n / (t2 - t1), n / (t2 - t0)


# -- wake-up latency and idle cost: a consumer in another process ------------------------------


def latency_consumer(url: str, out: str) -> None:
    import baozi

    lat = []
    with baozi.Queue("latency", url=url) as q:
        while True:
            sent = q.get()
            got = time.clock_gettime(time.CLOCK_MONOTONIC)
            q.task_done()
            if sent == "STOP":
                break
            lat.append((got - sent) * 1000)
    Path(out).write_text(json.dumps(lat))


def persist_latency_consumer(path: str, out: str) -> None:
    import persistqueue

    q = persistqueue.SQLiteAckQueue(path, multithreading=True)
    lat = []
    while True:
        item = q.get(block=True)
        got = time.clock_gettime(time.CLOCK_MONOTONIC)
        q.ack(item)
        if item == "STOP":
            break
        lat.append((got - item) * 1000)
    Path(out).write_text(json.dumps(lat))


def measure_latency(kind: str, count: int = 200, spacing: float = 0.02) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        out = f"{d}/lat.json"
        if kind == "baozi":
            import baozi

            url = f"sqlite:///{d}/lat.db"
            q: Any = baozi.Queue("latency", url=url)
            target = url
        else:
            import persistqueue

            q = persistqueue.SQLiteAckQueue(d, multithreading=True)
            target = d
        child = subprocess.Popen([sys.executable, __file__, f"--{kind}-consumer", target, out])
        time.sleep(1.0)  # let it start and block
        for _ in range(count):
            time.sleep(spacing)
            q.put(time.clock_gettime(time.CLOCK_MONOTONIC))
        q.put("STOP")
        child.wait(60)
        return json.loads(Path(out).read_text())


def idle_cpu_percent(seconds: float = 5.0) -> float:
    import psutil

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/idle.db"
        import baozi

        baozi.Queue("idle", url=url).close()
        child = subprocess.Popen(
            [sys.executable, __file__, "--idle-consumer", url, str(seconds + 3)]
        )
        time.sleep(1.5)
        proc = psutil.Process(child.pid)
        before = proc.cpu_times()
        time.sleep(seconds)
        after = proc.cpu_times()
        child.wait(30)
    used = (after.user - before.user) + (after.system - before.system)
    return 100 * used / seconds


def idle_consumer(url: str, seconds: str) -> None:
    import baozi

    with baozi.Queue("idle", url=url) as q:
        try:
            q.get(timeout=float(seconds))
        except queue.Empty:
            pass


# -- report -------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, temp dir {tempfile.gettempdir()}"
    )


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="items per single-item run")
    parser.add_argument(
        "--n-fsync",
        type=int,
        default=20_000,
        help="items per run for fsync systems and persist-queue",
    )
    parser.add_argument("--n-batch", type=int, default=200_000, help="items per batched run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument(
        "--no-readme", dest="readme", action="store_false", help="leave README.md's table alone"
    )
    args = parser.parse_args()

    single: dict[str, list[tuple[float, float, float]]] = {k: [] for k in SINGLE}
    batched: dict[str, list[tuple[float, float, float]]] = {k: [] for k in BATCHED}
    names = list(SINGLE)
    for r in range(args.rounds):
        order = (
            names[r % len(names) :] + names[: r % len(names)]
        )  # rotate, so no one always goes first
        for name in order:
            n = args.n_fsync if "fsync" in name or "persist" in name else args.n
            single[name].append(run_single(SINGLE[name][0], n))
            print(f"round {r + 1}: {name}: {single[name][-1][2]:,.0f} round trips/s", flush=True)
        for name, suffix in BATCHED.items():
            batched[name].append(run_batched(suffix, args.n_batch))
            print(f"round {r + 1}: {name}: {batched[name][-1][2]:,.0f} items/s", flush=True)

    lat_baozi = measure_latency("baozi")
    lat_persist = measure_latency("persist")
    idle = idle_cpu_percent()

    def med(rows: list[tuple[float, float, float]], i: int) -> float:
        return statistics.median(r[i] for r in rows)

    ack_peer = med(single["persist-queue SQLiteAckQueue"], 2)
    lines = [
        f"# Queue benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}.",
        f"Command: `python bench/queue_bench.py --n {args.n} --n-fsync {args.n_fsync} "
        f"--n-batch {args.n_batch} --rounds {args.rounds}`; medians of {args.rounds} interleaved rounds. "
        f"Items are 32-character strings; put all N, then get and acknowledge all N, one call per item, "
        f"one thread. Round trip = N / (put time + get time).",
        "",
        "| queue | settings | put items/s | get + ack items/s | round trip items/s | vs SQLiteAckQueue |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in single.items():
        lines.append(
            f"| {name} | {SINGLE[name][1]} | {med(rows, 0):,.0f} | {med(rows, 1):,.0f} | "
            f"{med(rows, 2):,.0f} | {med(rows, 2) / ack_peer:.1f}x |"
        )
    for name, rows in batched.items():
        lines.append(
            f"| {name} | put_many / get_many of {BATCH} + task_done({BATCH}) | "
            f"{med(rows, 0):,.0f} | {med(rows, 1):,.0f} | {med(rows, 2):,.0f} | "
            f"{med(rows, 2) / ack_peer:.0f}x |"
        )
    lines += [
        "",
        "Cross-process wake-up: a consumer process blocked in `get()`, 200 items put one every 20 ms "
        "by another process; latency = taken - put, in ms.",
        "",
        "| consumer | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, lat in (
        ("baozi.Queue (SQLite)", lat_baozi),
        ("persist-queue SQLiteAckQueue get(block=True)", lat_persist),
    ):
        lines.append(
            f"| {name} | {pct(lat, 0.5):.2f} | {pct(lat, 0.9):.2f} | {pct(lat, 0.99):.2f} | {max(lat):.2f} |"
        )
    lines += [
        "",
        "persist-queue's blocking `get()` is woken by puts in its own process only; another "
        "process's puts are seen when its 10 s wait tick runs out.",
        "",
        f"Idle cost: a baozi consumer blocked in `get()` on an empty SQLite queue used "
        f"**{idle:.2f}% of one core** over 5 s.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "queue-latest.md").write_text(report)
    (out / f"queue-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M}.md").write_text(report)
    if args.readme:
        update_readme(report)


def update_readme(report: str, marker: str = "bench:queue") -> None:
    """Put the report (without its title) between the README's ``<!-- bench:queue -->`` markers."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text or end not in text:
        return
    body = report.split("\n", 2)[2].strip()
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baozi-consumer":
        latency_consumer(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--persist-consumer":
        persist_latency_consumer(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--idle-consumer":
        idle_consumer(sys.argv[2], sys.argv[3])
    else:
        main()
