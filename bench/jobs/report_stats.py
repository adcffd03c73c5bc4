"""The jobs benchmark report's figures: a config's values over the rounds, their medians and
table cells, and the comparisons every ratios section makes."""

from __future__ import annotations

import statistics

import systems

OURS = ("baozi", "baozi-redis")  # the systems the report is about


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


def met_or_missed(ratio: float, target: float) -> str:
    return "**met**" if ratio >= target else "**missed**"


def overlap_note(ours: list[float], theirs: list[float], lower_is_better: bool = False) -> str:
    """Whether the rounds' ranges overlap: a ratio from overlapping ranges is within noise.
    ``lower_is_better`` for times (latency), where the smaller value is the faster one."""
    if len(ours) < 2 or len(theirs) < 2:
        return "one round: no range"
    above, below = min(ours) > max(theirs), max(ours) < min(theirs)
    if above or below:
        faster = below if lower_is_better else above
        return f"no overlap (every baozi round {'faster' if faster else 'slower'})"
    return "ranges overlap"


def faster_verdict(ratio: float, ours: list[float], theirs: list[float]) -> str:
    """Verdict for "faster than": a ratio above 1 counts only if the rounds' ranges don't overlap."""
    if overlap_note(ours, theirs) == "ranges overlap":
        return "**tie** (within noise)"
    return met_or_missed(ratio, 1.0) if ratio != 1.0 else "**missed**"
