"""The jobs benchmark report's tables: results, CPU, enqueue, configurations and every run, and
those of the side measurements (batch enqueue, position, redis-benchmark)."""

from __future__ import annotations

import systems
from report_stats import (
    OURS,
    batch_values,
    bench_values,
    cell,
    fmt,
    median,
    mode_rows,
    pooled_enqueue,
    rounds_run,
    system_of,
    values,
)


def results_table(configs: list[systems.Config], rows: list[dict], n: int) -> list[str]:
    out = [
        "| system | config | settings | N | enqueue jobs/s | drain jobs/s steady | "
        "drain jobs/s incl. worker start | worker start s | latency p50 ms | latency p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        d, lt = rounds_run(rows, c.key, "drain"), rounds_run(rows, c.key, "latency")
        out.append(
            f"| {c.system} | {c.name} | {c.settings} | {n} | "
            f"{cell(values(rows, c.key, 'drain', 'enqueue_per_s'), 'rate', d)} | "
            f"{cell(values(rows, c.key, 'drain', 'steady_per_s'), 'rate', d)} | "
            f"{cell(values(rows, c.key, 'drain', 'incl_start_per_s'), 'rate', d)} | "
            f"{cell(values(rows, c.key, 'drain', 'start_s'), 's', d)} | "
            f"{cell(values(rows, c.key, 'latency', 'p50_ms'), 'ms', lt)} | "
            f"{cell(values(rows, c.key, 'latency', 'p99_ms'), 'ms', lt)} |"
        )
    return out


def cpu_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| system | config | worker CPU µs/job (whole run, incl. start-up) | "
        "worker CPU µs/job (after the first job) | producer CPU µs/job (enqueue) |",
        "|---|---|---|---|---|",
    ]
    # baozi first: its rows are the ones asked for; the peers' are for comparison.
    ordered = [c for c in configs if c.system in OURS] + [
        c for c in configs if c.system not in OURS
    ]
    for c in ordered:
        d = rounds_run(rows, c.key, "drain")
        name = f"**{c.system}**" if c.system in OURS else c.system
        out.append(
            f"| {name} | {c.name} | {cell(values(rows, c.key, 'drain', 'worker_cpu_us'), 'us', d)} | "
            f"{cell(values(rows, c.key, 'drain', 'worker_cpu_steady_us'), 'us', d)} | "
            f"{cell(values(rows, c.key, 'drain', 'producer_cpu_us'), 'us', d)} |"
        )
    return out


def enqueue_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| system | producer call | runs | enqueue jobs/s median (min–max) |",
        "|---|---|---|---|",
    ]
    for system in dict.fromkeys(c.system for c in configs):
        vals = pooled_enqueue(configs, rows, system)
        out.append(
            f"| {system} | `{systems.PRODUCER_CALL[system]}` | {len(vals)} | {cell(vals, 'rate')} |"
        )
    return out


def config_table(configs: list[systems.Config]) -> list[str]:
    out = [
        "| system | config | worker command (run in bench/jobs) | settings |",
        "|---|---|---|---|",
    ]
    for c in configs:
        out.append(f"| {c.system} | {c.name} | `{c.shown}` | {c.settings} |")
    return out


def runs_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| round | config | enqueue/s | steady/s | incl. start/s | start s | worker CPU µs/job | "
        "p50 ms | p99 ms | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["key"], r["round"], r["mode"]): r for r in rows}
    # In the order they ran (drain and latency; the side measurements have tables of their own).
    for rnd, key in dict.fromkeys(
        (r["round"], r["key"]) for r in rows if r["mode"] in ("drain", "latency")
    ):
        d, lt = by.get((key, rnd, "drain"), {}), by.get((key, rnd, "latency"), {})

        def g(r: dict, f: str, unit: str) -> str:
            return fmt(r[f], unit) if r.get("ok") and r.get(f) is not None else "–"

        notes = []
        for r, what in ((d, "drain"), (lt, "latency")):
            if r and not r.get("ok"):
                notes.append(f"{what} failed: {r['error'].splitlines()[0][:120]}")
        if d.get("ok") and not d.get("clean_start", True):
            notes.append("jobs ran before the worker started")
        if d.get("ok") and d.get("n") and d.get("done_count", 0) > d["n"]:
            notes.append(f"{d['done_count'] - d['n']} job run(s) more than N: some job ran twice")
        out.append(
            f"| {rnd} | {key} | {g(d, 'enqueue_per_s', 'rate')} | {g(d, 'steady_per_s', 'rate')} | "
            f"{g(d, 'incl_start_per_s', 'rate')} | {g(d, 'start_s', 's')} | "
            f"{g(d, 'worker_cpu_us', 'us')} | {g(lt, 'p50_ms', 'ms')} | {g(lt, 'p99_ms', 'ms')} | "
            f"{'; '.join(notes)} |"
        )
    return out


# -- the side measurements -------------------------------------------------------------------------


def batch_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| system | bulk call | jobs per call | runs | batch enqueue jobs/s | "
        "producer CPU µs/job | single-call enqueue jobs/s (pooled) | batch / single |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in dict.fromkeys(system_of(r["key"]) for r in rows if r["mode"] == "batch"):
        vals = batch_values(rows, system)
        runs = sum(1 for r in rows if r["mode"] == "batch" and system_of(r["key"]) == system)
        chunk = next((r["chunk"] for r in mode_rows(rows, "batch", system)), None)
        single = pooled_enqueue(configs, rows, system)
        ratio = f"{median(vals) / median(single):.1f}x" if vals and single else "–"
        out.append(
            f"| {system} | `{systems.BATCH_CALL.get(system, '?')}` | "
            f"{f'{chunk:,}' if chunk else '–'} | {runs} | {cell(vals, 'rate', runs)} | "
            f"{cell(batch_values(rows, system, 'producer_cpu_us'), 'us', runs)} | "
            f"{cell(single, 'rate')} | {ratio} |"
        )
    return out


def redis_benchmark_table(rows: list[dict]) -> list[str]:
    out = [
        "| run | command | runs | requests/s | p50 ms |",
        "|---|---|---|---|---|",
    ]
    for key in dict.fromkeys(r["key"] for r in rows if r["mode"] == "redis-benchmark"):
        runs = [r for r in rows if r["key"] == key and r["mode"] == "redis-benchmark"]
        rps, p50 = bench_values(rows, key), bench_values(rows, key, "p50_ms")
        p50_text = (
            f"{median(p50):.3f} ({min(p50):.3f}–{max(p50):.3f})"
            if len(p50) > 1
            else f"{p50[0]:.3f}"
            if p50
            else "–"
        )
        out.append(
            f"| {key.split('/', 1)[1]} | `{runs[0]['command']}` | {len(runs)} | "
            f"{cell(rps, 'rate', len(runs))} | {p50_text} |"
        )
    return out


def position_table(rows: list[dict]) -> list[str]:
    out = [
        "| system | jobs queued | jobs per `map` call | enqueue jobs/s | Redis used memory | "
        "calls | median ms | p99 ms | max ms | mean ms | wrong positions |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in mode_rows(rows, "position"):
        out.append(
            f"| {system_of(r['key'])} | {r['n']:,} | {r['chunk']:,} | {fmt(r['enqueue_per_s'], 'rate')} | "
            f"{r['redis_used_memory'] / 2**20:,.0f} MiB | {r['samples']} | {r['median_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['max_ms']:.3f} | {r['mean_ms']:.3f} | "
            f"{r['wrong']}{' e.g. ' + str(r['wrong_examples']) if r['wrong'] else ''} |"
        )
    return out


def side_runs_table(rows: list[dict]) -> list[str]:
    """Every batch and redis-benchmark measurement, in the order they ran."""
    out = ["| round | measurement | result |", "|---|---|---|"]
    for r in rows:
        if r["mode"] == "redis-benchmark":
            text = f"{r['rps']:,.0f} requests/s" if r["ok"] else "failed"
        elif r["mode"] == "batch":
            text = f"{r['batch_per_s']:,.0f} jobs/s" if r["ok"] else "failed"
        else:
            continue
        what = r["key"] if r["mode"] == "redis-benchmark" else f"batch {system_of(r['key'])}"
        out.append(f"| {r['round']} | {what} | {text} |")
    return out
