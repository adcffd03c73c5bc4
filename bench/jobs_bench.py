#!/usr/bin/env python
"""Job-queue throughput and latency: baozi's worker beside Celery, RQ, Dramatiq, Huey, arq and SAQ.

One run measures every configuration in bench/jobs/systems.py, interleaved over several rounds
on this machine (the config order rotates each round), each measurement in a fresh process with a
fresh queue (Redis database 14 flushed, a new SQLite file for the embedded stores):
  * enqueue: one producer enqueues N no-op jobs, one API call per job, no worker running (each
    call returns once the store has the job: baozi's default, confirmed enqueue);
  * drain: the worker is then launched and timed to the N-th completion ("steady" from the first
    to the last completion, "incl. worker start" from the launch), plus its CPU per job;
  * latency: an idle worker (warm-up job, 1 s idle), 200 jobs enqueued 10 ms apart; each job
    reports its start time minus the wall time just before its enqueue call.
Completion is counted by one Redis INCR in every job body, the same for every system.
Each round also runs, once:
  * paired enqueue: baozi-redis and each selected Redis peer enqueue N jobs (after a 200-job
    warm-up), one call each, back to back, --pairs times (the order reversed every other time);
    the single-call enqueue target is judged on the ratio within each pair, which the host's
    drift over a run does not bias;
  * redis-benchmark INCR, one client, one request at a time (the bound on one-call-per-job
    enqueue over one connection) and pipelined 1,000 deep (--no-redis-benchmark skips it);
  * batch: --batch-n jobs through the bulk call of each selected system that has one (baozi's
    ``task.map``, rq's ``enqueue_many``), one call per --batch-chunk jobs, no worker; for baozi,
    then --batch-n more with one ``delay()`` each inside one ``app.batch()`` block.
After the rounds, once (--position, on by default when baozi-redis is selected): baozi-redis with
--position-n jobs queued (``map`` in chunks of 10,000), ``job.position()`` timed for ~200 jobs
spread through the queue.
It writes bench/results/jobs-latest.md (+ a timestamped copy) and a bar chart beside it
(--out DIR writes them elsewhere, e.g. for a smoke run).

    python bench/jobs_bench.py [--n 10000] [--rounds 3] [--only baozi huey-sqlite/process2-q]

Before and after a change (--baseline REV): REV is checked out into a throwaway worktree
(removed at the end) and every selected baozi / baozi-redis config gets a twin, KEY@baseline,
whose producer and worker import baozi from that tree's src/ (measure.py --src); each twin runs
beside its config in the same rounds, and with --pairs each baozi system's single-call enqueue
is also paired before against after. The report's "Before / after" section compares them:

    python bench/jobs_bench.py --baseline REV --rounds 3 --only baozi baozi-redis

celery 5.7's Redis transport needs redis-py >= 6.4 while arq 0.28 needs redis-py < 6, so the
two cannot share one environment. Run celery from a venv that sees everything else:
    python -m venv --system-site-packages /tmp/jobs-bench-celery-venv
    /tmp/jobs-bench-celery-venv/bin/pip install 'celery==5.7.0' 'redis>=6.4,<9'
and pass --celery-python /tmp/jobs-bench-celery-venv/bin/python (or set BENCH_CELERY_PYTHON).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOBS = HERE / "jobs"
sys.path.insert(0, str(JOBS))

import before_after  # noqa: E402
import redis  # noqa: E402
import report  # noqa: E402
import systems  # noqa: E402

# Caps outside the measurement process, beyond its own inner caps (drain 300 s, latency 60 s).
OUTER_CAP = {"drain": 420, "latency": 150, "enqueue": 300, "batch": 300, "position": 1200}
# redis-benchmark runs: (label, extra arguments). INCR is one round trip of the cheapest kind,
# in database 14 (flushed afterwards); -c 1 = one connection, as the producers use.
REDIS_BENCHMARKS = (
    ("c1", ["-c", "1", "-n", "20000"]),
    ("c1-P1000", ["-c", "1", "-n", "1000000", "-P", "1000"]),
)
ROTATE = 5  # the config list's start moves by this much each round


def select(only: list[str] | None) -> list[systems.Config]:
    """The configs named by --only (a system name or SYSTEM/CONFIG), in registry order."""
    if not only:
        return list(systems.CONFIGS)
    chosen = [c for c in systems.CONFIGS if c.system in only or c.key in only]
    unknown = set(only) - {c.system for c in chosen} - {c.key for c in chosen}
    if unknown:
        known = ", ".join(c.key for c in systems.CONFIGS)
        raise SystemExit(f"unknown --only name(s) {sorted(unknown)}; known: {known}")
    return chosen


def flush() -> None:
    """Empty the bench's Redis database (every measurement also does, before and after)."""
    try:
        redis.Redis.from_url(systems.REDIS_URL).flushdb()
    except redis.RedisError:
        pass


def batch_configs(configs: list[systems.Config]) -> list[systems.Config]:
    """One config per selected system with a bulk call (its first regular one): the batch
    measurement runs no worker, the config only supplies the store settings."""
    chosen: dict[str, systems.Config] = {}
    for c in sorted(configs, key=lambda c: c.extra):
        if c.system in systems.BATCH_CALL:
            chosen.setdefault(c.system, c)
    return list(chosen.values())


def paired_configs(configs: list[systems.Config]) -> list[systems.Config]:
    """One config per selected Redis system (baozi-redis first), when baozi-redis and a Redis
    peer are both selected: their single-call enqueue is measured back to back."""
    chosen: dict[str, systems.Config] = {}
    for c in sorted(configs, key=lambda c: c.extra):
        if c.system == "baozi-redis" or c.system in systems.REDIS_PEERS:
            chosen.setdefault(c.system, c)
    if "baozi-redis" not in chosen or len(chosen) < 2:
        return []
    return sorted(chosen.values(), key=lambda c: c.system != "baozi-redis")


def pair_groups(
    configs: list[systems.Config], twins: list[systems.Config]
) -> list[tuple[str, list[systems.Config]]]:
    """The single-call enqueue runs made back to back: baozi-redis beside the Redis peers
    ("peers"), and each baozi system's first config beside its baseline twin ("baseline")."""
    groups = [("peers", paired)] if (paired := paired_configs(configs)) else []
    for system in report.OURS:
        mine = [t for t in sorted(twins, key=lambda c: c.extra) if t.system == system]
        if mine:
            groups.append(("baseline", [dataclasses.replace(mine[0], src=""), mine[0]]))
    return groups


def baseline_twins(configs: list[systems.Config], src: Path) -> list[systems.Config]:
    """A twin of every selected baozi config: the same measurements with baozi imported from
    ``src`` (the baseline checkout's) in the producer and the worker."""
    return [dataclasses.replace(c, src=str(src)) for c in configs if c.system in report.OURS]


def round_order(
    configs: list[systems.Config], twins: list[systems.Config], rnd: int
) -> list[systems.Config]:
    """One round's order: the configs' start moves by ROTATE each round, and each baseline twin
    runs beside its config, after it in rounds 1, 3, ... and before it in rounds 2, 4, ..."""
    shift = (rnd * ROTATE) % len(configs)
    twin_of = {t.name_key: t for t in twins}
    order = []
    for config in configs[shift:] + configs[:shift]:
        both = [config, twin_of[config.key]] if config.key in twin_of else [config]
        order += both if rnd % 2 == 0 else both[::-1]
    return order


def git(*argv: str) -> str:
    """Run git in this checkout; its output, or SystemExit with git's message."""
    out = subprocess.run(["git", "-C", str(HERE.parent), *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(argv)}: {out.stderr.strip()}")
    return out.stdout.strip()


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[tuple[Path, str]]:
    """A throwaway detached worktree of ``rev``, removed on the way out, and rev's short hash."""
    short = git("rev-parse", "--short", f"{rev}^{{commit}}")
    tmp = Path(tempfile.mkdtemp(prefix="jobs-bench-baseline-"))
    tree = tmp / f"baozi-{short}"

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(f"terminated by signal {signum}")  # so the tree is removed

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        git("worktree", "add", "--detach", str(tree), rev)
        if not (tree / "src" / "baozi" / "__init__.py").is_file():
            raise SystemExit(f"{rev} ({short}) has no src/baozi to measure")
        print(f"baseline {rev} = {short}: worktree {tree}", flush=True)
        yield tree, short
    finally:
        signal.signal(signal.SIGTERM, previous)
        subprocess.run(
            ["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def kill_group(pidfile: Path) -> None:
    """SIGKILL the worker group a measurement recorded, if anything of it is still there."""
    try:
        pgid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def measure(python: str, mode: str, config: systems.Config, options: list[str]) -> dict:
    """Run one measurement in its own process and return its JSON result."""
    with tempfile.NamedTemporaryFile(prefix="jobs-bench-pgid-", delete=False) as f:
        pidfile = Path(f.name)
    argv = [python, str(JOBS / "measure.py"), mode, config.name_key, "--pidfile", str(pidfile)]
    argv += [*options, "--src", config.src] if config.src else options
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=OUTER_CAP[mode])
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        return {"ok": False, "error": f"no result (exit {proc.returncode}): {err.strip()[-500:]}"}
    except subprocess.TimeoutExpired:
        # SIGTERM first: the measurement kills its own worker group on the way out.
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return {"ok": False, "error": f"timed out after {OUTER_CAP[mode]} s"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_group(pidfile)
        pidfile.unlink(missing_ok=True)


def redis_benchmark(extra: list[str]) -> dict:
    """One redis-benchmark INCR run against the bench's Redis; its requests/s and p50."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "--dbnum", "14", "-t", "incr"]
    argv += [*extra, "-q"]
    shown = " ".join(argv)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "command": shown}
    finally:
        flush()
    # -q prints e.g. "INCR: 14306.15 requests per second, p50=0.063 msec" (after \r progress).
    found = re.findall(r"INCR: ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", out.stdout)
    if out.returncode != 0 or not found:
        error = (out.stderr.strip() or out.stdout.strip())[-500:]
        return {"ok": False, "error": f"exit {out.returncode}: {error}", "command": shown}
    rps, p50 = found[-1]
    return {"ok": True, "rps": float(rps), "p50_ms": float(p50) if p50 else None, "command": shown}


def progress(row: dict) -> str:
    if not row["ok"]:
        return "FAILED: " + row["error"].splitlines()[0]
    if row["mode"] == "redis-benchmark":
        p50 = f", p50 {row['p50_ms']:.3f} ms" if row.get("p50_ms") is not None else ""
        return f"{row['rps']:,.0f} requests/s{p50}"
    if row["mode"] == "batch":
        block = (
            f"; delay() in a batch block {row['block_per_s']:,.0f} jobs/s"
            if row.get("block_per_s")
            else ""
        )
        return (
            f"{row['batch_per_s']:,.0f} jobs/s ({row['n']:,} jobs, chunks of {row['chunk']:,}), "
            f"producer CPU {row['producer_cpu_us']:.1f} us/job{block}"
        )
    if row["mode"] == "position":
        return (
            f"{row['n']:,} queued ({row['enqueue_per_s']:,.0f} jobs/s), position() median "
            f"{row['median_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, max {row['max_ms']:.3f} ms"
            f"{', WRONG ' + str(row['wrong']) if row['wrong'] else ''}"
        )
    if row["mode"] == "enqueue":
        return (
            f"pair {row['pair'] + 1}: {row['enqueue_per_s']:,.0f} jobs/s, producer CPU "
            f"{row['producer_cpu_us']:.1f} us/job"
        )
    if row["mode"] == "drain":
        return (
            f"enqueue {row['enqueue_per_s']:,.0f}/s, steady {row['steady_per_s']:,.0f}/s, "
            f"incl. start {row['incl_start_per_s']:,.0f}/s, start {row['start_s']:.2f} s, "
            f"worker CPU {row['worker_cpu_us']:.0f} us/job"
        )
    return f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms"


def interpreter(args: argparse.Namespace, config: systems.Config) -> str:
    return args.celery_python if config.system == "celery" else sys.executable


def run_rounds(
    args: argparse.Namespace,
    configs: list[systems.Config],
    twins: list[systems.Config],
    log: Callable[[dict, str, str, str], None],
) -> list[dict]:
    """Every round: redis-benchmark, each config's drain and latency (baseline twins beside
    their configs), the paired enqueue runs, the batch runs."""
    rows: list[dict] = []
    for rnd in range(args.rounds):
        tag = f"{rnd + 1}/{args.rounds}"
        if args.redis_benchmark:
            for label, extra in REDIS_BENCHMARKS:
                row = {
                    "key": f"redis-benchmark/{label}",
                    "round": rnd + 1,
                    "mode": "redis-benchmark",
                    **redis_benchmark(extra),
                }
                rows.append(row)
                log(row, row["key"], "server", tag)
        for config in round_order(configs, twins, rnd):
            for mode in ("drain", "latency"):
                options = ["--n", str(args.n)] if mode == "drain" else []
                options += ["--jobs", str(args.latency_jobs)] if mode == "latency" else []
                result = measure(interpreter(args, config), mode, config, options)
                row = {"key": config.key, "round": rnd + 1, "mode": mode, **result}
                rows.append(row)
                log(row, config.key, mode, tag)
        groups = pair_groups(configs, twins)
        for rep in range(args.pairs if groups else 0):
            # Back to back, the order reversed every other time (counted over the whole run):
            # the host's drift hits each side alike, so the ratio of one pair is comparable
            # where separate runs are not.
            flip = (rnd * args.pairs + rep) % 2
            for group, members in groups:
                for config in members[::-1] if flip else members:
                    options = ["--n", str(args.n)]
                    result = measure(interpreter(args, config), "enqueue", config, options)
                    row = {"key": config.key, "round": rnd + 1, "pair": rep, "pair_group": group}
                    rows.append({**row, "mode": "enqueue", **result})
                    what = config.key if group == "baseline" else config.system
                    log(rows[-1], what, "enqueue", tag)
        if args.batch:
            for config in batch_configs(configs):
                options = ["--n", str(args.batch_n), "--chunk", str(args.batch_chunk)]
                result = measure(interpreter(args, config), "batch", config, options)
                row = {"key": config.key, "round": rnd + 1, "mode": "batch", **result}
                rows.append(row)
                log(row, config.system, "batch", tag)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="jobs per drain measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--latency-jobs", type=int, default=200, help="jobs per latency measurement")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="systems or SYSTEM/CONFIG to run")
    ap.add_argument("--out", default=str(HERE / "results"), help="directory for the report")
    ap.add_argument(
        "--no-readme", dest="readme", action="store_false", help="leave README.md's table alone"
    )
    ap.add_argument(
        "--celery-python",
        default=os.environ.get("BENCH_CELERY_PYTHON", sys.executable),
        help="interpreter for the celery configs (see the module docstring)",
    )
    ap.add_argument(
        "--batch-n", type=int, default=100000, help="jobs per batch-enqueue measurement"
    )
    ap.add_argument("--batch-chunk", type=int, default=1000, help="jobs per bulk call (batch)")
    ap.add_argument(
        "--no-batch", dest="batch", action="store_false", help="skip the batch-enqueue step"
    )
    ap.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="paired single-call enqueue: times per round that baozi-redis and each Redis peer "
        "(and, with --baseline, each baozi system before and after) enqueue --n jobs back to "
        "back (0: skip)",
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also run every selected baozi config with baozi imported from REV (a throwaway "
        "worktree), in the same rounds, and compare before (REV) and after (this checkout)",
    )
    ap.add_argument(
        "--position",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time baozi-redis's job.position() with --position-n jobs queued, once after the "
        "rounds (default: on when baozi-redis is selected)",
    )
    ap.add_argument("--position-n", type=int, default=1000000, help="jobs queued (position)")
    ap.add_argument("--position-chunk", type=int, default=10000, help="jobs per map (position)")
    ap.add_argument("--position-samples", type=int, default=200, help="jobs asked (position)")
    ap.add_argument(
        "--no-redis-benchmark",
        dest="redis_benchmark",
        action="store_false",
        help="skip redis-benchmark (the server's own INCR rate, once per round)",
    )
    args = ap.parse_args()
    configs = select(args.only)
    redis_store = [c for c in configs if c.system == "baozi-redis"]
    if args.position is None:
        args.position = bool(redis_store)
    if args.position and not redis_store:
        raise SystemExit("--position needs a baozi-redis config among the selected ones")
    command = "python bench/jobs_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    started = dt.datetime.now(dt.UTC)
    env_info = report.environment(args.celery_python)
    print(env_info["machine"], flush=True)
    t_start = time.time()

    def log(row: dict, what: str, mode: str, rnd: str) -> None:
        print(
            f"[{time.time() - t_start:6.0f} s] round {rnd} {what:28} {mode:7} {progress(row)}",
            flush=True,
        )

    if args.baseline:
        with baseline_tree(args.baseline) as (tree, short):
            env_info["baseline"] = f"`{args.baseline}` = {short}"
            twins = baseline_twins(configs, tree / "src")
            rows = run_rounds(args, configs, twins, log)
    else:
        twins, rows = [], run_rounds(args, configs, [], log)
    if args.position:
        config = redis_store[0]
        options = ["--n", str(args.position_n), "--chunk", str(args.position_chunk)]
        options += ["--samples", str(args.position_samples)]
        result = measure(sys.executable, "position", config, options)
        row = {"key": config.key, "round": "after", "mode": "position", **result}
        rows.append(row)
        log(row, config.system, "position", "after")
    flush()
    finished = dt.datetime.now(dt.UTC)
    env_info["revision_end"] = report.source_revision()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M")
    compared = before_after.text(configs, twins, rows, env_info, args.rounds) if twins else ""
    for name in ("latest", stamp):
        chart = out / f"jobs-{name}.png"
        report.chart(configs, rows, args.n, args.rounds, chart)
        text = report.markdown(
            configs, rows, args, command, env_info, started, finished, chart.name, compared
        )
        (out / f"jobs-{name}.md").write_text(text)
    print(f"\nwrote {out / 'jobs-latest.md'} and {out / f'jobs-{stamp}.md'} (+ .png)\n")
    print(report.ratios_text(configs, rows))
    if compared:
        print(compared)
    if args.readme and not args.only:
        update_readme(text)


def update_readme(text: str, marker: str = "bench:jobs") -> None:
    """Put the report's main columns between README.md's ``<!-- bench:jobs -->`` markers."""
    table = text[text.index("| system | config | settings |") : text.index("## Ratios")].strip()
    rows = [
        "| system | config | enqueue jobs/s | drain jobs/s (steady) | latency p50 ms | p99 ms |"
    ]
    rows.append("|---|---|---|---|---|---|")
    for line in table.splitlines()[2:]:
        system, config, _settings, _n, enq, steady, _incl, _start, p50, p99 = (
            c.strip() for c in line.strip().strip("|").split("|")
        )
        rows.append(f"| {system} | {config} | {enq} | {steady} | {p50} | {p99} |")
    readme = HERE.parent / "README.md"
    current = readme.read_text()
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        body = "\n".join(rows)
        readme.write_text(f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
