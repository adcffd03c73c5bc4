"""The kill storm's app (bench/killstorm.py): one queue per pool kind, one task per queue. Each
run writes "job pid parent-pid" before it works, so the storm can tell which process held it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time

import baozi

app = baozi.App(
    os.environ.get("KILLSTORM_URL", "memory://killstorm"),
    lease=float(os.environ.get("KILLSTORM_LEASE", "2.0")),
)
KINDS = ("thread", "process", "async", "gevent")


def _started(n: int) -> None:
    # The parent is the worker for a process-pool child (the worker created its Process object),
    # and the supervisor for a worker process; the storm kills worker processes only.
    parent = multiprocessing.parent_process()
    line = f"{n} {os.getpid()} {parent.pid if parent is not None else 0}\n"
    fd = os.open(os.environ["KILLSTORM_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())  # one write per line, O_APPEND: lines never interleave
    finally:
        os.close(fd)


def work(n: int, seconds: float) -> int:
    _started(n)
    time.sleep(seconds)
    return n


async def awork(n: int, seconds: float) -> int:
    _started(n)
    await asyncio.sleep(seconds)
    return n


MAX_DELIVERIES = 50
"""Not the default 5: the storm kills whichever workers hold the head of a queue, over and over
(a process worker often dies while its pool still boots), and 5 such deaths would end a job
failed -- the guard against a job that kills its worker, doing its job, but not what is measured."""

TASKS = {
    kind: app.task(name=f"{kind}.work", queue=kind, max_deliveries=MAX_DELIVERIES)(
        awork if kind == "async" else work
    )
    for kind in KINDS
}


def member(n: int, seconds: float) -> int:
    """A chord member (bench/chord_storm.py): its run noted, then its number squared."""
    _started(n)
    time.sleep(seconds)
    return n * n


def gather(results: list[int]) -> int:
    """A chord's callback: its run noted as -1, then the sum of the members' results."""
    _started(-1)
    return sum(results)


CHORD = {
    "member": app.task(name="chord.member", queue="chord", max_deliveries=MAX_DELIVERIES)(member),
    "gather": app.task(name="chord.gather", queue="chord", max_deliveries=MAX_DELIVERIES)(gather),
}
