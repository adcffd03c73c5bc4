"""Child-process bodies for the Deque process tests (importable, so spawn can find them)."""

from __future__ import annotations

import random
from typing import Any

import baozi

STEPS = 300


def added(tag: str) -> list[str]:
    """Every item the child ``tag`` adds, in order."""
    return [f"{tag}-{i}" for i in range(STEPS)]


def removed(tag: str) -> list[str]:
    """The items the child ``tag`` removes again (each some steps after adding it)."""
    return [f"{tag}-{i - 3}" for i in range(STEPS) if i % 10 == 5]


def mix(url: str, tag: str, start: Any) -> None:
    """Add, rotate, reverse and remove on the deque "shared", starting together with
    the other children at the barrier ``start``."""
    rnd = random.Random(tag)
    with baozi.Deque("shared", url=url) as d:
        start.wait(60)
        for i, item in enumerate(added(tag)):
            how = i % 3
            if how == 0:
                d.append(item)
            elif how == 1:
                d.appendleft(item)
            else:
                d.insert(rnd.randint(-5, 5), item)
            d.rotate(rnd.randint(-7, 7))
            if i % 10 == 5:
                d.remove(f"{tag}-{i - 3}")
            if i % 40 == 39:
                d.reverse()


def churn(url: str, tag: str, log: str) -> None:
    """Add items to the deque "stormed" for ever, rotating it and now and then reversing it,
    writing each item to ``log`` once the call that added it has returned (so every logged item
    was stored; a kill can leave one stored item unlogged)."""
    rnd = random.Random(tag)
    with baozi.Deque("stormed", url=url) as d, open(log, "a") as out:
        for i in range(10**9):
            item = f"{tag}-{i}"
            how = i % 3
            if how == 0:
                d.append(item)
            elif how == 1:
                d.appendleft(item)
            else:
                d.insert(rnd.randint(-3, 3), item)
            d.rotate(rnd.randint(-5, 5))
            if i % 25 == 24:
                d.reverse()
            out.write(item + "\n")
            out.flush()
