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
