"""The jobs benchmark's "Before / after" section: baozi's configs against their baseline twins
(jobs_bench --baseline), and whether speed holds."""

from __future__ import annotations

from pathlib import Path

import systems
from report_stats import OURS, fmt, median, mode_rows, values

SLACK = 0.10  # speed holds: after no worse than before by more than this, or the ranges overlap
MIN_ROUNDS = 3  # fewer rounds give ranges too thin to judge by
STORE = {"baozi": "SQLite", "baozi-redis": "Redis"}


def twin_pairs(
    configs: list[systems.Config], twins: list[systems.Config]
) -> list[tuple[systems.Config, systems.Config]]:
    """(config, its baseline twin) for every twinned config, in registry order."""
    twin_of = {t.name_key: t for t in twins}
    return [(c, twin_of[c.key]) for c in configs if c.key in twin_of]


def chosen(
    pairs: list[tuple[systems.Config, systems.Config]], rows: list[dict], system: str
) -> tuple[systems.Config, systems.Config] | None:
    """The system's config with the highest median steady drain over both sides' runs together
    (extra rows left out): compared under the same name before and after."""
    scored = []
    for after, before in pairs:
        if after.system == system and not after.extra:
            both = values(rows, after.key, "drain", "steady_per_s")
            both += values(rows, before.key, "drain", "steady_per_s")
            if both:
                scored.append((median(both), after, before))
    if not scored:
        return None
    _, after, before = max(scored, key=lambda s: s[0])
    return after, before


def pooled(cs: list[systems.Config], rows: list[dict]) -> list[float]:
    """Enqueue rates of every drain run of these configs (no worker runs while they enqueue)."""
    return [v for c in cs if not c.extra for v in values(rows, c.key, "drain", "enqueue_per_s")]


def paired(rows: list[dict], system: str) -> tuple[list[float], list[float], list[float]]:
    """The system's before/after enqueue pairs: before rates, after rates, after / before of each
    pair where both sides ran."""
    groups: dict[tuple[int, int], dict[str, float]] = {}
    for r in mode_rows(rows, "enqueue", system):
        if r.get("pair_group") == "baseline":
            side = "before" if r["key"].endswith(systems.BASELINE) else "after"
            groups.setdefault((r["round"], r["pair"]), {})[side] = r["enqueue_per_s"]
    both = [g for _, g in sorted(groups.items()) if len(g) == 2]
    before, after = [g["before"] for g in both], [g["after"] for g in both]
    return before, after, [a / b for a, b in zip(after, before, strict=True)]


def span(vals: list[float], unit: str) -> str:
    """median (min–max)."""
    text = fmt(median(vals), unit)
    return f"{text} ({fmt(min(vals), unit)}–{fmt(max(vals), unit)})" if len(vals) > 1 else text


def judge(
    before: list[float], after: list[float], lower_is_better: bool, ratio: float
) -> tuple[str, bool]:
    """The ranges column and whether speed holds: after no worse than before by more than
    SLACK (for a time: no higher than 1 + SLACK times before), or the two ranges overlap."""
    overlap = min(after) <= max(before) and min(before) <= max(after)
    worse = ratio > 1 + SLACK if lower_is_better else ratio < 1 - SLACK
    if overlap:
        ranges = "overlap"
    else:
        faster = max(after) < min(before) if lower_is_better else min(after) > max(before)
        ranges = f"apart: every after run {'faster' if faster else 'slower'}"
    if len(before) < 2 or len(after) < 2:
        ranges += " (one run on a side)"
    return ranges, overlap or not worse


def verdict_line(
    head: str,
    before: list[float],
    after: list[float],
    unit: str,
    lower_is_better: bool,
    pair_ratios: list[float] | None = None,
) -> tuple[str, bool | None]:
    """One table line and its verdict (None: a side has no run). With ``pair_ratios`` the ratio
    is their median, else the medians' ratio."""
    if not before or not after:
        b, a = (span(v, unit) if v else "failed" for v in (before, after))
        return f"{head} {b} | {a} | – | – | not measured |", None
    if pair_ratios:
        ratio = median(pair_ratios)
        shown = (
            f"{ratio:.2f}x (median of the pairs; {min(pair_ratios):.2f}–{max(pair_ratios):.2f}x)"
        )
    else:
        ratio = median(after) / median(before)
        shown = f"{ratio:.2f}x"
    ranges, holds = judge(before, after, lower_is_better, ratio)
    verdict = "**holds**" if holds else "**worse**"
    return (
        f"{head} {span(before, unit)} | {span(after, unit)} | {shown} | {ranges} | {verdict} |",
        holds,
    )


def system_lines(
    system: str,
    pairs: list[tuple[systems.Config, systems.Config]],
    rows: list[dict],
) -> list[tuple[str, bool | None]]:
    """One store's table lines, each with its verdict."""
    chosen_pair = chosen(pairs, rows, system)
    store = f"| {STORE[system]} ({system}) |"
    if chosen_pair is None:
        return [(f"{store} no successful drain run | | | | | | |", None)]
    after, before = chosen_pair
    mine = [p for p in pairs if p[0].system == system and not p[0].extra]
    out = [
        verdict_line(
            f"{store} drain steady jobs/s | {after.name} |",
            values(rows, before.key, "drain", "steady_per_s"),
            values(rows, after.key, "drain", "steady_per_s"),
            "rate",
            False,
        ),
        verdict_line(
            f"{store} latency p50 ms | {after.name} |",
            values(rows, before.key, "latency", "p50_ms"),
            values(rows, after.key, "latency", "p50_ms"),
            "ms",
            True,
        ),
        verdict_line(
            f"{store} enqueue jobs/s, pooled over drain runs | all {len(mine)} |",
            pooled([b for _, b in mine], rows),
            pooled([a for a, _ in mine], rows),
            "rate",
            False,
        ),
    ]
    before_p, after_p, ratios = paired(rows, system)
    if ratios:
        head = f"{store} single-call enqueue jobs/s, paired ({len(ratios)} pairs) | – (no worker) |"
        out.append(verdict_line(head, before_p, after_p, "rate", False, ratios))
    return out


def imported_from(cs: list[systems.Config], rows: list[dict]) -> str:
    """Where these configs' measurements imported baozi from, producer and worker processes."""
    keys = {c.key for c in cs}
    places: set[str] = set()
    runs = processes = 0
    for r in rows:
        if r["key"] in keys and r["ok"] and r.get("producer_baozi"):
            runs += 1
            processes += r["worker_processes"]
            places.update(str(Path(f).parent) for f in [r["producer_baozi"], *r["worker_baozi"]])
    where = ", ".join(f"`{p}`" for p in sorted(places)) or "not recorded"
    return f"{where} ({runs} producers, {processes} worker processes)"


def text(
    configs: list[systems.Config],
    twins: list[systems.Config],
    rows: list[dict],
    env_info: dict[str, str],
    rounds: int,
) -> str:
    """The "Before / after" section, with a verdict per figure and one for the run."""
    pairs = twin_pairs(configs, twins)
    lines = [
        "## Before / after",
        "",
        f"Before: baozi at {env_info['baseline']}; after: this checkout, "
        f"{env_info['revision']}. Every selected baozi config ran twice in each round, side by "
        "side: once as it is and once as a twin (`KEY@baseline`) whose producer and worker "
        "processes import baozi from a throwaway worktree of the baseline (`PYTHONPATH=<tree>/"
        "src`); the twin runs after its config in rounds 1, 3, … and before it in rounds 2, 4, "
        "…. The harness (bench/jobs) is this checkout's on both sides. Each store is compared "
        "at its config with the highest median steady drain over both sides' runs, the same "
        "config before and after; enqueue is pooled over all of a store's drain runs (no worker "
        "runs while they enqueue). With --pairs, each round also enqueues N jobs, one call "
        "each, before and after back to back (order reversed every other pair): that ratio is "
        "the median of the pairs' after / before, which the host's drift does not bias. "
        f"**holds**: after no worse than before by more than {SLACK:.0%} (rates at least "
        f"{1 - SLACK:.2f}x before, latency at most {1 + SLACK:.2f}x before), or the before and "
        "after ranges (min–max over runs) overlap; else **worse**.",
        "",
        "| store | figure | config | before median (min–max) | after median (min–max) | "
        "after / before | ranges | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts: list[bool | None] = []
    for system in OURS:
        if not any(a.system == system for a, _ in pairs):
            continue
        for line, verdict in system_lines(system, pairs, rows):
            lines.append(line)
            verdicts.append(verdict)
    worse, missing = verdicts.count(False), verdicts.count(None)
    if worse or missing:
        summary = f"Speed holds: **no** — {worse} figure(s) worse, {missing} not measured."
    else:
        summary = f"Speed holds: **yes** — all {len(verdicts)} figures hold."
    if rounds < MIN_ROUNDS:
        summary += (
            f" Only {rounds} round(s): the evidence asked for is at least {MIN_ROUNDS} rounds, "
            "so this verdict says little."
        )
    lines += ["", summary, "", *config_table(pairs, rows), ""]
    lines += [
        "baozi imported from (checked in every measurement: a twin's fails unless its producer "
        "and every worker process imported the baseline's): before "
        + imported_from([b for _, b in pairs], rows)
        + "; after "
        + imported_from([a for a, _ in pairs], rows)
        + ".",
        "",
    ]
    return "\n".join(lines)


def config_table(pairs: list[tuple[systems.Config, systems.Config]], rows: list[dict]) -> list[str]:
    """Every twinned config, before and after (medians), for reference."""
    out = [
        "Every twinned config (medians over rounds; after / before in parentheses):",
        "",
        "| config | drain steady before | after | latency p50 ms before | after | "
        "enqueue before | after |",
        "|---|---|---|---|---|---|---|",
    ]
    for after, before in pairs:
        cells = []
        for mode, field, unit in (
            ("drain", "steady_per_s", "rate"),
            ("latency", "p50_ms", "ms"),
            ("drain", "enqueue_per_s", "rate"),
        ):
            b, a = values(rows, before.key, mode, field), values(rows, after.key, mode, field)
            cells.append(fmt(median(b), unit) if b else "failed")
            ratio = f" ({median(a) / median(b):.2f}x)" if a and b else ""
            cells.append(fmt(median(a), unit) + ratio if a else "failed")
        out.append(f"| {after.key} | {' | '.join(cells)} |")
    return out
