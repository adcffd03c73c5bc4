#!/usr/bin/env python
"""Coordination speed: baozi's store-backed lock and event beside their peers, on each store.

One run measures, interleaved over several rounds on this machine, for every lock below:
  * uncontended: one thread of one process acquires and releases the lock N times (per second);
  * contended: K workers hammer one lock (acquire, release, again) for a fixed time; the total
    acquire + release per second across them, and the least-served worker's count over the
    most-served one's (1.0 = fair). Workers are K processes (spawn), except where the lock lives
    in one process (baozi on memory://, threading.RLock): there they are K threads;
  * wake-up latency: a waiter (another process; a thread where the lock lives in one process)
    blocks in ``acquire()`` while this process holds the lock, then this process releases it;
    latency = when the waiter's ``acquire()`` returned - just before the holder's ``release()``
    call, both on CLOCK_MONOTONIC (system-wide on Linux). The same for ``event.wait()`` and
    ``set()``. The holder waits 20 ms plus a random 0-100 ms after the waiter says it is about to
    block, so a peer that polls (redis-py's Lock every 0.1 s, FileLock every 0.05 s) is caught at
    a random point of its period rather than always at the same one.

Peers, side by side in the same run: threading.RLock, multiprocessing.Lock, threading.Event and
multiprocessing.Event (in-memory references), filelock.FileLock (a file-based cross-process lock,
beside SQLite) and redis-py's own ``redis.lock.Lock`` (with its default ``sleep=0.1`` poll, and
with ``sleep=0.001``). It prints markdown tables with ratios and writes them to
bench/results/coord-latest.md (+ a timestamped copy), and refreshes README.md's table.

    python bench/coord_bench.py [--n 2000] [--n-mem 50000] [--k 4] [--seconds 1.5]
                                [--trials 50] [--rounds 3] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import queue
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
CTX = multiprocessing.get_context("spawn")
HOLD_MIN, HOLD_JITTER = (
    0.02,
    0.1,
)  # how long the holder keeps a waiter blocked: 20 ms + U(0, 100 ms)

Opened = tuple[Callable[[], Any], Callable[[], Any], Callable[[], None]]


# -- opening a lock or an event from a spec (a picklable tuple, or an object for threads) --------


def open_lock(spec: tuple[Any, ...]) -> Opened:
    """(acquire, release, close) for the lock the spec names, opened in this process."""
    kind = spec[0]
    if kind == "baozi":
        import baozi

        app = baozi.App(spec[1])
        lock = app.lock(spec[2], ttl=30)
        return lock.acquire, lock.release, app.store.close
    if kind == "object":  # threading.RLock, multiprocessing.Lock: the object itself
        return spec[1].acquire, spec[1].release, lambda: None
    if kind == "filelock":
        import filelock

        fl = filelock.FileLock(spec[1])
        return fl.acquire, fl.release, lambda: None
    if kind == "redis-py":
        import redis

        client = redis.Redis.from_url(spec[1])
        rl = client.lock(spec[2], timeout=30, sleep=spec[3])  # timeout: a ttl, as baozi's
        return rl.acquire, rl.release, client.close
    raise ValueError(f"unknown lock kind {kind!r}")


def open_event(spec: tuple[Any, ...]) -> tuple[Callable[[], Any], Callable[[], Any], Opened]:
    """(set, clear, (wait, None, close)) for the event the spec names."""
    if spec[0] == "baozi":
        import baozi

        app = baozi.App(spec[1])
        ev = app.event(spec[2])
        return ev.set, ev.clear, (ev.wait, None, app.store.close)
    if spec[0] == "object":  # threading.Event, multiprocessing.Event
        ev = spec[1]
        return ev.set, ev.clear, (ev.wait, None, lambda: None)
    raise ValueError(f"unknown event kind {spec[0]!r}")


# -- the systems ----------------------------------------------------------------------------------


@dataclass
class System:
    store: str  # memory, sqlite, redis
    name: str
    settings: str
    threads: bool  # workers and waiters are threads of this process (else processes)
    spec: Callable[[], tuple[Any, ...]] = field(repr=False)  # a fresh spec for each measurement
    baozi: bool = False


def locks(urls: dict[str, str], tmp: str, redis_url: str, prefix: str) -> list[System]:
    def named(kind: str, url: str) -> Callable[[], tuple[Any, ...]]:
        return lambda: (kind, url, f"bench-{uuid.uuid4().hex[:8]}")

    def redispy(sleep: float) -> Callable[[], tuple[Any, ...]]:
        return lambda: ("redis-py", redis_url, f"{prefix}:redis-py-{uuid.uuid4().hex[:8]}", sleep)

    def file() -> tuple[Any, ...]:
        return ("filelock", f"{tmp}/{uuid.uuid4().hex[:8]}.lock")

    return [
        System(
            "memory",
            "baozi app.lock (memory://)",
            "ttl=30",
            True,
            named("baozi", urls["memory"]),
            True,
        ),
        System(
            "memory",
            "threading.RLock",
            "in one process",
            True,
            lambda: ("object", threading.RLock()),
        ),
        System(
            "memory",
            "multiprocessing.Lock",
            "spawn context, a POSIX semaphore",
            False,
            lambda: ("object", CTX.Lock()),
        ),
        System(
            "sqlite",
            "baozi app.lock (SQLite)",
            "ttl=30, WAL",
            False,
            named("baozi", urls["sqlite"]),
            True,
        ),
        System("sqlite", "filelock.FileLock", "default: flock, poll_interval=0.05", False, file),
        System(
            "redis", "baozi app.lock (Redis)", "ttl=30", False, named("baozi", urls["redis"]), True
        ),
        System(
            "redis", "redis-py Lock, sleep=0.1 (its default)", "timeout=30", False, redispy(0.1)
        ),
        System("redis", "redis-py Lock, sleep=0.001", "timeout=30", False, redispy(0.001)),
    ]


def events(urls: dict[str, str]) -> list[System]:
    def named(url: str) -> Callable[[], tuple[Any, ...]]:
        return lambda: ("baozi", url, f"bench-{uuid.uuid4().hex[:8]}")

    return [
        System("memory", "baozi app.event (memory://)", "", True, named(urls["memory"]), True),
        System(
            "memory",
            "threading.Event",
            "in one process",
            True,
            lambda: ("object", threading.Event()),
        ),
        System(
            "memory",
            "multiprocessing.Event",
            "spawn context",
            False,
            lambda: ("object", CTX.Event()),
        ),
        System("sqlite", "baozi app.event (SQLite)", "WAL", False, named(urls["sqlite"]), True),
        System("redis", "baozi app.event (Redis)", "", False, named(urls["redis"]), True),
    ]


# -- 1. uncontended -----------------------------------------------------------------------------


def uncontended(system: System, n: int) -> float:
    acquire, release, close = open_lock(system.spec())
    try:
        for _ in range(min(n, 100)):  # warm up: connections, the store's schema, the renewer
            acquire()
            release()
        t0 = time.perf_counter()
        for _ in range(n):
            acquire()
            release()
        return n / (time.perf_counter() - t0)
    finally:
        close()


# -- 2. contended: K workers on one lock --------------------------------------------------------


def contend(spec: tuple[Any, ...], barrier: Any, seconds: float, results: Any) -> None:
    """One worker: hammer the lock for ``seconds`` after every worker is ready; report
    (count, start, end)."""
    acquire, release, close = open_lock(spec)
    acquire()
    release()
    barrier.wait()
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        acquire()
        release()
        n += 1
    results.put((n, t0, time.monotonic()))
    close()


def contended(system: System, k: int, seconds: float) -> tuple[float, float]:
    """Total acquire + release per second over K workers, and the least / most served ratio."""
    spec = system.spec()
    if system.threads:
        barrier: Any = threading.Barrier(k)
        results: Any = queue.Queue()
        workers: list[Any] = [
            threading.Thread(target=contend, args=(spec, barrier, seconds, results))
            for _ in range(k)
        ]
    else:
        barrier = CTX.Barrier(k)
        results = CTX.Queue()
        workers = [
            CTX.Process(target=contend, args=(spec, barrier, seconds, results)) for _ in range(k)
        ]
    for w in workers:
        w.start()
    got = [results.get(timeout=120) for _ in range(k)]
    for w in workers:
        w.join(60)
    counts = [g[0] for g in got]
    span = max(g[2] for g in got) - min(g[1] for g in got)
    return sum(counts) / span, min(counts) / max(max(counts), 1)


# -- 3. wake-up latency of a blocked waiter -----------------------------------------------------


def waiter(what: str, spec: tuple[Any, ...], conn: Any) -> None:
    """Block in acquire() (what="lock") or wait() (what="event") each time the holder asks, and
    send back when it returned."""
    if what == "lock":
        acquire, release, close = open_lock(spec)
    else:
        _, _, (acquire, release, close) = open_event(spec)
    conn.send("ready")
    while conn.recv() == "go":
        conn.send("blocking")
        acquire()
        got = time.monotonic()
        if release is not None:
            release()
        conn.send(got)
    close()


def wake_latency(system: System, what: str, trials: int) -> list[float]:
    """Milliseconds from just before the holder's release()/set() to the waiter's return."""
    spec = system.spec()
    if what == "lock":
        take, give, close = open_lock(spec)
    else:
        give, take, (_, _, close) = open_event(spec)  # set() lets waiters go, clear() holds them
    here, there = CTX.Pipe()
    if system.threads:
        w: Any = threading.Thread(target=waiter, args=(what, spec, there), daemon=True)
    else:
        w = CTX.Process(target=waiter, args=(what, spec, there), daemon=True)
    w.start()
    lat = []
    try:
        if not here.poll(60):
            raise RuntimeError(f"{system.name}: the waiter did not start")
        here.recv()
        rng = random.Random()
        for _ in range(trials):
            take()  # hold the lock (clear the event)
            here.send("go")
            here.recv()  # the waiter is about to block
            time.sleep(HOLD_MIN + rng.uniform(0, HOLD_JITTER))
            t = time.monotonic()
            give()  # release() / set()
            if not here.poll(30):
                raise RuntimeError(f"{system.name}: the waiter did not wake within 30 s")
            lat.append((here.recv() - t) * 1000)
        here.send("stop")
        w.join(30)
    finally:
        close()
    return lat


# -- report -------------------------------------------------------------------------------------


def redis_version(url: str) -> str:
    try:
        import redis

        info = redis.Redis.from_url(url).info("server")
        return f"Redis {info['redis_version']} on {urlsplit(url).netloc}"
    except Exception as exc:  # reported, not fatal: the table says what ran
        return f"Redis unknown ({exc})"


def machine(redis_url: str) -> str:
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
        f"{sqlite3.sqlite_version}, {redis_version(redis_url)}, temp dir {tempfile.gettempdir()}"
    )


def versions() -> str:
    out = []
    for dist in ("baozi", "redis", "hiredis", "filelock"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out.append(f"baozi source at commit {commit}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(out)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def ms(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


def report(
    args: argparse.Namespace,
    lock_systems: list[System],
    event_systems: list[System],
    unc: dict[str, list[float]],
    con: dict[str, list[tuple[float, float]]],
    lock_lat: dict[str, list[float]],
    event_lat: dict[str, list[float]],
    started: dt.datetime,
    load: tuple[float, float],
) -> str:
    def baozi_of(systems: list[System], store: str) -> System:
        return next(s for s in systems if s.store == store and s.baozi)

    def workers(s: System) -> str:
        return f"{args.k} threads" if s.threads else f"{args.k} processes"

    lines = [
        f"# Coordination benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine(args.redis)}.",
        f"Libraries: {versions()}.",
        f"Load average (1 min) at the start of the run {load[0]:.2f}, at the end {load[1]:.2f} "
        f"({os.cpu_count()} cores; anything else running on the machine shares them).",
        f"Command: `python bench/coord_bench.py --n {args.n} --n-mem {args.n_mem} --k {args.k} "
        f"--seconds {args.seconds:g} --trials {args.trials} --rounds {args.rounds}`; "
        f"{args.rounds} interleaved rounds (the order rotates each round), throughputs are medians "
        f"of the rounds, latencies pool every round's trials ({args.trials} per row).",
        "",
        "Lock throughput. Uncontended: one thread acquires and releases the lock "
        f"N times (N = {args.n_mem:,} for the memory rows, {args.n:,} for the others). Contended: "
        f"{args.k} workers loop acquire + release on one lock for {args.seconds:g} s; the total of "
        "their acquire + release pairs per second, and the least-served worker's count over the "
        "most-served one's (1.00 = fair). baozi on memory:// lives in one process, so its workers "
        "(and threading.RLock's) are threads; every other lock's are processes (spawn). "
        "\"baozi ÷ this\" is baozi's figure on the same store over the row's (above 1: baozi is "
        "faster).",
        "",
        "| store | lock | settings | uncontended acq+rel/s | baozi ÷ this | "
        f"contended acq+rel/s (K={args.k}) | workers | baozi ÷ this | least/most served |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in lock_systems:
        b = baozi_of(lock_systems, s.store)
        u, ub = statistics.median(unc[s.name]), statistics.median(unc[b.name])
        c = statistics.median(r[0] for r in con[s.name])
        cb = statistics.median(r[0] for r in con[b.name])
        fair = statistics.median(r[1] for r in con[s.name])
        name = f"**{s.name}**" if s.baozi else s.name
        lines.append(
            f"| {s.store} | {name} | {s.settings} | {u:,.0f} | {ratio(ub / u)} | {c:,.0f} | "
            f"{workers(s)} | {ratio(cb / c)} | {fair:.2f} |"
        )
    lines += [
        "",
        "Wake-up latency of a blocked waiter: the waiter (a thread for the memory:// and "
        "threading rows, else another process) blocks in `acquire()` / `wait()`; the holder keeps "
        f"it blocked {HOLD_MIN * 1000:.0f} ms + a random 0-{HOLD_JITTER * 1000:.0f} ms, then "
        "calls `release()` / `set()`. Latency = the waiter's return - just before that call "
        '(CLOCK_MONOTONIC, system-wide), in ms, nearest-rank percentiles. "this ÷ baozi" is the '
        "row's p50 over baozi's on the same store (above 1: baozi wakes sooner).",
        "",
        "| store | waiter blocked in | waiter is | p50 ms | p90 ms | p99 ms | max ms | "
        "p50: this ÷ baozi |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, systems, lat in (
        ("lock", lock_systems, lock_lat),
        ("event", event_systems, event_lat),
    ):
        for s in systems:
            b = baozi_of(systems, s.store)
            xs, p50b = lat[s.name], pct(lat[b.name], 0.5)
            call = "acquire()" if what == "lock" else "wait()"
            name = f"**{s.name}**" if s.baozi else s.name
            lines.append(
                f"| {s.store} | {name} `{call}` | {'a thread' if s.threads else 'a process'} | "
                f"{ms(pct(xs, 0.5))} | {ms(pct(xs, 0.9))} | {ms(pct(xs, 0.99))} | {ms(max(xs))} | "
                f"{ratio(pct(xs, 0.5) / p50b)} |"
            )
    lines += [
        "",
        "How each waiter learns of the change: baozi waits on its store's change signal (memory://: "
        "a condition in the process; SQLite: one thread per process watching the WAL file with "
        "inotify; Redis: one pub/sub subscription per process) and then tries again; "
        "redis-py's Lock and FileLock try, sleep their poll interval, and try again; "
        "threading's and multiprocessing's block in the kernel.",
        "",
        f"Raw: uncontended per round {fmt_rounds(unc)}; contended per round "
        f"{fmt_rounds({k: [r[0] for r in v] for k, v in con.items()})}.",
    ]
    return "\n".join(lines) + "\n"


def fmt_rounds(rows: dict[str, list[float]]) -> str:
    return "; ".join(f"{k}: " + ", ".join(f"{x:,.0f}" for x in v) for k, v in rows.items())


def update_readme(report_text: str, marker: str = "bench:coord") -> None:
    """Put the report (without its title and raw figures) between README's
    ``<!-- bench:coord -->`` markers."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text or end not in text:
        print(f"README.md has no {start} markers; left alone", file=sys.stderr)
        return
    body = report_text.split("\n", 2)[2].strip()
    body = "\n".join(ln for ln in body.splitlines() if not ln.startswith("Raw:")).strip()
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}")


# -- main ---------------------------------------------------------------------------------------


def rotate(items: list[Any], r: int) -> list[Any]:
    return items[r % len(items) :] + items[: r % len(items)]


def share(total: int, rounds: int, r: int) -> int:
    return total // rounds + (1 if r < total % rounds else 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="uncontended iterations, store locks")
    parser.add_argument(
        "--n-mem", type=int, default=50_000, help="uncontended iterations, memory-store rows"
    )
    parser.add_argument("--k", type=int, default=4, help="contending workers")
    parser.add_argument("--seconds", type=float, default=1.5, help="contended run length")
    parser.add_argument("--trials", type=int, default=50, help="wake-ups per row, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/15", help="the Redis server and database"
    )
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument(
        "--no-readme", dest="readme", action="store_false", help="leave README.md's table alone"
    )
    args = parser.parse_args()

    import redis

    started = dt.datetime.now(dt.UTC)
    prefix = f"coord-bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis)
    client.ping()
    with tempfile.TemporaryDirectory(prefix="coord-bench-") as tmp:
        urls = {
            "memory": f"memory://{prefix}",
            "sqlite": f"sqlite:///{tmp}/coord.db",
            "redis": f"{args.redis}?prefix={prefix}",
        }
        lock_systems = locks(urls, tmp, args.redis, prefix)
        event_systems = events(urls)
        unc: dict[str, list[float]] = {s.name: [] for s in lock_systems}
        con: dict[str, list[tuple[float, float]]] = {s.name: [] for s in lock_systems}
        lock_lat: dict[str, list[float]] = {s.name: [] for s in lock_systems}
        event_lat: dict[str, list[float]] = {s.name: [] for s in event_systems}
        t_start = time.monotonic()
        load_start = os.getloadavg()[0]
        try:
            for r in range(args.rounds):
                trials = share(args.trials, args.rounds, r)
                for s in rotate(lock_systems, r):
                    n = args.n_mem if s.store == "memory" else args.n
                    unc[s.name].append(uncontended(s, n))
                    con[s.name].append(contended(s, args.k, args.seconds))
                    if trials:
                        lock_lat[s.name] += wake_latency(s, "lock", trials)
                    print(
                        f"round {r + 1}: {s.name}: {unc[s.name][-1]:,.0f}/s alone, "
                        f"{con[s.name][-1][0]:,.0f}/s with {args.k}, wake p50 "
                        f"{pct(lock_lat[s.name], 0.5):.3f} ms",
                        flush=True,
                    )
                for s in rotate(event_systems, r):
                    if trials:
                        event_lat[s.name] += wake_latency(s, "event", trials)
                    print(
                        f"round {r + 1}: {s.name}: wake p50 {pct(event_lat[s.name], 0.5):.3f} ms",
                        flush=True,
                    )
        finally:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        load = (load_start, os.getloadavg()[0])
        print(f"measured in {time.monotonic() - t_start:.0f} s", flush=True)

    text = report(args, lock_systems, event_systems, unc, con, lock_lat, event_lat, started, load)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coord-latest.md").write_text(text)
    (out / f"coord-{started:%Y%m%d-%H%M}.md").write_text(text)
    if args.readme:
        update_readme(text)


if __name__ == "__main__":
    main()
