"""Task functions for the job and worker tests (top-level, so process pools can import them)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import baozi


def add(a: int, b: int) -> int:
    return a + b


def echo(*args: object, **kwargs: object) -> list[object]:
    return [args, kwargs]


def fail(message: str) -> None:
    raise ValueError(message)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


async def asleep(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def note(path: str, tag: object) -> object:
    """Append ``tag`` to a file, one line per run (O_APPEND: safe across processes)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{tag}\n".encode())
    finally:
        os.close(fd)
    return tag


def slow_note(path: str, tag: object, seconds: float) -> object:
    time.sleep(seconds)
    return note(path, tag)


def fail_until(attempt: int) -> int:
    job = baozi.current_job()
    if job.attempts <= attempt:
        raise RuntimeError(f"attempt {job.attempts} fails")
    return job.attempts


def retry_once(delay: float) -> int:
    job = baozi.current_job()
    if job.attempts == 1:
        raise baozi.Retry(delay=delay)
    return job.attempts


def report_progress(path: str) -> str:
    baozi.current_job().set_progress(0.5, "half way")
    deadline = time.monotonic() + 10
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "done"


def exit_now(code: int) -> None:
    os._exit(code)


def unstorable() -> object:
    return object()


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def identity(x: object) -> object:
    return x


def quick_note(path: str, tag: object, seconds: float) -> object:
    """slow_note without the wait: what a rescuing worker runs in the kill tests."""
    return note(path, tag)


def fail_unless_exists(path: str) -> str:
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return "found"


class TwoArgError(Exception):
    """An exception that pickle cannot rebuild (its __init__ takes two arguments)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


def raise_two_arg() -> None:
    raise TwoArgError(7, "seven")


def raise_cancelled() -> None:
    import concurrent.futures

    raise concurrent.futures.CancelledError("cancelled inside the task")


def spin(path: str, seconds: float = 60.0) -> str:
    """Loop in Python code (no C call to return from), swallowing every ``Exception``, noting
    that it started; it notes "finished" only if nothing stops it within ``seconds``."""
    note(path, "started")
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        try:
            n += 1
        except Exception:  # noqa: BLE001, S110 -- a job that swallows errors must still stop
            pass
    return str(note(path, "finished"))


def nap_then_note(path: str, seconds: float) -> str:
    """One long C call, then a note: a cancel during the sleep stops it before the note."""
    note(path, "started")
    time.sleep(seconds)
    return str(note(path, "after the sleep"))


async def aspin(path: str, seconds: float = 60.0) -> str:
    """A coroutine that loops, yielding to the loop now and then."""
    note(path, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    return str(note(path, "finished"))


def allocate(megabytes: int) -> int:
    """Touch ``megabytes`` MB of memory; return this process's pid."""
    block = bytearray(megabytes * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    del block
    return os.getpid()


def pid() -> int:
    return os.getpid()


def gspin(path: str, seconds: float = 60.0) -> str:
    """Loops until ``seconds`` pass, yielding to other greenlets (a sleep of 1 ms) each turn."""
    note(path, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.001)  # gevent.sleep once the worker has patched the standard library
    return str(note(path, "finished"))


def careful(path: str) -> str:
    """Cleans up when cancelled, noting whether it knows why, then lets the cancel go on."""
    note(path, "started")
    try:
        while True:
            time.sleep(0.01)
    except baozi.Cancelled:
        note(path, "cleaned")
        note(path, baozi.current_job().cancelled)
        return "cleaned up"  # a result after the cancel: dropped
