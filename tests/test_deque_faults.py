"""Deques under faults: writers killed with SIGKILL over and over, and a Redis server restarted
while a writer runs, lose no item whose call returned and store none twice."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from baozi import Deque
from tests import _dequeprocs

from ._redisserver import PrivateRedis

spawn = multiprocessing.get_context("spawn")
KILLS = 20


@pytest.mark.timeout(300)
def test_writers_killed_twenty_times_lose_and_duplicate_nothing(
    shared_url: str, tmp_path: Path
) -> None:
    rnd = random.Random(7)
    logs: list[Path] = []
    children: list[multiprocessing.process.BaseProcess] = []

    def launch() -> multiprocessing.process.BaseProcess:
        log = tmp_path / f"w{len(logs)}.log"
        logs.append(log)
        child = spawn.Process(target=_dequeprocs.churn, args=(shared_url, log.stem, str(log)))
        child.start()
        return child

    children = [launch(), launch()]
    killed = 0
    while killed < KILLS:
        time.sleep(rnd.uniform(0.3, 0.6))  # after the child's start-up, mid-run
        victim = children.pop(rnd.randrange(len(children)))
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join(30)
        killed += 1
        children.append(launch())
    for child in children:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)
    logged = [line for log in logs if log.exists() for line in log.read_text().split()]
    with Deque("stormed", url=shared_url) as d:
        held = Counter(d)
    assert logged, "no writer got anything done"
    assert max(held.values()) == 1, "an item is stored twice"
    lost = [item for item in logged if item not in held]
    assert lost == [], f"{len(lost)} of {len(logged)} returned items lost"
    print(f"{KILLS} kills: {len(logged)} items returned, {len(held)} stored, 0 lost, 0 twice")
    # at most the one item per killed writer whose call returned before its log line
    assert len(held) - len(logged) <= len(logs)


@pytest.mark.timeout(120)
def test_a_redis_restart_mid_run_loses_and_duplicates_nothing(
    private_redis: PrivateRedis,
) -> None:
    url = private_redis.url + "?retry=10"
    logged: list[str] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        with Deque("d", url=url) as d:
            i = 0
            while not stop.is_set():
                item = f"x-{i}"
                try:
                    d.append(item) if i % 2 else d.appendleft(item)
                    d.rotate(1)
                except Exception as exc:  # a call that raised is not counted as stored
                    failed.append(exc)
                    continue
                finally:
                    i += 1
                logged.append(item)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(1)
    private_redis.kill()
    time.sleep(2)
    private_redis.start()
    time.sleep(1)
    stop.set()
    writer.join(60)
    with Deque("d", url=url) as d:
        held = Counter(d)
    print(f"restart: {len(logged)} returned, {len(failed)} raised, {len(held)} stored")
    assert logged and len(logged) > 100
    assert max(held.values()) == 1, "an item is stored twice"
    assert [item for item in logged if item not in held] == []
    assert len(held) - len(logged) <= len(failed)  # only a call that raised may have stored
