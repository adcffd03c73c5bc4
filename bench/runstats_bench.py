#!/usr/bin/env python
"""What counting run statistics costs a worker: the worker hook alone, and a whole drain with it
and without it.

  * hook: ``RunStats.ran`` called N times in a loop, as the worker's loop calls it for each run it
    settles (ns per call);
  * drain: in one process, alternately, a burst worker (thread pool, 8 slots) drains N no-op jobs
    with the statistics counted ("on") and with ``RunStats.ran`` replaced by a no-op ("off");
    the order alternates each round, so drift over the run biases neither. CPU per job (every
    thread of the process) and jobs per second, medians over the rounds.

    python bench/runstats_bench.py [--store memory|redis] [--n 10000] [--rounds 10]
                                   [--redis redis://127.0.0.1:6379/13]

On Redis each drain works under a key prefix of its own, removed afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any

from baozi import App, Worker
from baozi._runstats import RunStats
from baozi.backends import open_store
from baozi.backends.base import Item


def noop() -> None:
    return None


def hook(n: int) -> float:
    """ns per ``RunStats.ran`` call."""
    stats = RunStats(open_store(f"memory://{uuid.uuid4().hex}"), "bench")
    items = [Item(str(i), b"", 0, 1, "t", 0) for i in range(1000)]
    started = time.perf_counter()
    for i in range(n):
        stats.ran("default", items[i % 1000], "succeeded", time.monotonic(), 0.0005, None)
    return (time.perf_counter() - started) / n * 1e9


def drain(store: str, redis_url: str, n: int) -> tuple[float, float]:
    """CPU us per job and jobs per second of one burst worker draining ``n`` no-op jobs."""
    prefix = f"runstats-bench-{uuid.uuid4().hex[:8]}"
    url = f"memory://{prefix}" if store == "memory" else f"{redis_url}?prefix={prefix}"
    app = App(url)
    task = app.task(name="noop")(noop)
    for _ in range(0, n, 1000):
        task.map([()] * 1000)
    worker = Worker(app, concurrency=8)
    cpu, wall = time.process_time(), time.perf_counter()
    worker.run(burst=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if store == "redis":
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()
    return cpu / n * 1e6, n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    print(f"hook: RunStats.ran {hook(200_000):.0f} ns per call")
    real = RunStats.ran
    off: Any = lambda *a, **k: None  # noqa: E731
    found: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for r in range(args.rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            RunStats.ran = real if mode == "on" else off  # type: ignore[method-assign]
            found[mode].append(drain(args.store, args.redis, args.n))
    RunStats.ran = real  # type: ignore[method-assign]
    for mode, runs in found.items():
        cpu = statistics.median(c for c, _ in runs)
        rate = statistics.median(j for _, j in runs)
        print(f"drain {args.store}, statistics {mode}: {cpu:.1f} us CPU per job, {rate:.0f} jobs/s")


if __name__ == "__main__":
    main()
