#!/usr/bin/env python
"""Job queues on PostgreSQL: baozi's PostgreSQL store beside procrastinate and pgqueuer.

The jobs benchmark's method (bench/jobs_bench.py, bench/jobs/measure.py) on one PostgreSQL server
(BENCH_PG_DSN, default postgresql://root@127.0.0.1:5432/test), every configuration of
bench/jobs/systems_pg.py interleaved over several rounds, each measurement in a fresh process
with a schema of its own (created before it, dropped with everything in it afterwards):
  * enqueue: one producer enqueues N no-op jobs, one API call per job, no worker running;
  * drain: the worker is then launched and timed to the N-th completion ("steady" from the first
    to the last completion, "incl. worker start" from the launch);
  * latency: an idle worker, 200 jobs enqueued 10 ms apart, each reporting its start time minus
    the wall time just before its enqueue call;
  * CPU per job: the worker's processes (psutil), the producer (process_time) and the server:
    the backends serving the measured processes' connections, and the whole cluster (every
    postgres process, background ones and reaped backends included), sampled before and after
    each phase (bench/jobs/pg.py).
Completion is counted by one Redis INCR in every job body, as in the Redis and SQLite runs, so
the figures compare with theirs; Redis database 14 is flushed around every measurement.
Each round also runs:
  * paired enqueue: baozi-pg and the peers' configs whose enqueue differs (systems_pg.PAIRED)
    enqueue N jobs one call each (after a 200-job warm-up), back to back, --pairs times, the
    order reversed every other time: the single-call target is judged on the ratio in each pair;
  * batch: --batch-n jobs through each system's bulk call (baozi's ``map``, procrastinate's
    ``batch_defer``, pgqueuer's list ``enqueue``), one call per --batch-chunk jobs, no worker;
    for baozi, then --batch-n more with one ``delay()`` each in one ``app.batch()`` block.
It writes bench/results/jobs-postgres-YYYYMMDD-HHMM.md (--out DIR elsewhere).

    python bench/pg_bench.py [--n 10000] [--rounds 3] [--only baozi-pg pgqueuer/default]
    python bench/pg_bench.py --n 2000 --rounds 1 --pairs 1 --batch-n 10000 --out /tmp/pg-smoke

The peers come with the ``bench`` extra (procrastinate, pgqueuer[asyncpg], psycopg[binary]).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "jobs"))

import jobs_bench  # noqa: E402  (puts bench/jobs on sys.path too)
import pg  # noqa: E402
import report_pg  # noqa: E402
import systems  # noqa: E402
import systems_pg  # noqa: E402

ROTATE = 3  # the config list's start moves by this much each round
ROOM = 30  # free server connections wanted before each measurement (the largest config uses ~26)


def measure(config: systems.Config, mode: str, options: list[str]) -> dict:
    """One measurement (jobs_bench.measure), once the server has room for its connections."""
    waited = pg.wait_for_room(ROOM)
    result = jobs_bench.measure(sys.executable, mode, config, options)
    return {**result, "waited_s": round(waited, 1)} if waited >= 1 else result


def select(only: list[str] | None) -> list[systems.Config]:
    if not only:
        return list(systems_pg.CONFIGS)
    chosen = [c for c in systems_pg.CONFIGS if c.system in only or c.key in only]
    unknown = set(only) - {c.system for c in chosen} - {c.key for c in chosen}
    if unknown:
        known = ", ".join(c.key for c in systems_pg.CONFIGS)
        raise SystemExit(f"unknown --only name(s) {sorted(unknown)}; known: {known}")
    return chosen


def paired(configs: list[systems.Config]) -> list[systems.Config]:
    """The selected configs of systems_pg.PAIRED, baozi-pg first; none without baozi-pg and a
    peer among them."""
    chosen = [c for c in configs if c.key in systems_pg.PAIRED]
    if not any(c.system == "baozi-pg" for c in chosen) or len(chosen) < 2:
        return []
    return sorted(chosen, key=lambda c: c.system != "baozi-pg")


def batch_configs(configs: list[systems.Config]) -> list[systems.Config]:
    """Those whose bulk call differs: the PAIRED ones, else each system's first config."""
    chosen = {c.key: c for c in configs if c.key in systems_pg.PAIRED}
    for system in systems_pg.SYSTEMS:
        if not any(c.system == system for c in chosen.values()):
            first = next((c for c in configs if c.system == system), None)
            if first is not None:
                chosen[first.key] = first
    return list(chosen.values())


def run_rounds(args: argparse.Namespace, configs: list[systems.Config], log) -> list[dict]:
    rows: list[dict] = []
    for rnd in range(args.rounds):
        tag = f"{rnd + 1}/{args.rounds}"
        shift = (rnd * ROTATE) % len(configs)
        for config in configs[shift:] + configs[:shift]:
            for mode in ("drain", "latency"):
                options = ["--n", str(args.n)] if mode == "drain" else []
                options += ["--jobs", str(args.latency_jobs)] if mode == "latency" else []
                result = measure(config, mode, options)
                rows.append({"key": config.key, "round": rnd + 1, "mode": mode, **result})
                log(rows[-1], config.key, mode, tag)
        members = paired(configs)
        for rep in range(args.pairs if members else 0):
            flip = (rnd * args.pairs + rep) % 2  # the order reversed every other time
            for config in members[::-1] if flip else members:
                result = measure(config, "enqueue", ["--n", str(args.n)])
                row = {"key": config.key, "round": rnd + 1, "pair": rep, "pair_group": "pg"}
                rows.append({**row, "mode": "enqueue", **result})
                log(rows[-1], config.key, "enqueue", tag)
        if args.batch:
            for config in batch_configs(configs):
                options = ["--n", str(args.batch_n), "--chunk", str(args.batch_chunk)]
                result = measure(config, "batch", options)
                rows.append({"key": config.key, "round": rnd + 1, "mode": "batch", **result})
                log(rows[-1], config.key, "batch", tag)
    return rows


def progress(row: dict) -> str:
    text = jobs_bench.progress(row)
    if row.get("waited_s"):
        text += f" (first waited {row['waited_s']:.0f} s for free server connections)"
    if row.get("ok"):
        phase = {"drain": "steady", "enqueue": "enqueue", "batch": "batch"}.get(row["mode"])
        ours = row.get(f"pg_{phase}_ours_us")
        if ours is not None:
            text += (
                f"; PostgreSQL CPU {ours:,.0f} us/job ours, "
                f"{row[f'pg_{phase}_cluster_us']:,.0f} cluster"
            )
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="jobs per drain / enqueue measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--latency-jobs", type=int, default=200, help="jobs per latency measurement")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="systems or SYSTEM/CONFIG to run")
    ap.add_argument("--out", default=str(HERE / "results"), help="directory for the report")
    ap.add_argument("--pairs", type=int, default=3, help="paired enqueue runs per round (0: skip)")
    ap.add_argument("--batch-n", type=int, default=100000, help="jobs per batch measurement")
    ap.add_argument("--batch-chunk", type=int, default=1000, help="jobs per bulk call (batch)")
    ap.add_argument("--no-batch", dest="batch", action="store_false", help="skip the batch step")
    args = ap.parse_args()
    configs = select(args.only)
    command = "python bench/pg_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    left = pg.drop_leftovers()
    if left:
        print(f"dropped schemas left by an earlier run: {', '.join(left)}", flush=True)
    started = dt.datetime.now(dt.UTC)
    env_info = report_pg.environment()
    print(env_info["machine"], env_info["postgres"], sep="\n", flush=True)
    t_start = time.time()

    def log(row: dict, what: str, mode: str, rnd: str) -> None:
        print(
            f"[{time.time() - t_start:6.0f} s] round {rnd} {what:30} {mode:7} {progress(row)}",
            flush=True,
        )

    try:
        rows = run_rounds(args, configs, log)
    finally:
        jobs_bench.flush()
        left = pg.drop_leftovers()
        if left:
            print(f"dropped schemas left behind: {', '.join(left)}", flush=True)
    finished = dt.datetime.now(dt.UTC)
    env_info["revision_end"] = report_pg.source_revision()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    env_info["machine"] += (
        f" Load average at the end {load} (other work on the machine shows here)."
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"jobs-postgres-{started:%Y%m%d-%H%M}.md"
    text = report_pg.markdown(configs, rows, args, command, env_info, started, finished)
    path.write_text(text)
    print(f"\nwrote {path}\n")
    print(report_pg.ratios_text(configs, rows))


if __name__ == "__main__":
    main()
