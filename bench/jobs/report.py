"""The jobs benchmark's report: machine line, tables, ratios and the bar chart."""

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

# Targets the report checks baozi against.
TARGET_VS_HUEY_SQLITE = 2.0
TARGET_P50_MS = 5.0
LATENCY_CONFIG = "baozi/c8"  # one process is enough for latency
# ... and baozi's Redis store (baozi-redis) against the Redis peers.
TARGET_REDIS_ENQUEUE_VS_PEER = 1.2  # single-call enqueue (confirmed), x the fastest peer's
TARGET_REDIS_BATCH_PER_S = 50_000.0  # batch enqueue (map, chunks of 1,000), absolute
TARGET_REDIS_BLOCK_PER_S = 50_000.0  # delay() per job inside one app.batch() block, absolute
TARGET_REDIS_DRAIN_VS_PEER = 2.0  # drain steady, x the fastest peer's best config
TARGET_POSITION_MS = 1.0  # job.position() ...
TARGET_POSITION_N = 1_000_000  # ... with this many jobs queued
OURS = ("baozi", "baozi-redis")  # the systems the report is about


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


# -- statistics ------------------------------------------------------------------------------------


def values(rows: list[dict], key: str, mode: str, field: str) -> list[float]:
    """The field's value in every successful measurement of one config."""
    return [
        r[field]
        for r in rows
        if r["key"] == key and r["mode"] == mode and r["ok"] and r.get(field) is not None
    ]


def median(vals: list[float]) -> float | None:
    return statistics.median(vals) if vals else None


def fmt(x: float, unit: str) -> str:
    """A number in the report's style for its unit."""
    if unit == "rate":
        return f"{x:,.0f}"
    if unit == "s":
        return f"{x:.2f}"
    if unit == "us":
        return f"{x:,.0f}"
    # milliseconds: more digits for the small ones
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def cell(vals: list[float], unit: str, expected: int | None = None) -> str:
    """median (min–max) of the rounds, with a note when some rounds failed."""
    if not vals:
        return "failed" if expected else "–"
    text = fmt(statistics.median(vals), unit)
    if len(vals) > 1:
        text += f" ({fmt(min(vals), unit)}–{fmt(max(vals), unit)})"
    if expected and len(vals) < expected:
        text += f" [{len(vals)}/{expected} ok]"
    return text


def rounds_run(rows: list[dict], key: str, mode: str) -> int:
    return sum(1 for r in rows if r["key"] == key and r["mode"] == mode)


# -- the comparisons -------------------------------------------------------------------------------


def best(configs: list[systems.Config], rows: list[dict], system: str) -> systems.Config | None:
    """The system's config with the highest median steady drain (extra rows left out)."""
    scored = [
        (median(values(rows, c.key, "drain", "steady_per_s")), c)
        for c in configs
        if c.system == system and not c.extra
    ]
    scored = [(m, c) for m, c in scored if m is not None]
    return max(scored, key=lambda mc: mc[0])[1] if scored else None


def pooled_enqueue(configs: list[systems.Config], rows: list[dict], system: str) -> list[float]:
    """Enqueue rates of every drain run of the system (the worker config cannot affect them)."""
    return [
        v
        for c in configs
        if c.system == system and not c.extra
        for v in values(rows, c.key, "drain", "enqueue_per_s")
    ]


def _verdict(ratio: float, target: float) -> str:
    return "**met**" if ratio >= target else "**missed**"


def _overlap(ours: list[float], theirs: list[float], lower_is_better: bool = False) -> str:
    """Whether the rounds' ranges overlap: a ratio from overlapping ranges is within noise.
    ``lower_is_better`` for times (latency), where the smaller value is the faster one."""
    if len(ours) < 2 or len(theirs) < 2:
        return "one round: no range"
    above, below = min(ours) > max(theirs), max(ours) < min(theirs)
    if above or below:
        faster = below if lower_is_better else above
        return f"no overlap (every baozi round {'faster' if faster else 'slower'})"
    return "ranges overlap"


def _faster_verdict(ratio: float, ours: list[float], theirs: list[float]) -> str:
    """Verdict for "faster than": a ratio above 1 counts only if the rounds' ranges don't overlap."""
    if _overlap(ours, theirs) == "ranges overlap":
        return "**tie** (within noise)"
    return _verdict(ratio, 1.0) if ratio != 1.0 else "**missed**"


def ratios_text(configs: list[systems.Config], rows: list[dict]) -> str:
    """The ratios sections: baozi's and baozi-redis's best configs against their targets."""
    parts = []
    if any(c.system == "baozi" for c in configs):
        parts.append(sqlite_ratios_text(configs, rows))
    if any(c.system == "baozi-redis" for c in configs):
        parts.append(redis_ratios_text(configs, rows))
    return "\n".join(parts) if parts else "## Ratios\n\nNeither baozi system selected.\n"


def sqlite_ratios_text(configs: list[systems.Config], rows: list[dict]) -> str:
    """The SQLite store's ratios: baozi's best config against the targets, from this run."""
    lines = ["## Ratios (this run; medians over rounds)", ""]
    ours = best(configs, rows, "baozi")
    if ours is None:
        return "\n".join(lines + ["baozi has no successful drain run: no ratios.", ""])
    our_steady = values(rows, ours.key, "drain", "steady_per_s")
    our_incl = values(rows, ours.key, "drain", "incl_start_per_s")
    lines += [
        f"baozi's best config by median steady drain: **{ours.key}** "
        f"({fmt(median(our_steady), 'rate')} jobs/s steady, "
        f"{fmt(median(our_incl), 'rate')} jobs/s incl. worker start). "
        "Enqueue is compared pooled over all of a system's drain runs, since no worker runs "
        "while jobs are enqueued.",
        "",
        "| comparison | baozi | peer (its best config) | ratio | target | verdict | rounds |",
        "|---|---|---|---|---|---|---|",
    ]

    hs = best(configs, rows, "huey-sqlite")
    if hs is not None:
        theirs = values(rows, hs.key, "drain", "steady_per_s")
        r = median(our_steady) / median(theirs)
        lines.append(
            f"| drain steady vs huey-sqlite | {fmt(median(our_steady), 'rate')}/s | "
            f"{fmt(median(theirs), 'rate')}/s ({hs.name}) | {r:.2f}x | "
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {_verdict(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{_overlap(our_steady, theirs)} |"
        )
        theirs_incl = values(rows, hs.key, "drain", "incl_start_per_s")
        r = median(our_incl) / median(theirs_incl)
        lines.append(
            f"| drain incl. worker start vs huey-sqlite (informational) | {fmt(median(our_incl), 'rate')}/s | "
            f"{fmt(median(theirs_incl), 'rate')}/s ({hs.name}) | {r:.2f}x | "
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {_verdict(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{_overlap(our_incl, theirs_incl)} |"
        )
        our_enq, their_enq = (
            pooled_enqueue(configs, rows, "baozi"),
            pooled_enqueue(configs, rows, "huey-sqlite"),
        )
        r = median(our_enq) / median(their_enq)
        lines.append(
            f"| enqueue vs huey-sqlite (pooled) | {fmt(median(our_enq), 'rate')}/s | "
            f"{fmt(median(their_enq), 'rate')}/s (all configs) | {r:.2f}x | "
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {_verdict(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{_overlap(our_enq, their_enq)} |"
        )
    else:
        lines.append("| vs huey-sqlite | | not measured | | | | |")

    for system in systems.REDIS_PEERS:
        peer = best(configs, rows, system)
        if peer is None:
            lines.append(f"| drain steady vs {system} | | not measured / failed | | > 1x | | |")
            continue
        theirs = values(rows, peer.key, "drain", "steady_per_s")
        r = median(our_steady) / median(theirs)
        lines.append(
            f"| drain steady vs {system} | {fmt(median(our_steady), 'rate')}/s | "
            f"{fmt(median(theirs), 'rate')}/s ({peer.name}) | {r:.2f}x | > 1x | "
            f"{_faster_verdict(r, our_steady, theirs)} | {_overlap(our_steady, theirs)} |"
        )

    p50 = values(rows, LATENCY_CONFIG, "latency", "p50_ms")
    if p50:
        m = median(p50)
        p99 = values(rows, LATENCY_CONFIG, "latency", "p99_ms")
        lines.append(
            f"| latency p50 ({LATENCY_CONFIG}) | {cell(p50, 'ms')} ms | – | – | "
            f"< {TARGET_P50_MS:.0f} ms | {'**met**' if m < TARGET_P50_MS else '**missed**'} | "
            f"p99 {cell(p99, 'ms')} ms |"
        )
    else:
        lines.append(f"| latency p50 ({LATENCY_CONFIG}) | not measured / failed | | | | | |")

    # Equal-durability check: huey-sqlite syncs every commit; baozi's default store does not.
    fsync = [c for c in configs if c.system == "baozi" and c.extra]
    if fsync and hs is not None:
        lines += [
            "",
            "At equal durability (every commit synced, as huey-sqlite does by default):",
            "",
        ]
        for c in fsync:
            ours_f = values(rows, c.key, "drain", "steady_per_s")
            enq_f = values(rows, c.key, "drain", "enqueue_per_s")
            theirs = values(rows, hs.key, "drain", "steady_per_s")
            their_enq = pooled_enqueue(configs, rows, "huey-sqlite")
            if ours_f and theirs:
                lines.append(
                    f"- {c.key}: drain steady {fmt(median(ours_f), 'rate')}/s = "
                    f"{median(ours_f) / median(theirs):.2f}x huey-sqlite {hs.name}; enqueue "
                    f"{fmt(median(enq_f), 'rate')}/s = {median(enq_f) / median(their_enq):.2f}x "
                    "huey-sqlite (pooled)."
                )
    return "\n".join(lines) + "\n"


def system_of(key: str) -> str:
    return key.split("/", 1)[0]


def mode_rows(rows: list[dict], mode: str, system: str | None = None) -> list[dict]:
    """Successful rows of one mode (of one system, when given)."""
    return [
        r
        for r in rows
        if r["mode"] == mode and r["ok"] and (system is None or system_of(r["key"]) == system)
    ]


def batch_values(rows: list[dict], system: str, field: str = "batch_per_s") -> list[float]:
    return [r[field] for r in mode_rows(rows, "batch", system) if r.get(field) is not None]


def bench_values(rows: list[dict], key: str, field: str = "rps") -> list[float]:
    """A redis-benchmark run's figures over the rounds (key ``redis-benchmark/LABEL``)."""
    return [
        r[field]
        for r in mode_rows(rows, "redis-benchmark")
        if r["key"] == key and r.get(field) is not None
    ]


def best_latency(
    configs: list[systems.Config], rows: list[dict], names: tuple[str, ...]
) -> tuple[systems.Config, list[float]] | None:
    """The config of these systems with the lowest median latency p50, and its p50s."""
    scored = [
        (median(values(rows, c.key, "latency", "p50_ms")), c)
        for c in configs
        if c.system in names and not c.extra
    ]
    scored = [(m, c) for m, c in scored if m is not None]
    if not scored:
        return None
    c = min(scored, key=lambda mc: mc[0])[1]
    return c, values(rows, c.key, "latency", "p50_ms")


def redis_ratios_text(configs: list[systems.Config], rows: list[dict]) -> str:
    """baozi-redis's ratios: its best config against the fastest Redis peer of this run."""
    lines = ["## Ratios: baozi-redis vs the Redis peers (this run; medians over rounds)", ""]
    ours = best(configs, rows, "baozi-redis")
    peers = [s for s in systems.REDIS_PEERS if any(c.system == s for c in configs)]
    if ours is None:
        return "\n".join(lines + ["baozi-redis has no successful drain run: no ratios.", ""])
    our_steady = values(rows, ours.key, "drain", "steady_per_s")
    our_incl = values(rows, ours.key, "drain", "incl_start_per_s")
    lines += [
        f"baozi-redis's best config by median steady drain: **{ours.key}** "
        f"({fmt(median(our_steady), 'rate')} jobs/s steady, "
        f"{fmt(median(our_incl), 'rate')} jobs/s incl. worker start). Each comparison is "
        "against the fastest Redis peer of this run at that figure "
        f"(peers run: {', '.join(peers) or 'none'}); enqueue pooled over all of a system's "
        "drain runs; latency: each side's config with the lowest median p50.",
        "",
        "| comparison | baozi-redis | fastest Redis peer | ratio | target | verdict | rounds |",
        "|---|---|---|---|---|---|---|",
    ]

    # Single-call enqueue.
    our_enq = pooled_enqueue(configs, rows, "baozi-redis")
    peer_enq = {s: v for s in peers if (v := pooled_enqueue(configs, rows, s))}
    if our_enq and peer_enq:
        top = max(peer_enq, key=lambda s: median(peer_enq[s]))
        r = median(our_enq) / median(peer_enq[top])
        lines.append(
            f"| single-call enqueue, confirmed (pooled) | {fmt(median(our_enq), 'rate')}/s | "
            f"{fmt(median(peer_enq[top]), 'rate')}/s ({top}) | {r:.2f}x | "
            f"≥ {TARGET_REDIS_ENQUEUE_VS_PEER}x | {_verdict(r, TARGET_REDIS_ENQUEUE_VS_PEER)} | "
            f"{_overlap(our_enq, peer_enq[top])} |"
        )
    else:
        lines.append("| single-call enqueue (pooled) | | not measured / failed | | | | |")

    # Batch enqueue: an absolute target; a peer's bulk call, where measured, for comparison.
    our_batch = batch_values(rows, "baozi-redis")
    chunk = next((r["chunk"] for r in mode_rows(rows, "batch", "baozi-redis")), None)
    peer_batch = {s: v for s in peers if (v := batch_values(rows, s))}
    if our_batch:
        m = median(our_batch)
        if peer_batch:
            top = max(peer_batch, key=lambda s: median(peer_batch[s]))
            theirs = f"{fmt(median(peer_batch[top]), 'rate')}/s ({top} bulk call; not the target)"
            ratio = f"{m / median(peer_batch[top]):.2f}x"
        else:
            theirs, ratio = "– (absolute target)", "–"
        lines.append(
            f"| batch enqueue (`map`, {chunk:,} jobs per call) | {fmt(m, 'rate')}/s | {theirs} | "
            f"{ratio} | ≥ {TARGET_REDIS_BATCH_PER_S:,.0f}/s | "
            f"{'**met**' if m >= TARGET_REDIS_BATCH_PER_S else '**missed**'} | "
            f"{cell(our_batch, 'rate')} |"
        )
    else:
        lines.append("| batch enqueue (`map`) | not measured / failed | | | | | |")

    # One delay() per job inside a batch block: confirmed at the block's end, an absolute target.
    our_block = batch_values(rows, "baozi-redis", "block_per_s")
    if our_block:
        m = median(our_block)
        lines.append(
            f"| `delay()` per job in one `app.batch()` block | {fmt(m, 'rate')}/s | – (absolute "
            f"target) | – | ≥ {TARGET_REDIS_BLOCK_PER_S:,.0f}/s | "
            f"{'**met**' if m >= TARGET_REDIS_BLOCK_PER_S else '**missed**'} | "
            f"{cell(our_block, 'rate')} |"
        )
    else:
        lines.append("| `delay()` in an `app.batch()` block | not measured / failed | | | | | |")

    # Drain steady against the fastest peer's best config.
    peer_best = {s: c for s in peers if (c := best(configs, rows, s)) is not None}
    if peer_best:
        top = max(
            peer_best, key=lambda s: median(values(rows, peer_best[s].key, "drain", "steady_per_s"))
        )
        theirs = values(rows, peer_best[top].key, "drain", "steady_per_s")
        r = median(our_steady) / median(theirs)
        lines.append(
            f"| drain steady | {fmt(median(our_steady), 'rate')}/s ({ours.name}) | "
            f"{fmt(median(theirs), 'rate')}/s ({peer_best[top].key}) | {r:.2f}x | "
            f"≥ {TARGET_REDIS_DRAIN_VS_PEER:.0f}x | {_verdict(r, TARGET_REDIS_DRAIN_VS_PEER)} | "
            f"{_overlap(our_steady, theirs)} |"
        )
        theirs_incl = values(rows, peer_best[top].key, "drain", "incl_start_per_s")
        r = median(our_incl) / median(theirs_incl)
        lines.append(
            f"| drain incl. worker start (informational) | {fmt(median(our_incl), 'rate')}/s | "
            f"{fmt(median(theirs_incl), 'rate')}/s ({peer_best[top].key}) | {r:.2f}x | "
            f"≥ {TARGET_REDIS_DRAIN_VS_PEER:.0f}x | {_verdict(r, TARGET_REDIS_DRAIN_VS_PEER)} | "
            f"{_overlap(our_incl, theirs_incl)} |"
        )
    else:
        lines.append("| drain steady | | no Redis peer measured / all failed | | | | |")

    # Latency p50: lower is better, so the ratio is ours / theirs and the target is ≤ 1x.
    our_lat, peer_lat = (
        best_latency(configs, rows, ("baozi-redis",)),
        best_latency(configs, rows, tuple(peers)),
    )
    if our_lat and peer_lat:
        (oc, ov), (pc, pv) = our_lat, peer_lat
        r = median(ov) / median(pv)
        if r > 1:
            verdict = "**missed**"
        elif r == 1 or _overlap(ov, pv, lower_is_better=True) == "ranges overlap":
            verdict = "**met** (tie within noise)"
        else:
            verdict = "**met**"
        lines.append(
            f"| latency p50, enqueue to start | {fmt(median(ov), 'ms')} ms ({oc.name}) | "
            f"{fmt(median(pv), 'ms')} ms ({pc.key}) | {r:.2f}x | ≤ 1x | {verdict} | "
            f"{_overlap(ov, pv, lower_is_better=True)} |"
        )
    else:
        lines.append("| latency p50 | | not measured / failed | | | | |")

    # position() with the queue full.
    pos = mode_rows(rows, "position", "baozi-redis")
    if pos:
        r0 = pos[-1]
        full = r0["n"] >= TARGET_POSITION_N
        ok = r0["median_ms"] < TARGET_POSITION_MS and not r0["wrong"]
        verdict = (
            ("**met**" if full else f"**met** at {r0['n']:,} queued only")
            if ok
            else ("**missed**" + ("" if not r0["wrong"] else f" ({r0['wrong']} wrong positions)"))
        )
        lines.append(
            f"| `job.position()` with {r0['n']:,} queued, median per call | "
            f"{r0['median_ms']:.3f} ms | – | – | < {TARGET_POSITION_MS:.0f} ms at "
            f"{TARGET_POSITION_N:,} | {verdict} | one run, {r0['samples']} calls: p99 "
            f"{r0['p99_ms']:.3f} ms, max {r0['max_ms']:.3f} ms |"
        )
    else:
        failed = [r for r in rows if r["mode"] == "position" and not r["ok"]]
        lines.append(
            "| `job.position()` | "
            + ("failed (see Failures)" if failed else "not measured (--no-position)")
            + " | | | | | |"
        )

    # Every Redis peer, and the server's own rate, for reference.
    each = []
    for s, c in peer_best.items():
        theirs = values(rows, c.key, "drain", "steady_per_s")
        each.append(f"{s} {median(our_steady) / median(theirs):.2f}x ({c.name})")
    if each:
        lines += [
            "",
            "Drain steady, baozi-redis's best over each Redis peer's best: "
            + ", ".join(each)
            + ".",
        ]
    one, piped = (
        bench_values(rows, "redis-benchmark/c1"),
        bench_values(rows, "redis-benchmark/c1-P1000"),
    )
    if one or piped:
        ref = ["", "The server's own limit (redis-benchmark INCR, one connection):"]
        if one:
            ref.append(
                f"one request at a time {fmt(median(one), 'rate')} requests/s"
                + (
                    f" — baozi-redis's single-call enqueue is {median(our_enq) / median(one):.0%}"
                    " of it (each `delay()` waits for its one round trip: see the README)"
                    if our_enq
                    else ""
                )
                + ";"
            )
        if piped:
            ref.append(
                f"pipelined 1,000 deep {fmt(median(piped), 'rate')} requests/s"
                + (
                    f" — baozi-redis's batch enqueue is {median(our_batch) / median(piped):.1%} "
                    "of it"
                    if our_batch
                    else ""
                )
                + "."
            )
        lines.append(" ".join(ref).strip())
    return "\n".join(lines) + "\n"


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


# -- tables and chart ------------------------------------------------------------------------------


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
) -> str:
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
        f"{env_info['revision_end']} at the end.",
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
