"""An app for the fault tests' worker processes (its store comes from BAOZI_TEST_URL): tasks that
say which process ran them, so a test can find and kill it."""

from __future__ import annotations

import os
import time

import baozi

app = baozi.App(os.environ.get("BAOZI_TEST_URL", "memory://faultapp"), lease=1.0)


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # O_APPEND: safe across processes
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def pid_then_sleep(path: str, seconds: float) -> int:
    """Write the pid of the process running the job, then sleep."""
    _append(path, str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def tick(path: str, tag: int, seconds: float) -> int:
    """Sleep a little, then write ``tag``: one line per run."""
    time.sleep(seconds)
    _append(path, str(tag))
    return tag


def tick_pid(path: str, tag: int, seconds: float) -> int:
    """Sleep a little, then write ``tag`` and the pid of the process that ran it."""
    time.sleep(seconds)
    _append(path, f"{tag}:{os.getpid()}")
    return tag


app.task(name="pid_then_sleep")(pid_then_sleep)
app.task(name="tick_pid")(tick_pid)
app.task(name="tick")(tick)


def member(path: str, i: int) -> int:
    """A chord member: one line per run, then its number squared (20 ms of work: a chord of a
    thousand keeps two workers of 8 slots busy for more than a second)."""
    time.sleep(0.02)
    _append(path, f"m{i}")
    return i * i


def gather(results: list[int], path: str) -> int:
    """A chord's callback: one line per run, then the sum of the members' results."""
    _append(path, "callback")
    return sum(results)


app.task(name="member")(member)
app.task(name="gather")(gather)
