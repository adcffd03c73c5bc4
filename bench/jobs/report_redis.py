"""The jobs benchmark report's ratios for baozi's Redis store (baozi-redis): its best config
against the fastest Redis peer of the run, its absolute targets, and the server's own rate."""

from __future__ import annotations

import systems
from report_pairs import paired_enqueue
from report_stats import (
    batch_values,
    bench_values,
    best,
    cell,
    fmt,
    median,
    met_or_missed,
    mode_rows,
    overlap_note,
    pooled_enqueue,
    values,
)

# Targets the report checks baozi's Redis store (baozi-redis) against, beside the Redis peers.
TARGET_REDIS_ENQUEUE_VS_PEER = 1.2  # single-call enqueue (confirmed), x the fastest peer's
TARGET_REDIS_BATCH_PER_S = 50_000.0  # batch enqueue (map, chunks of 1,000), absolute
TARGET_REDIS_BLOCK_PER_S = 50_000.0  # delay() per job inside one app.batch() block, absolute
TARGET_REDIS_DRAIN_VS_PEER = 2.0  # drain steady, x the fastest peer's best config
TARGET_POSITION_MS = 1.0  # job.position() ...
TARGET_POSITION_N = 1_000_000  # ... with this many jobs queued


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

    # Single-call enqueue: judged on the paired runs, where there are any.
    our_enq = pooled_enqueue(configs, rows, "baozi-redis")
    peer_enq = {s: v for s in peers if (v := pooled_enqueue(configs, rows, s))}
    pairs = paired_enqueue(rows)
    if pairs:
        ours_p, top, theirs_p, ratios = pairs
        r = median(ratios)
        met = sum(x >= TARGET_REDIS_ENQUEUE_VS_PEER for x in ratios)
        lines.append(
            f"| single-call enqueue, confirmed (paired, {len(ratios)} pairs) | "
            f"{fmt(median(ours_p), 'rate')}/s | {fmt(median(theirs_p), 'rate')}/s ({top}) | "
            f"{r:.2f}x (pairs {min(ratios):.2f}–{max(ratios):.2f}x) | "
            f"≥ {TARGET_REDIS_ENQUEUE_VS_PEER}x | {met_or_missed(r, TARGET_REDIS_ENQUEUE_VS_PEER)} | "
            f"{met} of {len(ratios)} pairs ≥ {TARGET_REDIS_ENQUEUE_VS_PEER}x |"
        )
    if our_enq and peer_enq:
        top = max(peer_enq, key=lambda s: median(peer_enq[s]))
        r = median(our_enq) / median(peer_enq[top])
        verdict = "informational" if pairs else met_or_missed(r, TARGET_REDIS_ENQUEUE_VS_PEER)
        lines.append(
            f"| single-call enqueue, confirmed (pooled over drain runs) | "
            f"{fmt(median(our_enq), 'rate')}/s | "
            f"{fmt(median(peer_enq[top]), 'rate')}/s ({top}) | {r:.2f}x | "
            f"≥ {TARGET_REDIS_ENQUEUE_VS_PEER}x | {verdict} | "
            f"{overlap_note(our_enq, peer_enq[top])} |"
        )
    elif not pairs:
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
            f"≥ {TARGET_REDIS_DRAIN_VS_PEER:.0f}x | {met_or_missed(r, TARGET_REDIS_DRAIN_VS_PEER)} | "
            f"{overlap_note(our_steady, theirs)} |"
        )
        theirs_incl = values(rows, peer_best[top].key, "drain", "incl_start_per_s")
        r = median(our_incl) / median(theirs_incl)
        lines.append(
            f"| drain incl. worker start (informational) | {fmt(median(our_incl), 'rate')}/s | "
            f"{fmt(median(theirs_incl), 'rate')}/s ({peer_best[top].key}) | {r:.2f}x | "
            f"≥ {TARGET_REDIS_DRAIN_VS_PEER:.0f}x | {met_or_missed(r, TARGET_REDIS_DRAIN_VS_PEER)} | "
            f"{overlap_note(our_incl, theirs_incl)} |"
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
        elif r == 1 or overlap_note(ov, pv, lower_is_better=True) == "ranges overlap":
            verdict = "**met** (tie within noise)"
        else:
            verdict = "**met**"
        lines.append(
            f"| latency p50, enqueue to start | {fmt(median(ov), 'ms')} ms ({oc.name}) | "
            f"{fmt(median(pv), 'ms')} ms ({pc.key}) | {r:.2f}x | ≤ 1x | {verdict} | "
            f"{overlap_note(ov, pv, lower_is_better=True)} |"
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
