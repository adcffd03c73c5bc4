"""Child-process bodies for the coordination tests (importable, so spawn can find them)."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import baozi


def count_under_lock(url: str, times: int) -> None:
    """Read, add one, write back -- a lost update without the lock -- ``times`` times."""
    app = baozi.App(url)
    lock, counter = app.lock("counter"), app.dict("shared")
    for _ in range(times):
        with lock:
            counter["n"] = counter.get("n", 0) + 1


def hold_semaphore(url: str, rounds: int) -> None:
    app = baozi.App(url)
    sem, stats = app.semaphore("three", value=3), app.dict("stats")
    log = baozi.Queue("inside", url=url)
    for _ in range(rounds):
        with sem:
            log.put(stats.incr("inside", 1))
            time.sleep(0.02)
            stats.incr("inside", -1)


def hold_lock_forever(url: str, ttl: float, ready: str) -> None:
    app = baozi.App(url)
    assert app.lock("doomed", ttl=ttl).acquire(timeout=10)
    Path(ready).write_text("held")
    time.sleep(3600)  # killed with SIGKILL before this ends


def incr_many(url: str, times: int) -> None:
    d = baozi.Dict("counts", url=url)
    for _ in range(times):
        d.incr("hits")


def wait_on_condition(url: str, out: str) -> None:
    app = baozi.App(url)
    cond = app.condition("gate")
    with cond:
        notified = cond.wait(timeout=20)
    Path(out).write_text("notified" if notified else "timeout")


def run_beat(url: str, seconds: float) -> None:
    from tests import beatapp

    app = beatapp.make_app(url)
    from baozi.beat import Beat

    beat = Beat(app)
    beat.start()
    time.sleep(seconds)
    beat.stop()


def release_in_child(url: str, out: str) -> None:
    """In a forked child: releasing a semaphore the parent acquired is releasing too often."""
    try:
        baozi.App(url).semaphore("one", value=1).release()
        Path(out).write_text("released")
    except ValueError:
        Path(out).write_text("ValueError")


def write_equal_keys(url: str, times: int) -> None:
    """Write under 1, 1.0 and True (one key), and add to one counter under 2, 2.0 and
    Decimal(2) (another)."""
    d = baozi.Dict("equal", url=url)
    for i in range(os.getpid(), os.getpid() + times):  # each process starts with another kind
        d[(1, 1.0, True)[i % 3]] = os.getpid()
        d.incr((2, 2.0, Decimal(2))[i % 3])
