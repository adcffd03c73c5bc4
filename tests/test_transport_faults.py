"""The RabbitMQ job transport through faults: the broker restarted mid-run (producers and workers
carry on by themselves), and a storm of SIGKILLs on the worker processes. In both, no job is
lost; the runs of jobs a kill interrupted are counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import baozi
from baozi import App

from ._helpers import lines, wait_for, working
from ._rabbitserver import PrivateRabbit
from ._redisserver import PrivateRedis
from .conftest import _fresh
from .test_transport import AMQP_URL, ROOT, _amqp_or_skip, _delete_queues


@pytest.fixture(params=["sqlite", "redis"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL of each kind that processes share (a Redis prefix is dropped after)."""
    yield from _fresh(request, tmp_path)


def test_a_broker_restarted_mid_run_loses_no_job(
    private_rabbit: PrivateRabbit, shared_store_url: str
) -> None:
    url = shared_store_url
    kind = url.split(":", 1)[0]
    app = App(url, transport=private_rabbit.url)
    runs: list[int] = []
    lock = threading.Lock()

    @app.task(queue="orders")
    def order(i: int) -> int:
        with lock:
            runs.append(i)
        return i

    n = 400
    jobs = []

    def produce() -> None:
        for i in range(n):
            jobs.append(order.delay(i))  # the store has it: the broker may be down
            time.sleep(0.005)

    with working(app, concurrency=4):
        producer = threading.Thread(target=produce)
        producer.start()
        wait_for(lambda: len(runs) >= 100, 60)
        private_rabbit.stop()
        at = len(jobs)
        time.sleep(1)
        private_rabbit.start()
        producer.join(120)
        assert not producer.is_alive()
        # Messages lost with the connection are published again from their marks.
        wait_for(lambda: len(set(runs)) == n, 120)
        statuses = {j.status for j in jobs}
        # A mark moved forward as its job was published again is cleared by the scan after
        # it falls due (the job has ended by then).
        wait_for(lambda: app.store.inner.pending("orders", time.time() + 3600) == [], 60)
    twice = len(runs) - len(set(runs))
    print(f"{kind}: restart after {at} enqueues; {n} jobs, {len(set(runs))} ran, {twice} twice")
    assert at < n
    assert statuses == {"succeeded"}
    assert sorted(set(runs)) == list(range(n))


def _worker(env: dict[str, str], queue: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.faultapp:app", "-Q", queue, "-c", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _tags(path: Path) -> list[str]:
    return [line.split(":")[0] for line in lines(path)]


@pytest.mark.timeout(300)
def test_a_storm_of_100_worker_kills_loses_no_job(redis_url: str, tmp_path: Path) -> None:
    _amqp_or_skip()
    url = redis_url
    queue = f"storm{os.getpid()}{int(time.time())}"
    out = tmp_path / "ticks"
    env = {
        **os.environ,
        "BAOZI_TEST_URL": url,
        "BAOZI_TRANSPORT": AMQP_URL,
        "PYTHONPATH": str(ROOT),
    }
    app = App(url, transport=AMQP_URL)

    @app.task(name="tick_pid", queue=queue)
    def tick(path: str, tag: int, seconds: float) -> int:
        return tag

    n, kills = 3000, 100
    try:
        with app.batch():
            jobs = [tick.delay(str(out), i, 0.1) for i in range(n)]
        # Six workers; the oldest is killed once it has finished a job (so that it is killed
        # with jobs in flight), and replaced at once.
        workers = [(time.monotonic(), _worker(env, queue)) for _ in range(6)]
        killed = 0
        started = time.monotonic()
        deadline = started + 240
        while killed < kills:
            assert time.monotonic() < deadline, f"only {killed} kills in time"
            born, victim = workers[0]
            worked = {line.split(":")[1] for line in lines(out)}
            if str(victim.pid) not in worked and time.monotonic() - born < 10:
                time.sleep(0.02)
                continue
            workers.pop(0)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            killed += 1
            if killed % 20 == 0:
                print(f"{killed} kills after {time.monotonic() - started:.0f} s", flush=True)
            workers.append((time.monotonic(), _worker(env, queue)))
        at_storm_end = len(_tags(out))
        try:
            wait_for(lambda: len(set(_tags(out))) >= n, 240)
            ids = [j.id for j in jobs]
            deadline = time.monotonic() + 60
            while True:
                statuses = app.store.statuses(ids)
                left = {i: s for i, s in statuses.items() if s != "succeeded"}
                if not left:
                    break
                assert time.monotonic() < deadline, {
                    i: (s, app.store.record(i)) for i, s in list(left.items())[:5]
                }
                time.sleep(0.2)
        finally:
            for _, w in workers:
                w.terminate()
            for _, w in workers:
                w.wait(60)
    finally:
        _delete_queues(queue)
    ticks = _tags(out)
    twice = len(ticks) - len(set(ticks))
    print(
        f"storm: {kills} kills, {n} jobs ({at_storm_end} done when the storm ended), "
        f"{len(set(ticks))} ran, {twice} ran again after a kill"
    )
    assert at_storm_end < n  # the kills came mid-run
    assert set(ticks) == {str(i) for i in range(n)}  # every job ran: none lost
    assert twice <= kills * 2  # only jobs a kill interrupted ran again (2 slots a worker)
    assert app.store.inner.pending(queue, time.time() + 3600) == []


def test_the_store_killed_mid_run_loses_no_job(private_redis: PrivateRedis) -> None:
    # The records' store (Redis, every write in its AOF) is SIGKILLed while a producer
    # enqueues and a worker runs jobs: claims and settles fail meanwhile, the messages go
    # back to RabbitMQ, and once the store is back every job runs.
    _amqp_or_skip()
    queue = f"outage{os.getpid()}{int(time.time())}"
    app = App(private_redis.url + "?retry=0.2", transport=AMQP_URL, lease=2.0)
    runs: list[int] = []
    lock = threading.Lock()

    @app.task(queue=queue)
    def order(i: int) -> int:
        with lock:
            runs.append(i)
        return i

    n = 300
    ids: list[str] = []

    def produce() -> None:
        for i in range(n):
            while True:
                try:
                    ids.append(order.delay(i).id)  # returned: the store has it
                    break
                except baozi.StoreError:  # the store is down: try again
                    time.sleep(0.1)
            time.sleep(0.005)

    try:
        with working(app, concurrency=4):
            producer = threading.Thread(target=produce)
            producer.start()
            wait_for(lambda: len(runs) >= 80, 60)
            private_redis.kill()
            at = len(ids)
            time.sleep(2)
            private_redis.start()
            producer.join(120)
            assert not producer.is_alive()
            wait_for(lambda: set(range(n)) <= set(runs), 120)
            wait_for(lambda: set(app.store.statuses(ids).values()) == {"succeeded"}, 60)
    finally:
        _delete_queues(queue)
    twice = len(runs) - len(set(runs))
    print(f"store killed after {at} enqueues: {n} jobs, {len(set(runs))} ran, {twice} twice")
    assert at < n
    assert sorted(set(runs)) == list(range(n))
