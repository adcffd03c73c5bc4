"""Dropping the statistics' hours that have aged out, a bounded number of namespaces a call."""

from __future__ import annotations

import time

from ..backends.base import Store
from ._layout import FAMILIES, family_ns, kept_from

__all__ = ["PRUNED", "prune"]

PRUNED = "baozi.stats-pruned"
"""The namespace that says, per family, the last hour pruned (so a prune goes on from there)."""
FIRST_LOOK = 48
"""How many hours before the oldest hour kept a first prune of a store clears."""


def prune(store: Store, now: float | None = None, limit: int = 48) -> int:
    """Clear the namespaces of every family's hours older than it keeps (see ``FAMILIES``),
    at most ``limit`` of each family per call, going on from where the last call stopped;
    return how many keys went. Workers and web servers call it now and then, any number at
    once: clearing an hour twice is harmless. Writers never write an hour older than it keeps,
    so an hour once pruned stays empty."""
    now = time.time() if now is None else now
    marks = store.kv_items(PRUNED)
    removed = 0
    for family in FAMILIES:
        last = kept_from(family, now) - 1  # the newest hour to go
        mark = marks.get(family)
        first = int(mark) + 1 if mark is not None else last - FIRST_LOOK + 1
        stop = min(last, first + limit - 1)
        if stop < first:
            continue
        for hour in range(first, stop + 1):
            removed += store.kv_clear(family_ns(family, hour))
        store.kv_set(PRUNED, family, str(stop).encode())
    return removed
