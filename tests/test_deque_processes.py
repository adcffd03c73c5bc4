"""Two processes change one Deque at once: rotations, pushes at both ends, inserts, and the
snapshot-then-splice operations (remove, reverse), with nothing lost or duplicated."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from baozi import Deque
from tests import _dequeprocs

spawn = multiprocessing.get_context("spawn")


@pytest.mark.timeout(600)
def test_two_processes_rotating_and_pushing_lose_and_duplicate_nothing(shared_url: str) -> None:
    start = spawn.Barrier(2)
    tags = ["left", "right"]
    children = [
        spawn.Process(target=_dequeprocs.mix, args=(shared_url, tag, start)) for tag in tags
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(300)  # a generous deadline: the CPUs may be shared with another run
        assert child.exitcode == 0, f"a child exited with {child.exitcode}"
    expected: Counter[str] = Counter()
    for tag in tags:
        expected.update(_dequeprocs.added(tag))
        expected.subtract(_dequeprocs.removed(tag))
    with Deque("shared", url=shared_url) as d:
        got = Counter(d)
        assert +expected == got
        assert len(d) == sum(expected.values()) == 2 * (300 - 30)
