#!/usr/bin/env python
"""baozi.Deque's calls near an end, on a short and a long deque, on every store, beside
collections.deque and Redis's own list: the time of one call (client included) should not grow
with the deque's length, as each moves only the items nearer an end.

One run measures rotate(1), rotate(-3), insert(1, x), ``d[-2] = x``, ``del d[1]`` and
append + popleft on a deque of --short and of --long items, for:

- ``baozi.Deque`` on memory://, SQLite (a file in a temporary directory), Redis and PostgreSQL;
- ``collections.deque`` in this process (no store: the ideal);
- a Redis list driven with redis-py, the same steps in Redis's own commands: LMOVE for the
  rotations (three LMOVEs in one MULTI for rotate(-3)), LINDEX + LINSERT for the insert, LSET,
  LSET + LREM in one MULTI for the delete, RPUSH then LPOP.

Each round times every call once on the short deque and once on the long one (which goes first
alternates), so the two lengths see the same load; the figures are the median and p90 of --reps
rounds after 10 not counted. "long ÷ short" is the long deque's median over the short one's;
"÷ Redis list" is the row's median over the Redis list's at the same length.

Redis runs on keys under a prefix of the run's own (``bench-deque-<pid>``, database 15 by
default, ``BENCH_REDIS``), PostgreSQL in a schema of its own (``pgh_deque_<pid>``,
``BENCH_PG_DSN``); both are removed afterwards. It writes a markdown report with the machine
to bench/results/deque-YYYYMMDD-HHMM.md (--out) and prints it.

    python bench/deque_rotate.py [--short 10] [--long 100000] [--reps 300] [--only redis ...]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pg_env
import redis

import baozi

REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
PREFIX = f"bench-deque-{os.getpid()}"
HERE = Path(__file__).resolve().parent

CALLS = ("rotate(1)", "rotate(-3)", "insert(1, x)", "d[-2] = x", "del d[1]", "append+popleft")
Calls = dict[str, Callable[[], object]]
# A subject: given a length, a context that fills a deque of that length and yields its calls.
Subject = Callable[[int], contextlib.AbstractContextManager[Calls]]

ITEM = "x" * 16


# -- baozi.Deque ---------------------------------------------------------------------------------


def deque_calls(d: baozi.Deque | collections.deque[Any]) -> Calls:
    def setitem() -> None:
        d[-2] = ITEM

    def delitem() -> None:
        del d[1]

    def append_popleft() -> None:
        d.append(ITEM)
        d.popleft()

    return {
        "rotate(1)": lambda: d.rotate(1),
        "rotate(-3)": lambda: d.rotate(-3),
        "insert(1, x)": lambda: d.insert(1, ITEM),
        "d[-2] = x": setitem,
        "del d[1]": delitem,
        "append+popleft": append_popleft,
    }


FILLED: dict[str, float] = {}  # subject / length -> seconds to fill


@contextlib.contextmanager
def baozi_deque(label: str, url: str, length: int) -> Iterator[Calls]:
    with baozi.Deque(f"bench{length}", url=url) as d:
        d.clear()
        t = time.perf_counter()
        for i in range(0, length, 50_000):
            d.extend([ITEM] * min(50_000, length - i))
        FILLED[f"{label} / {length:,}"] = time.perf_counter() - t
        if len(d) != length:
            raise RuntimeError(f"{label}: filled {len(d)} items, not {length}")
        yield deque_calls(d)


@contextlib.contextmanager
def memory_store() -> Iterator[Subject]:
    yield lambda n: baozi_deque("memory", "memory://", n)


@contextlib.contextmanager
def sqlite_store() -> Iterator[Subject]:
    with tempfile.TemporaryDirectory(prefix="bench-deque-") as tmp:
        yield lambda n: baozi_deque("SQLite", f"sqlite:///{tmp}/deque.db", n)


def delete_prefix() -> None:
    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
    finally:
        client.close()


@contextlib.contextmanager
def redis_store() -> Iterator[Subject]:
    try:
        yield lambda n: baozi_deque("Redis", f"{REDIS}?prefix={PREFIX}", n)
    finally:
        delete_prefix()


@contextlib.contextmanager
def postgres_store() -> Iterator[Subject]:
    with pg_env.schema("deque") as name:
        yield lambda n: baozi_deque("PostgreSQL", pg_env.url(name), n)


# -- peers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def stdlib_peer() -> Iterator[Subject]:
    @contextlib.contextmanager
    def filled(length: int) -> Iterator[Calls]:
        yield deque_calls(collections.deque([ITEM] * length))

    yield filled


@contextlib.contextmanager
def redis_list_peer() -> Iterator[Subject]:
    client = redis.Redis.from_url(REDIS)
    counter = iter(range(10**15))

    def unique() -> str:  # every value distinct, so LINSERT's pivot is found where it is
        return f"v{next(counter):015d}"

    @contextlib.contextmanager
    def filled(length: int) -> Iterator[Calls]:
        key = f"{PREFIX}:list:{length}"
        client.delete(key)
        t = time.perf_counter()
        for i in range(0, length, 10_000):
            client.rpush(key, *(unique() for _ in range(min(10_000, length - i))))
        FILLED[f"Redis list / {length:,}"] = time.perf_counter() - t

        def rotate_left_3() -> None:
            pipe = client.pipeline(transaction=True)
            for _ in range(3):
                pipe.lmove(key, key, "LEFT", "RIGHT")
            pipe.execute()

        def insert() -> None:  # LINSERT takes a pivot value, not an index: read it first
            pivot = cast(str, client.lindex(key, 1))
            client.linsert(key, "BEFORE", pivot, unique())

        def delitem() -> None:  # no delete by index: mark the item, then remove the mark
            pipe = client.pipeline(transaction=True)
            pipe.lset(key, 1, "\x00gone")
            pipe.lrem(key, 1, "\x00gone")
            pipe.execute()

        def append_popleft() -> None:
            client.rpush(key, unique())
            client.lpop(key)

        yield {
            "rotate(1)": lambda: client.lmove(key, key, "RIGHT", "LEFT"),
            "rotate(-3)": rotate_left_3,
            "insert(1, x)": insert,
            "d[-2] = x": lambda: client.lset(key, -2, unique()),
            "del d[1]": delitem,
            "append+popleft": append_popleft,
        }
        client.delete(key)

    try:
        yield filled
    finally:
        client.close()
        delete_prefix()


SUBJECTS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager[Subject]]]] = {
    "memory": ("baozi.Deque, memory://", memory_store),
    "sqlite": ("baozi.Deque, SQLite", sqlite_store),
    "redis": ("baozi.Deque, Redis", redis_store),
    "postgres": ("baozi.Deque, PostgreSQL", postgres_store),
    "stdlib": ("collections.deque", stdlib_peer),
    "redis-list": ("Redis list (redis-py)", redis_list_peer),
}
NATIVE = "redis-list"


# -- timing --------------------------------------------------------------------------------------

Figures = dict[str, tuple[float, float]]  # call -> (median, p90) in µs


def measure(subject: Subject, short: int, long: int, reps: int) -> tuple[Figures, Figures]:
    """Every call on both deques, round after round; median and p90 per call, in µs."""
    with subject(short) as s_calls, subject(long) as l_calls:
        times: tuple[dict[str, list[float]], ...] = ({c: [] for c in CALLS}, {c: [] for c in CALLS})
        pairs = ((s_calls, times[0]), (l_calls, times[1]))
        gc.collect()
        for rnd in range(10 + reps):
            for calls, out in pairs if rnd % 2 else pairs[::-1]:
                for name in CALLS:
                    call = calls[name]
                    t = time.perf_counter()
                    call()
                    elapsed = time.perf_counter() - t
                    if rnd >= 10:
                        out[name].append(elapsed * 1e6)
    return summarise(times[0]), summarise(times[1])


def summarise(times: dict[str, list[float]]) -> Figures:
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = (statistics.median(values), values[min(len(values) - 1, len(values) * 9 // 10)])
    return out


# -- report --------------------------------------------------------------------------------------


def num(us: float) -> str:
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def ratio(x: float) -> str:
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def machine() -> str:
    cpu = pg_env._cpu_model()
    try:
        client = redis.Redis.from_url(REDIS)
        info = cast(dict[str, Any], client.info("server"))
        redis_server = f"redis-server {info['redis_version']}"
        client.close()
    except Exception as exc:  # reported, not fatal
        redis_server = f"redis-server unknown ({exc})"
    try:
        with pg_env.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = f"PostgreSQL {row[0] if row else 'unknown'}"
    except Exception as exc:
        postgres = f"PostgreSQL unknown ({exc})"
    return (
        f"{os.cpu_count()} cores ({cpu}), {pg_env._memory_gib():.0f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {redis_server} and {postgres} on this machine, redis-py "
        f"{redis.__version__}. baozi at commit {pg_env.revision()}."
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def report(
    args: argparse.Namespace,
    head: str,
    load_start: str,
    started: str,
    results: dict[str, tuple[Figures, Figures]],
    seconds: float,
) -> str:
    native = results.get(NATIVE)
    lines = [
        f"# Deques: calls near an end, {args.short:,} and {args.long:,} items, {started} UTC",
        "",
        f"Machine: {head}",
        f"Load average (1, 5, 15 min) at the start: {load_start}; at the end: {load()} "
        "(2 cores: anything else running shares them).",
        "",
        f"Command: `python bench/{' '.join([Path(__file__).name, *sys.argv[1:]])}` "
        f"({seconds:.0f} s).",
        "",
        f"Time of one call, client included, in µs: median / p90 of {args.reps} rounds after 10 "
        "not counted. Each round times every call once on the short deque and once on the long "
        "one (which goes first alternates), one after another in the order of the table. "
        "Items are 16-character strings (baozi.Deque stores them as JSON). insert(1, x) and "
        "del d[1] alternate, so the lengths stay put. append+popleft is two calls. "
        "`long ÷ short` is the long deque's median over the short one's; `÷ Redis list` is the "
        "row's median over the Redis list's, same call and length.",
        "",
        "The Redis list does each call in Redis's own commands through redis-py: rotate(1) is one "
        "LMOVE (RIGHT to LEFT, as RPOPLPUSH); rotate(-3) three LMOVEs in one MULTI; insert(1, x) "
        "LINDEX 1 for the pivot, then LINSERT BEFORE it (two round trips; LINSERT takes a value, "
        "not an index); `d[-2] = x` LSET; `del d[1]` LSET 1 to a marker and LREM the marker in "
        "one MULTI (Redis has no delete by index); append+popleft RPUSH then LPOP. "
        "collections.deque runs in this process with no store (its figures are mostly the "
        "timer's own cost).",
        "",
        f"| deque | call | {args.short:,} items µs | {args.long:,} items µs | long ÷ short "
        f"| ÷ Redis list, {args.short:,} / {args.long:,} |",
        "|---|---|---|---|---|---|",
    ]
    for key, (short, long) in results.items():
        label = SUBJECTS[key][0]
        for call in CALLS:
            (sm, sp), (lm, lp) = short[call], long[call]
            vs = "—"
            if native is not None and key != NATIVE:
                vs = f"{ratio(sm / native[0][call][0])} / {ratio(lm / native[1][call][0])}"
            lines.append(
                f"| {label} | {call} | {num(sm)} / {num(sp)} | {num(lm)} / {num(lp)} "
                f"| {ratio(lm / sm)} | {vs} |"
            )
    lines += [
        "",
        "Filling each deque (not timed above): "
        + "; ".join(f"{k} in {v:.2f} s" for k, v in FILLED.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--only", nargs="+", choices=list(SUBJECTS), default=list(SUBJECTS))
    parser.add_argument(
        "--out",
        help="the report's path (default bench/results/deque-YYYYMMDD-HHMM.md; - for none)",
    )
    args = parser.parse_args()
    if args.short < 4 or args.long < 4:
        parser.error("--short and --long must be at least 4 (the calls reach index -2 and 1)")
    load_start, head = load(), machine()
    now = datetime.now(UTC)
    stamp, started = now.strftime("%Y%m%d-%H%M"), now.strftime("%Y-%m-%d %H:%M")
    t = time.perf_counter()
    results: dict[str, tuple[Figures, Figures]] = {}
    for key in SUBJECTS:
        if key in args.only:
            with SUBJECTS[key][1]() as subject:
                results[key] = measure(subject, args.short, args.long, args.reps)
            print(f"{SUBJECTS[key][0]}: done", file=sys.stderr)
    text = report(args, head, load_start, started, results, time.perf_counter() - t)
    print(text)
    if args.out != "-":
        out = Path(args.out) if args.out else HERE / "results" / f"deque-{stamp}.md"
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
