"""The jobs benchmark's report: the machine lines, the bar chart and the whole Markdown text, put
together from the tables (report_tables), the ratios (report_sqlite, report_redis) and the paired
enqueue (report_pairs)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import common
import psutil
import redis
import systems
from report_pairs import enqueue_pairs, paired_table
from report_redis import redis_ratios_text
from report_sqlite import sqlite_ratios_text
from report_stats import OURS, mode_rows, values
from report_tables import (
    batch_table,
    config_table,
    cpu_table,
    enqueue_table,
    position_table,
    redis_benchmark_table,
    results_table,
    runs_table,
    side_runs_table,
)

# -- the machine -----------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _filesystem(path: str) -> str:
    """The type of the filesystem holding ``path`` (the longest matching mount point)."""
    best = None
    for part in psutil.disk_partitions(all=True):
        if path.startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return best.fstype if best else "?"


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def environment(celery_python: str) -> dict[str, str]:
    """The machine and library lines of the report."""
    info = redis.Redis.from_url(common.REDIS_URL).info("server")
    cfg = redis.Redis.from_url(common.REDIS_URL).config_get("*")
    tmp = tempfile.gettempdir()
    machine = (
        f"{os.cpu_count()} cores ({_cpu_model()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"Redis {info['redis_version']} on 127.0.0.1:6379 database 14 "
        f'(save "{cfg.get("save", "?")}", appendonly {cfg.get("appendonly", "?")}); '
        f"SQLite files in {tmp} ({_filesystem(tmp)})."
    )
    try:
        celery_versions = subprocess.run(
            [
                celery_python,
                "-c",
                "import celery, kombu, redis; "
                "print(celery.__version__, kombu.__version__, redis.__version__)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        celery_line = (
            f"celery {celery_versions[0]} (kombu {celery_versions[1]}, "
            f"redis-py {celery_versions[2]}, interpreter `{celery_python}`)"
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        celery_line = f"celery: could not be imported by `{celery_python}`"
    libraries = (
        f"baozi {_version('baozi')}, {celery_line}, rq {_version('rq')}, "
        f"dramatiq {_version('dramatiq')}, huey {_version('huey')}, arq {_version('arq')}, "
        f"saq {_version('saq')}; everything but celery on redis-py {_version('redis')} + "
        f"hiredis {_version('hiredis')}; {_redis_benchmark_version()}."
    )
    return {
        "machine": "Machine: " + machine,
        "libraries": "Libraries: " + libraries,
        "revision": source_revision(),
    }


def _redis_benchmark_version() -> str:
    try:
        out = subprocess.run(
            ["redis-benchmark", "--version"], capture_output=True, text=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "redis-benchmark not found"
    return f"redis-benchmark {out[1]}" if len(out) > 1 else "redis-benchmark (version unknown)"


def source_revision() -> str:
    """The baozi checkout measured (the package is installed editable): commit, and whether
    src/ differs from it. Read-only git calls; optional locks off so nothing is written."""
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--", "src"],
            env=env,
            timeout=30,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


# -- ratios and chart ------------------------------------------------------------------------------


def ratios_text(configs: list[systems.Config], rows: list[dict]) -> str:
    """The ratios sections: baozi's and baozi-redis's best configs against their targets."""
    parts = []
    if any(c.system == "baozi" for c in configs):
        parts.append(sqlite_ratios_text(configs, rows))
    if any(c.system == "baozi-redis" for c in configs):
        parts.append(redis_ratios_text(configs, rows))
    return "\n".join(parts) if parts else "## Ratios\n\nNeither baozi system selected.\n"


def chart(configs: list[systems.Config], rows: list[dict], n: int, rounds: int, path: Path) -> None:
    """Bar chart of median steady drain per config, with min–max error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {
        "baozi": "#c0392b",
        "baozi-redis": "#e67e22",
        "embedded": "#27ae60",
        "redis": "#2c7fb8",
    }

    def family(c: systems.Config) -> str:
        if c.system in OURS:
            return c.system
        return "embedded" if c.system == "huey-sqlite" else "redis"

    labels, meds, lo, hi, cols, hatches = [], [], [], [], [], []
    for c in configs:
        vals = values(rows, c.key, "drain", "steady_per_s")
        if not vals:
            continue
        m = statistics.median(vals)
        labels.append(f"{c.system}\n{c.name}")
        meds.append(m)
        lo.append(m - min(vals))
        hi.append(max(vals) - m)
        cols.append(colours[family(c)])
        hatches.append("//" if c.extra else "")
    fig, ax = plt.subplots(figsize=(max(8, 1.05 * len(labels) + 2), 5.5), dpi=110)
    if labels:
        xs = range(len(labels))
        bars = ax.bar(
            xs, meds, yerr=[lo, hi], capsize=4, color=cols, edgecolor="black", linewidth=0.5
        )
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)  # extra rows (e.g. baozi at fsync durability) stand apart
        for x, m, h in zip(xs, meds, hi, strict=True):
            ax.text(x, m + h + max(meds) * 0.01, f"{m:,.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("jobs/s (steady: first to last completion)")
    ax.set_title(
        f"Drain {n:,} pre-enqueued no-op jobs (1 Redis INCR each): median, min–max of "
        f"{rounds} round(s)",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    shown = {family(c) for c in configs} | {"extra" for c in configs if c.extra}
    handles = [
        (
            "baozi",
            Patch(color=colours["baozi"], label="baozi (embedded SQLite)"),
        ),
        (
            "extra",
            Patch(
                facecolor=colours["baozi"],
                hatch="//",
                edgecolor="black",
                label="baozi, durable=fsync (extra)",
            ),
        ),
        ("baozi-redis", Patch(color=colours["baozi-redis"], label="baozi (Redis store)")),
        ("embedded", Patch(color=colours["embedded"], label="huey (SQLite storage)")),
        ("redis", Patch(color=colours["redis"], label="Redis-broker peers")),
    ]
    ax.legend(
        handles=[h for name, h in handles if name in shown],
        fontsize=8,
        loc="upper right",
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- the whole report ------------------------------------------------------------------------------


def markdown(
    configs: list[systems.Config],
    rows: list[dict],
    args: Any,
    command: str,
    env_info: dict[str, str],
    started: dt.datetime,
    finished: dt.datetime,
    chart_name: str,
    before_after: str = "",
) -> str:
    """The whole report; ``before_after`` is the --baseline section, placed after the ratios."""
    failed = [r for r in rows if not r["ok"]]
    parts = [
        "# Job queues: baozi beside Celery, RQ, Dramatiq, Huey, arq and SAQ",
        "",
        f"Run {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC, "
        f"{args.rounds} interleaved round(s), every config side by side on one machine.",
        "",
        env_info["machine"],
        "",
        env_info["libraries"],
        "",
        f"baozi source: commit {env_info['revision']} at the start of the run, "
        f"{env_info['revision_end']} at the end."
        + (
            f" Baseline (before): {env_info['baseline']}, from a throwaway worktree."
            if env_info.get("baseline")
            else ""
        ),
        "",
        f"Command: `{command}`",
        "",
        "Method. Every job body does one `INCR bench:done` (the same for every system); the job "
        "that gets 1 stores its wall time, the one that reaches N pushes its wall time onto a "
        "list the driver BLPOPs in 1 s slices (no sleep-polling). Each measurement is a fresh "
        "process: FLUSHDB of Redis database 14 and a new temp dir for the SQLite stores "
        "(baozi, huey-sqlite); the worker runs in its own process group, killed with SIGKILL to "
        "the group afterwards. **Enqueue** = N / time for one producer to enqueue N jobs, one API "
        "call per job, no worker running. **Drain steady** = (N−1) / (last − first completion); "
        "**incl. worker start** = N / (last completion − worker launch); **worker start** = first "
        "completion − launch. **Latency**: launch the worker, one warm-up job, 1 s idle, then "
        f"{args.latency_jobs} jobs enqueued 10 ms apart (sleep-until pacing); latency = job start "
        "wall time − wall time just before its enqueue call; nearest-rank p50/p99. Caps: drain "
        "300 s inside / 420 s outside, latency 60 s / 150 s. Each round runs every config (drain, "
        "then latency); the config order's start rotates by 5 each round. Cells: median "
        "(min–max) over rounds.",
        "",
        "Side measurements. **Batch enqueue** (each round, for the selected systems with a bulk "
        f"call): {getattr(args, 'batch_n', 0):,} jobs, one bulk call per "
        f"{getattr(args, 'batch_chunk', 0):,} jobs, no worker, in a fresh process and queue "
        "like the others. **redis-benchmark** (each round, before the configs): "
        "`INCR` from one connection, one request at a time and pipelined 1,000 deep, in "
        "database 14 — the server's own rate, the ceiling for one-call-per-job enqueue over one "
        "connection. **position()** (once, after the rounds, baozi-redis only): "
        f"{getattr(args, 'position_n', 0):,} jobs queued with `map` "
        f"({getattr(args, 'position_chunk', 0):,} per call), no worker, then `job.position()` "
        f"timed for ~{getattr(args, 'position_samples', 0)} jobs spread through the queue "
        "(first, second, middle, last but one, last and evenly between; one untimed warm-up "
        "call first) and checked against their true position. Database 14 is flushed before and "
        "after every measurement.",
        "",
        f"![drain steady jobs/s per config]({chart_name})",
        "",
        "## Results",
        "",
        *results_table(configs, rows, args.n),
        "",
        ratios_text(configs, rows),
        *([before_after] if before_after else []),
        "## Batch enqueue",
        "",
        *batch_table(configs, rows),
        "",
        "## `job.position()` with the queue full (baozi-redis)",
        "",
        *(
            position_table(rows)
            if mode_rows(rows, "position")
            else ["Not measured in this run (`--position`, on by default with baozi-redis)."]
        ),
        "",
        "## The Redis server's own rate (redis-benchmark)",
        "",
        *(
            redis_benchmark_table(rows)
            if any(r["mode"] == "redis-benchmark" for r in rows)
            else ["Not measured in this run (`--no-redis-benchmark`)."]
        ),
        "",
        "## CPU per job",
        "",
        "User + system CPU of the whole worker process tree (psutil, sampled just before the "
        "kill; reaped children included) divided by N, and the same counted from the first "
        "completion on (start-up — interpreter, imports, connecting — left out); producer = "
        "`time.process_time()` around the enqueue loop / N. Both include the job body's Redis "
        "INCR (client side).",
        "",
        *cpu_table(configs, rows),
        "",
        "## Single-call enqueue, paired",
        "",
        *(
            [
                "Each pair: baozi-redis and every selected Redis peer enqueue N jobs back to "
                "back, one call per job, after a 200-job warm-up, each in a fresh process (the "
                "order reversed every other pair). The ratio within a pair is what the target "
                "is judged on: separate runs minutes apart differ by the host's drift.",
                "",
                *paired_table(rows),
            ]
            if enqueue_pairs(rows)
            else ["Not measured in this run (`--pairs 0`, or baozi-redis without a Redis peer)."]
        ),
        "",
        "## Enqueue per system, pooled over its drain runs",
        "",
        *enqueue_table(configs, rows),
        "",
        "## Configurations",
        "",
        "Apps are `bench/jobs/app_*.py` (library defaults except as listed); job bodies are in "
        "`bench/jobs/common.py`. Worker environment: `PYTHONPATH=bench/jobs`, "
        "`BENCH_REDIS_URL=redis://127.0.0.1:6379/14`, `BENCH_N=N`, plus the variables shown.",
        "",
        *config_table(configs),
        "",
        'App settings: baozi `App("sqlite:///<tmp>/bench-baozi.db")` (WAL, synchronous=NORMAL: '
        "survives kill -9, not power loss; results kept 1 day), tasks registered with `@app.task`; "
        f'baozi-redis the same app module with `App("{systems.BAOZI_REDIS_URL}")` (keys under '
        "`bench-baozi:`); "
        'celery `Celery(broker=redis)`, `task_default_queue="bench"`, no result backend, '
        '`worker_hijack_root_logger=False`; rq `Queue("bench")`; dramatiq `RedisBroker(url)` '
        'with default middleware; huey `RedisHuey("bench", url)` / '
        '`SqliteHuey("bench", filename=<tmp>/bench-huey.db)` (WAL, SQLite\'s default '
        "synchronous=FULL: every commit synced); arq `WorkerSettings` with `max_jobs`, "
        "`poll_delay`, `keep_result` from the environment, an async redis-py client for the job "
        'body; saq `Queue.from_url(redis, name="bench")`, settings dict with `concurrency` from '
        "the environment, the job's `ttl` set by the producer (`SAQ_JOB_TTL`: -1 deletes a "
        "finished job, saq's default keeps it 600 s), an async redis-py client for the job body.",
        "",
        "## Every measurement",
        "",
        *runs_table(configs, rows),
        "",
        *(
            ["Batch enqueue and redis-benchmark, every run:", "", *side_runs_table(rows), ""]
            if any(r["mode"] in ("batch", "redis-benchmark") for r in rows)
            else []
        ),
    ]
    if failed:
        parts += ["## Failures", ""]
        for r in failed:
            parts += [f"- round {r['round']} {r['key']} {r['mode']}:", "", "```", r["error"], "```"]
        parts.append("")
    parts += [
        "## Caveats",
        "",
        "- Shared 2-core machine: producer, workers and Redis compete for the same cores, so "
        "compare ratios within this run, not absolute numbers across runs; check the min–max "
        "ranges before trusting a ratio near 1.",
        "- Durability and bookkeeping differ. baozi's default SQLite store does not sync each "
        "commit (it survives kill -9, not a power cut), huey-sqlite syncs every commit (SQLite's "
        "default) — the `baozi/p2c16-fsync` config runs baozi at huey-sqlite's durability. The Redis "
        "peers keep their queue in a Redis that here saves nothing to disk. rq keeps job "
        "records and results (arq tuned: keep_result=0), baozi keeps finished jobs' results "
        "for a day (its default result_ttl), celery has no "
        "result backend, dramatiq stores no results; celery acks before running by default.",
        "- The no-op job is instrumented with one Redis INCR (≈ 0.1 ms), which costs the fastest "
        "systems most in relative terms; baozi's jobs therefore talk to Redis too.",
        "- celery 5.7's kombu needs redis-py ≥ 6.4 and arq 0.28 needs redis-py < 6: celery (its "
        "producer, workers and the job body's INCR) runs from a venv with a newer redis-py, "
        "everything else on the shared one (see Libraries).",
        "- Worker CPU 'whole run' includes interpreter start and imports; for multi-process "
        "workers the 'after the first job' sample can still include a second process's start-up.",
        "- Latency for dramatiq, arq and huey-sqlite is set by their polling intervals (no "
        "blocking pop); celery, rq, huey-redis and saq block on BRPOP/BLPOP/BLMOVE; baozi-redis "
        "wakes its workers through Redis pub/sub.",
        "- baozi-redis and the Redis peers share one Redis (database 14) on the same 2 cores as "
        "producer and workers: Redis's own CPU is part of every Redis figure.",
        "- saq's worker sweeps its active list once at start; a job moved there but not yet "
        "marked active can be swept and retried, so a drain may count N+1 runs (noted in Every "
        "measurement when it happens).",
        "",
    ]
    return "\n".join(parts)
