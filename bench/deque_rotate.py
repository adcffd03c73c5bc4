#!/usr/bin/env python
"""rotate(1) and a splice near an end on a short and a long queue, on Redis and PostgreSQL: the
time of one call (client included, median and p90 of --reps after a warm-up) should not grow
with the queue's length, as each moves only the items nearer an end.

Each store is opened on a key prefix / schema of the run's own (``bench-deque-<pid>`` /
``pgh_deque_<pid>``), removed afterwards. It prints a markdown table.

    python bench/deque_rotate.py [--long 100000] [--reps 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator

import pg_env

from baozi.backends import open_store
from baozi.backends.base import Store

REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")


@contextlib.contextmanager
def redis_store() -> Iterator[Store]:
    import redis

    prefix = f"bench-deque-{os.getpid()}"
    store = open_store(f"{REDIS}?prefix={prefix}")
    try:
        yield store
    finally:
        store.close()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()


@contextlib.contextmanager
def postgres_store() -> Iterator[Store]:
    with pg_env.schema("deque") as name:
        store = open_store(f"{pg_env.DSN}?schema={name}")
        try:
            yield store
        finally:
            store.close()


def timed(call: Callable[[], object], reps: int) -> tuple[float, float]:
    """Median and p90 of ``reps`` calls, in ms, after 10 not counted."""
    for _ in range(10):
        call()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def measure(store: Store, length: int, reps: int) -> dict[str, tuple[float, float]]:
    queue = f"deque:bench{length}"
    for i in range(0, length, 50_000):
        store.push(queue, [b"x" * 16] * min(50_000, length - i))

    def splice_near_front() -> None:  # replace the item at index 2
        store.splice(queue, 2, 1, [b"y" * 16])

    return {
        "rotate(1)": timed(lambda: store.rotate(queue, 1), reps),
        "rotate(-3)": timed(lambda: store.rotate(queue, -3), reps),
        "splice(2, 1, [x])": timed(splice_near_front, reps),
        "peek(0)": timed(lambda: store.peek(queue, 0), reps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    print(f"| store | call | {args.short:,} items: median / p90 ms | {args.long:,} items |")
    print("|---|---|---|---|")
    for name, opener in (("Redis", redis_store), ("PostgreSQL", postgres_store)):
        with opener() as store:
            short = measure(store, args.short, args.reps)
            long = measure(store, args.long, args.reps)
        for call, (m, p) in short.items():
            lm, lp = long[call]
            print(f"| {name} | {call} | {m:.3f} / {p:.3f} | {lm:.3f} / {lp:.3f} |")


if __name__ == "__main__":
    main()
