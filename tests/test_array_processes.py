"""baozi.Value and baozi.Array shared by processes: exact counts under contention, both ways.

The contention tests run 8 processes on the stores that processes can share (SQLite, Redis,
PostgreSQL) and 8 threads on the in-memory store, which lives in one process.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest

from baozi import Array, Value
from tests import _arrayprocs

spawn = multiprocessing.get_context("spawn")

WORKERS, TIMES = 8, 250
"""2,000 read-then-write steps from eight processes at once: without the lock, updates are lost
within the first few dozen."""


def _run_parallel(url: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    """``target(*args)`` in WORKERS processes at once (threads for memory://), to the end."""
    if url.startswith("memory://"):
        runners: list[Any] = [threading.Thread(target=target, args=args) for _ in range(WORKERS)]
    else:
        runners = [spawn.Process(target=target, args=args) for _ in range(WORKERS)]
    for r in runners:
        r.start()
    for r in runners:
        r.join(600)  # a generous deadline: the CPUs may be shared with another run
        assert not r.is_alive(), "a worker did not finish within 600 s"
        if isinstance(r, multiprocessing.process.BaseProcess):
            assert r.exitcode == 0, f"a worker exited with {r.exitcode}"


@pytest.mark.timeout(900)
def test_eight_workers_decrement_under_the_lock_to_exactly_zero(url: str) -> None:
    v = Value("countdown", "i", WORKERS * TIMES, url=url)
    _run_parallel(url, _arrayprocs.decrement_under_the_lock, (url, TIMES))
    assert v.value == 0


@pytest.mark.timeout(900)
def test_eight_workers_decrement_with_add_to_exactly_zero(url: str) -> None:
    v = Value("countdown", "i", WORKERS * TIMES, url=url)
    _run_parallel(url, _arrayprocs.decrement_with_add, (url, TIMES))
    assert v.value == 0
    assert v.add(-1) == -1  # the count went nowhere else


@pytest.mark.timeout(300)
def test_a_handle_sent_to_a_spawned_process_is_the_same_array(shared_url: str) -> None:
    arr = Array("shared", "q", [0, 0, 2**40], url=shared_url)
    child = spawn.Process(target=_arrayprocs.add_to_every_element, args=(arr, 10))
    child.start()
    child.join(240)
    assert child.exitcode == 0
    assert arr[:] == [10, 20, 2**40 + 30]
