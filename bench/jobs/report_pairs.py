"""The jobs benchmark report's paired single-call enqueue: baozi-redis and the Redis peers run
back to back, and the ratio within each pair."""

from __future__ import annotations

from report_stats import fmt, median, mode_rows, system_of


def enqueue_pairs(rows: list[dict]) -> dict[tuple[int, int], dict[str, float]]:
    """The paired enqueue runs of baozi-redis and the Redis peers: (round, pair) -> system ->
    jobs/s (the before/after pairs of --baseline are the before_after module's)."""
    groups: dict[tuple[int, int], dict[str, float]] = {}
    for r in mode_rows(rows, "enqueue"):
        if r.get("pair_group", "peers") != "peers":
            continue
        groups.setdefault((r["round"], r["pair"]), {})[system_of(r["key"])] = r["enqueue_per_s"]
    return groups


def paired_enqueue(
    rows: list[dict],
) -> tuple[list[float], str, list[float], list[float]] | None:
    """baozi-redis's paired enqueue rates, the fastest peer (by median), its rates, and the
    ratio within each pair where both ran; None without a pair."""
    groups = enqueue_pairs(rows)
    peers = {s for g in groups.values() for s in g if s != "baozi-redis"}
    if not peers:
        return None
    top = max(peers, key=lambda s: median([g[s] for g in groups.values() if s in g]))
    both = [g for g in groups.values() if "baozi-redis" in g and top in g]
    if not both:
        return None
    ours = [g["baozi-redis"] for g in both]
    theirs = [g[top] for g in both]
    return ours, top, theirs, [a / b for a, b in zip(ours, theirs, strict=True)]


def paired_table(rows: list[dict]) -> list[str]:
    groups = enqueue_pairs(rows)
    systems_run = sorted(  # baozi-redis first, then by name: the same columns every run
        {s for g in groups.values() for s in g}, key=lambda s: (s != "baozi-redis", s)
    )
    lines = [
        "| round | pair | "
        + " | ".join(f"{s} jobs/s" for s in systems_run)
        + " | baozi-redis / fastest peer of the pair |",
        "|---|---|" + "---|" * len(systems_run) + "---|",
    ]
    for (rnd, pair), g in sorted(groups.items()):
        peers = [g[s] for s in g if s != "baozi-redis"]
        ratio = f"{g['baozi-redis'] / max(peers):.2f}x" if peers and "baozi-redis" in g else "–"
        cells = " | ".join(fmt(g[s], "rate") if s in g else "failed" for s in systems_run)
        lines.append(f"| {rnd} | {pair + 1} | {cells} | {ratio} |")
    return lines
