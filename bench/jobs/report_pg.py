"""The PostgreSQL jobs benchmark's report (bench/pg_bench.py): the machine and server, baozi-pg's
best config against the best peer config, the targets, and where the CPU goes per job."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from typing import Any

import pg
import psutil
import systems
import systems_pg
from report import _cpu_model, _version, source_revision
from report_redis import best_latency
from report_stats import best, cell, fmt, median, mode_rows, overlap_note, values
from report_tables import config_table, results_table, runs_table

__all__ = ["environment", "markdown", "ratios_text", "source_revision"]

OURS = "baozi-pg"
TARGET_ENQUEUE_VS_PEER = 2.0  # single-call enqueue, x the fastest peer config's
TARGET_DRAIN_VS_PEER = 2.0  # drain steady, x the fastest peer config's
TARGET_BATCH_PER_S = 50_000.0  # map, chunks of 1,000: absolute


def environment() -> dict[str, str]:
    """The machine, server and library lines of the report."""
    server = pg.server()
    machine = (
        f"Machine: {os.cpu_count()} cores ({_cpu_model()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average at the start "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}."
    )
    settings = ", ".join(f"{k} {server[k]}" for k in pg.SETTINGS)
    where = pg.PG_DSN.rsplit("@", 1)[-1]
    postgres = f"PostgreSQL {server['version']} at {where} ({settings}), on this machine."
    try:
        import psycopg

        impl = psycopg.pq.__impl__
    except ImportError:
        impl = "?"
    libraries = (
        f"Libraries: baozi {_version('baozi')}, procrastinate {_version('procrastinate')} "
        f"(psycopg {_version('psycopg')}, {impl} implementation; psycopg-pool "
        f"{_version('psycopg-pool')}), pgqueuer {_version('pgqueuer')} (asyncpg "
        f"{_version('asyncpg')}); completion counter on redis-py {_version('redis')}; "
        f"interpreter `{sys.executable}`."
    )
    return {
        "machine": machine,
        "postgres": postgres,
        "libraries": libraries,
        "revision": source_revision(),
    }


# -- the comparisons -------------------------------------------------------------------------------


def _best_peer(configs: list[systems.Config], rows: list[dict]) -> systems.Config | None:
    """The peer config with the highest median steady drain, over both peers."""
    found = [c for s in systems_pg.PEERS if (c := best(configs, rows, s)) is not None]
    steady = {c.key: median(values(rows, c.key, "drain", "steady_per_s")) for c in found}
    return max(found, key=lambda c: steady[c.key]) if found else None


def pairs(rows: list[dict]) -> dict[tuple[int, int], dict[str, float]]:
    """(round, pair) -> config key -> jobs/s of the paired single-call enqueue runs."""
    groups: dict[tuple[int, int], dict[str, float]] = {}
    for r in mode_rows(rows, "enqueue"):
        if r.get("pair_group") == "pg":
            groups.setdefault((r["round"], r["pair"]), {})[r["key"]] = r["enqueue_per_s"]
    return groups


def _ours_key(group: dict[str, float]) -> str | None:
    return next((k for k in group if k.startswith(OURS + "/")), None)


def pair_ratios(rows: list[dict]) -> list[tuple[float, float, str]]:
    """Each pair with baozi-pg and a peer: (ours, the pair's fastest peer, which peer)."""
    out = []
    for group in pairs(rows).values():
        ours = _ours_key(group)
        peers = {k: v for k, v in group.items() if k != ours}
        if ours and peers:
            top = max(peers, key=peers.__getitem__)
            out.append((group[ours], peers[top], top))
    return out


def _verdict(ratio: float, target: float, lower_is_better: bool = False) -> str:
    ok = ratio <= target if lower_is_better else ratio >= target
    return "**met**" if ok else "**missed**"


def _bulk(rows: list[dict], key: str, field: str = "batch_per_s") -> list[float]:
    return [r[field] for r in mode_rows(rows, "batch") if r["key"] == key and r.get(field)]


def ratios_text(configs: list[systems.Config], rows: list[dict]) -> str:
    """baozi-pg's best config against the best peer config of this run, at each target."""
    lines = ["## Ratios: baozi-pg vs the best PostgreSQL peer (this run; medians over rounds)", ""]
    ours, peer = best(configs, rows, OURS), _best_peer(configs, rows)
    if peer is None:
        return "\n".join(lines + ["No peer has a successful drain run: no ratios.", ""])
    if ours is None:
        lines += [
            "baozi-pg has no successful drain run (its PostgreSQL store failed to open or run: "
            "see Failures): no ratios. The best peer config by median steady drain: "
            f"**{peer.key}** ({fmt(median(values(rows, peer.key, 'drain', 'steady_per_s')), 'rate')}"
            " jobs/s).",
            "",
        ]
        return "\n".join(lines)
    lines += [
        f"baozi-pg's best config by median steady drain: **{ours.key}**; the best peer config: "
        f"**{peer.key}** (the faster of the peers' default and fastest configs). Latency: each "
        "side's config with the lowest median p50. Single-call enqueue: judged on the paired "
        "runs (the fastest peer config of each pair).",
        "",
        "| comparison | baozi-pg | best peer | ratio | target | verdict | rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    got = pair_ratios(rows)
    if got:
        ratios = [a / b for a, b, _ in got]
        r = median(ratios)
        tops = ", ".join(sorted({t for _, _, t in got}))
        met = sum(x >= TARGET_ENQUEUE_VS_PEER for x in ratios)
        lines.append(
            f"| single-call enqueue (paired, {len(got)} pairs) | "
            f"{fmt(median([a for a, _, _ in got]), 'rate')}/s | "
            f"{fmt(median([b for _, b, _ in got]), 'rate')}/s ({tops}) | {r:.2f}x (pairs "
            f"{min(ratios):.2f}–{max(ratios):.2f}x) | ≥ {TARGET_ENQUEUE_VS_PEER:.0f}x | "
            f"{_verdict(r, TARGET_ENQUEUE_VS_PEER)} | {met} of {len(got)} pairs ≥ "
            f"{TARGET_ENQUEUE_VS_PEER:.0f}x |"
        )
    enq = {
        c.key: v
        for c in configs
        if not c.extra and (v := values(rows, c.key, "drain", "enqueue_per_s"))
    }
    our_enq = [v for k, vs in enq.items() if k.startswith(OURS + "/") for v in vs]
    peer_enq = {k: vs for k, vs in enq.items() if not k.startswith(OURS + "/")}
    if our_enq and peer_enq:
        top = max(peer_enq, key=lambda k: median(peer_enq[k]))
        r = median(our_enq) / median(peer_enq[top])
        lines.append(
            f"| single-call enqueue (drain runs; {'informational' if got else 'the target'}) | "
            f"{fmt(median(our_enq), 'rate')}/s | {fmt(median(peer_enq[top]), 'rate')}/s ({top}) "
            f"| {r:.2f}x | ≥ {TARGET_ENQUEUE_VS_PEER:.0f}x | "
            f"{'informational' if got else _verdict(r, TARGET_ENQUEUE_VS_PEER)} | "
            f"{overlap_note(our_enq, peer_enq[top])} |"
        )
    our_batch = [v for c in configs if c.system == OURS for v in _bulk(rows, c.key)]
    peer_batch = {c.key: v for c in configs if c.system != OURS and (v := _bulk(rows, c.key))}
    if our_batch:
        m = median(our_batch)
        top = max(peer_batch, key=lambda k: median(peer_batch[k])) if peer_batch else None
        theirs = f"{fmt(median(peer_batch[top]), 'rate')}/s ({top})" if top else "–"
        ratio = f"{m / median(peer_batch[top]):.2f}x" if top else "–"
        lines.append(
            f"| batch enqueue (`map`, chunks) | {fmt(m, 'rate')}/s | {theirs} | {ratio} | "
            f"≥ {TARGET_BATCH_PER_S:,.0f}/s | {_verdict(m, TARGET_BATCH_PER_S)} | "
            f"{cell(our_batch, 'rate')} |"
        )
    else:
        lines.append("| batch enqueue (`map`) | not measured / failed | | | | | |")
    our_steady = values(rows, ours.key, "drain", "steady_per_s")
    their_steady = values(rows, peer.key, "drain", "steady_per_s")
    r = median(our_steady) / median(their_steady)
    lines.append(
        f"| drain steady | {fmt(median(our_steady), 'rate')}/s ({ours.name}) | "
        f"{fmt(median(their_steady), 'rate')}/s ({peer.key}) | {r:.2f}x | "
        f"≥ {TARGET_DRAIN_VS_PEER:.0f}x | {_verdict(r, TARGET_DRAIN_VS_PEER)} | "
        f"{overlap_note(our_steady, their_steady)} |"
    )
    our_lat = best_latency(configs, rows, (OURS,))
    peer_lat = best_latency(configs, rows, systems_pg.PEERS)
    if our_lat and peer_lat:
        (oc, ov), (pc, pv) = our_lat, peer_lat
        r = median(ov) / median(pv)
        lines.append(
            f"| latency p50, enqueue to start | {fmt(median(ov), 'ms')} ms ({oc.name}) | "
            f"{fmt(median(pv), 'ms')} ms ({pc.key}) | {r:.2f}x | ≤ 1x | "
            f"{_verdict(r, 1.0, lower_is_better=True)} | "
            f"{overlap_note(ov, pv, lower_is_better=True)} |"
        )
    else:
        lines.append("| latency p50 | | not measured / failed | | | | |")
    lines += ["", *cpu_compare(rows, ours, peer), ""]
    return "\n".join(lines)


def _mode_median(rows: list[dict], key: str, mode: str, field: str) -> float | None:
    return median([r[field] for r in mode_rows(rows, mode) if r["key"] == key and field in r])


def cpu_compare(rows: list[dict], ours: systems.Config, peer: systems.Config) -> list[str]:
    """Where the CPU of a job goes, baozi-pg beside the best peer, for each figure with a target:
    drain (best configs), single-call enqueue (the paired runs) and batch (the bulk calls)."""
    lines = []
    # (what, mode, client CPU field, PostgreSQL phase, who the client is, the configs compared)
    enq = [k for k in systems_pg.PAIRED if k.startswith(OURS)] + [
        k for k in systems_pg.PAIRED if not k.startswith(OURS)
    ]
    batch = sorted(
        {r["key"] for r in mode_rows(rows, "batch")}, key=lambda k: not k.startswith(OURS)
    )
    for what, mode, client, phase, who, keys in (
        (
            "drained job, after the first",
            "drain",
            "worker_cpu_steady_us",
            "steady",
            "worker",
            [ours.key, peer.key],
        ),
        (
            "single-call enqueue (paired runs)",
            "enqueue",
            "producer_cpu_us",
            "enqueue",
            "producer",
            enq,
        ),
        ("job enqueued in bulk", "batch", "producer_cpu_us", "batch", "producer", batch),
    ):
        parts = []
        for key in keys:
            c, o, t = (
                _mode_median(rows, key, mode, f)
                for f in (client, f"pg_{phase}_ours_us", f"pg_{phase}_cluster_us")
            )
            if None not in (c, o, t):
                parts.append(
                    f"{key} {fmt(c, 'us')} µs in its {who} + {fmt(o, 'us')} µs in its "
                    f"PostgreSQL backends ({fmt(t, 'us')} µs in the whole cluster)"
                )
        if parts:
            lines.append(f"- CPU per {what} (medians): " + "; ".join(parts) + ".")
    return lines


# -- tables ----------------------------------------------------------------------------------------


def cpu_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| system | config | drain: worker µs/job | drain: PostgreSQL ours µs/job | "
        "drain: cluster µs/job | drain: other clients µs/job | enqueue: producer µs/job | "
        "enqueue: PostgreSQL ours µs/job | enqueue: cluster µs/job |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:

        def v(field: str, key: str = c.key) -> str:
            return cell(values(rows, key, "drain", field), "us")

        name = f"**{c.system}**" if c.system == OURS else c.system
        out.append(
            f"| {name} | {c.name} | {v('worker_cpu_steady_us')} | {v('pg_steady_ours_us')} | "
            f"{v('pg_steady_cluster_us')} | {v('pg_steady_others_us')} | "
            f"{v('producer_cpu_us')} | {v('pg_enqueue_ours_us')} | {v('pg_enqueue_cluster_us')} |"
        )
    return out


def pairs_table(rows: list[dict]) -> list[str]:
    groups = pairs(rows)
    keys = sorted(
        {k for g in groups.values() for k in g}, key=lambda k: (not k.startswith(OURS), k)
    )
    out = [
        "| round | pair | " + " | ".join(f"{k} jobs/s" for k in keys) + " | baozi-pg / fastest |",
        "|---|---|" + "---|" * len(keys) + "---|",
    ]
    for (rnd, pair), g in sorted(groups.items()):
        ours = _ours_key(g)
        peers = [v for k, v in g.items() if k != ours]
        ratio = f"{g[ours] / max(peers):.2f}x" if ours and peers else "–"
        cells = " | ".join(fmt(g[k], "rate") if k in g else "failed" for k in keys)
        out.append(f"| {rnd} | {pair + 1} | {cells} | {ratio} |")
    return out


def batch_table(configs: list[systems.Config], rows: list[dict]) -> list[str]:
    out = [
        "| system | config | bulk call | jobs per call | batch jobs/s | producer µs/job | "
        "PostgreSQL ours µs/job | cluster µs/job | `delay()` in one `app.batch()` block jobs/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        runs = [r for r in rows if r["mode"] == "batch" and r["key"] == c.key]
        if not runs:
            continue
        chunk = next((r["chunk"] for r in runs if r["ok"]), None)
        out.append(
            f"| {c.system} | {c.name} | `{systems_pg.BATCH_CALL[c.system]}` | "
            f"{f'{chunk:,}' if chunk else '–'} | {cell(_bulk(rows, c.key), 'rate', len(runs))} | "
            f"{cell(_bulk(rows, c.key, 'producer_cpu_us'), 'us')} | "
            f"{cell(_bulk(rows, c.key, 'pg_batch_ours_us'), 'us')} | "
            f"{cell(_bulk(rows, c.key, 'pg_batch_cluster_us'), 'us')} | "
            f"{cell(_bulk(rows, c.key, 'block_per_s'), 'rate')} |"
        )
    return out


def markdown(
    configs: list[systems.Config],
    rows: list[dict],
    args: Any,
    command: str,
    env_info: dict[str, str],
    started: dt.datetime,
    finished: dt.datetime,
) -> str:
    failed = [r for r in rows if not r["ok"]]
    calls = "; ".join(f"{s} `{c}`" for s, c in systems_pg.PRODUCER_CALL.items())
    parts = [
        "# Job queues on PostgreSQL: baozi beside procrastinate and pgqueuer",
        "",
        f"Run {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC, {args.rounds} interleaved round(s), "
        "every config side by side on one machine and one PostgreSQL server.",
        "",
        env_info["machine"],
        "",
        env_info["postgres"],
        "",
        env_info["libraries"],
        "",
        f"baozi source: commit {env_info['revision']} at the start of the run, "
        f"{env_info['revision_end']} at the end.",
        "",
        f"Command: `{command}`",
        "",
        "Method (bench/jobs_bench.py's, on PostgreSQL). Every job body does one Redis "
        "`INCR bench:done`, the same for every system (async on an async client for the asyncio "
        "workers, procrastinate and pgqueuer; in a thread for baozi); the job that reaches N "
        "pushes its wall time onto a list the driver BLPOPs. Each measurement is a fresh "
        "process with a schema of its own, created before it and dropped (CASCADE) after it; "
        "the worker runs in its own process group, killed with SIGKILL afterwards. **Enqueue** "
        f"= N / time to enqueue N jobs, one call per job, no worker ({calls}). **Drain steady** "
        "= (N−1) / (last − first completion); **incl. worker start** from the launch. "
        f"**Latency**: an idle worker, {args.latency_jobs} jobs 10 ms apart; start wall time − "
        "wall time just before the enqueue call; nearest-rank p50/p99. **Batch**: "
        f"{args.batch_n:,} jobs, one bulk call per {args.batch_chunk:,}, no worker. "
        "**PostgreSQL CPU** (bench/jobs/pg.py): *ours* = user+system CPU of the backends serving "
        "the measured processes' connections (matched by client port), sampled before and after "
        "the phase; *cluster* = every postgres process (background writer, WAL writer, "
        "checkpointer, autovacuum, reaped backends) over the same interval — it includes any "
        "other client of the server, whose live backends are also summed apart (*other "
        "clients*). Drain CPU is counted from the first completion to the N-th. Cells: median "
        "(min–max) over rounds.",
        "",
        "## Results",
        "",
        *results_table(configs, rows, args.n),
        "",
        ratios_text(configs, rows),
        "## CPU per job",
        "",
        *cpu_table(configs, rows),
        "",
        "## Single-call enqueue, paired",
        "",
        *(pairs_table(rows) if pairs(rows) else ["Not measured in this run."]),
        "",
        "## Batch enqueue",
        "",
        *batch_table(configs, rows),
        "",
        "## Configurations",
        "",
        "Each peer in its documented default configuration and in the fastest one its own docs "
        "describe (sources in bench/jobs/systems_pg.py's docstring).",
        "",
        *config_table(configs),
        "",
        "## Every run",
        "",
        *runs_table(configs, rows),
        "",
    ]
    if failed:
        parts += ["## Failures", ""]
        for r in failed:
            first, _, rest = r["error"].partition("\n")
            parts += [f"- round {r['round']}, {r['key']} {r['mode']}: {first}"]
            if rest.strip():
                parts += ["", "  ```", *("  " + ln for ln in rest.splitlines()[-12:]), "  ```"]
        parts.append("")
    return "\n".join(parts)
