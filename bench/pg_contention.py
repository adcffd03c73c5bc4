#!/usr/bin/env python
"""No contended row per job: concurrent producers and workers on one queue of the PostgreSQL
store, and how often their backends wait on a lock.

On the server at BENCH_PG_DSN (default postgresql://root@127.0.0.1:5432/test), in a schema of
its own (``pgh_contention_<pid>``, dropped afterwards), for 1, 2 and 4 processes at once:

* enqueue: each process calls ``store.enqueue_one`` (what ``task.delay()`` does: one statement,
  one commit per job) on one queue for --seconds;
* settle: each process takes one job (``store.reserve``, n=1) and settles it as succeeded
  (``store.settle``: the row moves to ``done`` and the task's totals count it), one job per
  call, on one queue filled beforehand;
* control: each process runs one statement per job that inserts a row and adds 1 to a single
  counter row (``UPDATE hot SET n = n + 1``): the design the store avoids, so the same sampling
  shows what a contended row looks like.

Meanwhile another connection samples ``pg_stat_activity`` every --every seconds for the
measured backends (their ``application_name``): how many were active, and how many of those
waited on a heavyweight lock (``wait_event_type = 'Lock'``: ``transactionid`` and ``tuple`` are
waits for another transaction's row; ``advisory``, ``relation``, ...) or on something else. The
store keeps its counters per connection (``ready`` and ``totals`` rows keyed by the backend), so
its runs should show no row waits at any number of processes.

It writes bench/results/pg-contention-YYYYMMDD-HHMM.md (--out DIR elsewhere).

    python bench/pg_contention.py [--seconds 5] [--procs 1 2 4]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pg_env

from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome

PAYLOAD = b'[["x"], {}]'
CTX = mp.get_context("fork")


def run_enqueue(url: str, go: Any, stop: Any, out: Any, i: int) -> None:
    store = open_store(url)
    for _ in range(50):  # connections open, statements prepared, the queue's id known
        store.enqueue_one("q", "bench.t", PAYLOAD)
    go.wait()
    n = 0
    t0 = time.perf_counter()
    while not stop.is_set():
        store.enqueue_one("q", "bench.t", PAYLOAD)
        n += 1
    out.put((i, n, time.perf_counter() - t0))
    store.close()


def run_settle(url: str, go: Any, stop: Any, out: Any, i: int) -> None:
    store = open_store(url)
    owner = f"w{i}-{os.getpid()}"
    for item in store.reserve("warm", owner, 30.0, n=20):
        store.settle("warm", owner, [Outcome(item.id, "succeeded", b"1")], 60.0)
    go.wait()
    n = empty = 0
    t0 = time.perf_counter()
    while not stop.is_set():
        items = store.reserve("q", owner, 30.0, n=1)
        if not items:
            empty += 1
            continue
        n += store.settle("q", owner, [Outcome(items[0].id, "succeeded", b"1")], 60.0)
    out.put((i, n, time.perf_counter() - t0))
    store.close()


def run_control(url: str, go: Any, stop: Any, out: Any, i: int) -> None:
    dsn, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    schema = params.pop("schema")
    conn = pg_env.connect(dsn, **params)
    sql = (
        f'WITH c AS (UPDATE "{schema}".hot SET n = n + 1 WHERE id = 1 RETURNING n) '
        f'INSERT INTO "{schema}".hot_jobs SELECT n, %s FROM c'
    )
    for _ in range(50):
        conn.execute(sql, (PAYLOAD,))
    go.wait()
    n = 0
    t0 = time.perf_counter()
    while not stop.is_set():
        conn.execute(sql, (PAYLOAD,))
        n += 1
    out.put((i, n, time.perf_counter() - t0))
    conn.close()


class Sampler:
    """Samples the measured backends' wait events on a connection of its own, in a thread."""

    def __init__(self, app: str, every: float) -> None:
        self.app, self.every = app, every
        self.samples = 0
        self.active = 0
        self.waits: collections.Counter[str] = collections.Counter()
        self.waiting: collections.Counter[str] = collections.Counter()  # statements, by lock wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with pg_env.connect() as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT a.wait_event_type, a.wait_event, "
                    "left(regexp_replace(a.query, '\\s+', ' ', 'g'), 50) || ' <- ' || "
                    "coalesce((SELECT left(regexp_replace(b.query, '\\s+', ' ', 'g'), 50) "
                    "FROM pg_stat_activity b WHERE a.wait_event_type = 'Lock' "
                    "AND b.pid = (pg_blocking_pids(a.pid))[1] LIMIT 1), '?') "
                    "FROM pg_stat_activity a WHERE a.application_name = %s "
                    "AND a.state = 'active'",
                    (self.app,),
                ).fetchall()
                self.samples += 1
                self.active += len(rows)
                for kind, event, query in rows:
                    if kind is not None:
                        self.waits[f"{kind}:{event}"] += 1
                    if kind == "Lock":
                        self.waiting[f"{event}: {query}"] += 1
                time.sleep(self.every)

    def lock_waits(self, *events: str) -> int:
        return sum(
            n
            for k, n in self.waits.items()
            if k.split(":")[0] == "Lock" and (not events or k.split(":")[1] in events)
        )


def measure(kind: str, url: str, app: str, procs: int, seconds: float, every: float) -> dict:
    target = {"enqueue": run_enqueue, "settle": run_settle, "control": run_control}[kind]
    go, stop, out = CTX.Event(), CTX.Event(), CTX.Queue()
    children = [CTX.Process(target=target, args=(url, go, stop, out, i)) for i in range(procs)]
    for c in children:
        c.start()
    time.sleep(1.5)  # every child is warm and waits for go
    with Sampler(app, every) as sampler:
        go.set()
        time.sleep(seconds)
        stop.set()
        results = [out.get(timeout=60) for _ in children]
    for c in children:
        c.join(30)
    rates = [n / s for _, n, s in sorted(results)]
    return {
        "kind": kind,
        "procs": procs,
        "total": sum(rates),
        "each": rates,
        "samples": sampler.samples,
        "active": sampler.active,
        "waits": dict(sampler.waits),
        "row_waits": sampler.lock_waits("transactionid", "tuple"),
        "lock_waits": sampler.lock_waits(),
        "waiting": dict(sampler.waiting),
    }


def prepare(url: str, schema: str, kind: str, need: int) -> None:
    store = open_store(url)
    if kind == "settle":
        store.clear("q")
        for _ in range(0, need, 10_000):
            store.enqueue("q", [NewJob("bench.t", PAYLOAD)] * 10_000)
        store.enqueue("warm", [NewJob("bench.t", PAYLOAD)] * 200)
    elif kind == "control":
        with pg_env.connect() as conn:
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".hot (id int PRIMARY KEY, n bigint)'
            )
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".hot_jobs (n bigint, payload bytea)'
            )
            conn.execute(f'INSERT INTO "{schema}".hot VALUES (1, 0) ON CONFLICT DO NOTHING')
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--every", type=float, default=0.005, help="sampling interval, s")
    ap.add_argument(
        "--settle-fill", type=int, default=60_000, help="jobs queued before each settle run"
    )
    ap.add_argument("--out", type=Path, default=pg_env.HERE / "results")
    args = ap.parse_args()
    started = dt.datetime.now()
    rows = []
    with pg_env.schema("contention") as schema:
        app = schema  # the application_name of the measured connections
        url = pg_env.url(schema, application_name=app)
        open_store(url).close()  # the schema and tables, made once
        for kind in ("enqueue", "settle", "control"):
            for procs in args.procs:
                prepare(url, schema, kind, args.settle_fill)
                row = measure(kind, url, app, procs, args.seconds, args.every)
                rows.append(row)
                print(
                    f"{kind} x{procs}: {row['total']:,.0f}/s, lock waits {row['lock_waits']} "
                    f"(row {row['row_waits']}) in {row['active']} active samples; "
                    f"{row['waits']} {row['waiting']}",
                    flush=True,
                )

    lines = [
        f"# No contended row per job: PostgreSQL store, {started:%Y-%m-%d %H:%M}",
        "",
        pg_env.machine(),
        "",
        f"Command: `{' '.join(['python', f'bench/{Path(__file__).name}', *sys.argv[1:]])}`",
        "",
        f"1, 2 and 4 processes at once on one queue, {args.seconds:g} s each (after a warm-up); "
        f"`pg_stat_activity` sampled every {args.every * 1000:g} ms for the measured backends. "
        "enqueue: `store.enqueue_one` (what `task.delay()` does), one job per statement and "
        "commit. settle: `store.reserve(n=1)` then `store.settle` of that one job as succeeded "
        f"(the queue filled with {args.settle_fill:,} jobs before each run). control: one statement "
        "per job that inserts a row and adds 1 to one counter row, the design the store avoids.",
        "",
        '"active" is the number of (sample, backend) pairs in which a measured backend ran a '
        'statement; "row lock waits" those in which it waited on a heavyweight lock for another '
        'transaction\'s row (`Lock:transactionid`, `Lock:tuple`), "all lock waits" any `Lock` '
        "(advisory and relation locks too). The other waits are listed as sampled (LWLock, IO, "
        "Client ...): on 2 cores, more processes mostly wait for the CPU and the WAL.",
        "",
        "| run | processes | jobs/s (total) | jobs/s per process | active samples | row lock waits | share | all lock waits | other waits sampled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = r["row_waits"] / r["active"] if r["active"] else 0.0
        other = ", ".join(
            f"{k} {n}"
            for k, n in sorted(r["waits"].items(), key=lambda kv: -kv[1])
            if not k.startswith("Lock:")
        )
        lines.append(
            f"| {r['kind']} | {r['procs']} | {r['total']:,.0f} | "
            f"{' / '.join(f'{x:,.0f}' for x in r['each'])} | {r['active']:,} | "
            f"{r['row_waits']:,} | {share:.1%} | {r['lock_waits']:,} | {other or '-'} |"
        )
    lines += [
        "",
        "Where the lock waits were (statement waiting <- the statement of the backend "
        "blocking it, when it was still running at the sample; `?` when it had finished "
        "and only its transaction's end was awaited):",
        "",
    ]
    for r in rows:
        for what, n in sorted(r["waiting"].items(), key=lambda kv: -kv[1])[:3]:
            lines.append(f"- {r['kind']} x{r['procs']}: {n} x `{what}`")
    lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"pg-contention-{started:%Y%m%d-%H%M}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
