"""The jobs benchmark report's ratios for baozi's SQLite store: its best config against
huey-sqlite and the Redis peers, its latency, and the same at equal durability."""

from __future__ import annotations

import systems
from report_stats import (
    best,
    cell,
    faster_verdict,
    fmt,
    median,
    met_or_missed,
    overlap_note,
    pooled_enqueue,
    values,
)

# Targets the report checks baozi (its SQLite store) against.
TARGET_VS_HUEY_SQLITE = 2.0
TARGET_P50_MS = 5.0
LATENCY_CONFIG = "baozi/c8"  # one process is enough for latency


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
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {met_or_missed(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{overlap_note(our_steady, theirs)} |"
        )
        theirs_incl = values(rows, hs.key, "drain", "incl_start_per_s")
        r = median(our_incl) / median(theirs_incl)
        lines.append(
            f"| drain incl. worker start vs huey-sqlite (informational) | {fmt(median(our_incl), 'rate')}/s | "
            f"{fmt(median(theirs_incl), 'rate')}/s ({hs.name}) | {r:.2f}x | "
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {met_or_missed(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{overlap_note(our_incl, theirs_incl)} |"
        )
        our_enq, their_enq = (
            pooled_enqueue(configs, rows, "baozi"),
            pooled_enqueue(configs, rows, "huey-sqlite"),
        )
        r = median(our_enq) / median(their_enq)
        lines.append(
            f"| enqueue vs huey-sqlite (pooled) | {fmt(median(our_enq), 'rate')}/s | "
            f"{fmt(median(their_enq), 'rate')}/s (all configs) | {r:.2f}x | "
            f"≥ {TARGET_VS_HUEY_SQLITE:.0f}x | {met_or_missed(r, TARGET_VS_HUEY_SQLITE)} | "
            f"{overlap_note(our_enq, their_enq)} |"
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
            f"{faster_verdict(r, our_steady, theirs)} | {overlap_note(our_steady, theirs)} |"
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
