"""Child-process bodies for the Array and Value tests (importable, so spawn can find them)."""

from __future__ import annotations

import baozi


def decrement_under_the_lock(url: str, times: int) -> None:
    """``v.value -= 1`` is a read and then a write: it loses updates unless the lock is held."""
    v = baozi.Value("countdown", "i", url=url)
    for _ in range(times):
        with v.get_lock():
            v.value -= 1


def decrement_with_add(url: str, times: int) -> None:
    v = baozi.Value("countdown", "i", url=url)
    for _ in range(times):
        v.add(-1)


def add_to_every_element(arr: baozi.Array, times: int) -> None:
    """Given a handle made in the parent (pickled across, as multiprocessing's args are)."""
    for _ in range(times):
        for i in range(len(arr)):
            arr.add(i, i + 1)
