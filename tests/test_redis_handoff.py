"""The Redis store's hand-offs: a new job leased by its push to a worker waiting idle, and what
becomes of it when that worker is paused, busy, closing, killed or out of reach."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from baozi import App
from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome
from baozi.testing.contract.consumer import Inbox
from baozi.worker import Worker

from . import jobtasks
from ._helpers import wait_for, working
from ._redisserver import PrivateRedis

# -- jobs handed to idle workers ---------------------------------------------------------------


def test_an_idle_worker_sends_only_a_few_commands_a_second(private_redis: PrivateRedis) -> None:
    app = App(private_redis.url, lease=30.0)
    app.task(jobtasks.add)
    with working(app, concurrency=8):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.5)  # past start-up
        before = private_redis.commands()
        time.sleep(4.0)
        sent = private_redis.commands() - before
        assert sent <= 4 * 3, f"an idle worker sent {sent} commands in 4 s"
        # and it still wakes at once for new work
        started = time.monotonic()
        assert app.task(jobtasks.add).delay(1, 2).result(timeout=10) == 3
        assert time.monotonic() - started < 2.0  # woken by the change, not its 5 s idle wait


def test_an_idle_consumer_is_handed_each_new_job_leased_to_it(redis_url: str) -> None:
    store = open_store(redis_url)
    inbox = Inbox()
    consumer = store.consumer("w", ["q"], 30.0, inbox)
    try:
        for i in range(3):
            assert consumer.take(1) == []  # idle, with one free slot
            inbox.woken.clear()
            (job,) = store.enqueue("q", [NewJob("t", str(i).encode())])
            # A wake may come first (a change the last round published reaches the watch late);
            # the job itself is handed over by the push, leased, without a reserve of ours.
            wait_for(lambda: inbox.offered != [], timeout=5)
            assert [item.id for _, item in inbox.offered] == [job]
            assert inbox.offered.pop()[1].deliveries == 1
            assert store.record(job).status == "running"  # type: ignore[union-attr]
            assert consumer.settle("q", [Outcome(job, "succeeded")], 60) == (1, [])
        assert consumer.take(1) == []
    finally:
        consumer.close()
    store.enqueue("q", [NewJob("t", b"after")])  # a closed consumer waits nowhere any more
    time.sleep(0.3)
    assert inbox.offered == [] and store.counts("q").ready == 1
    store.close()


def test_a_paused_queue_hands_nothing_to_its_idle_worker(redis_url: str) -> None:
    app = App(redis_url, lease=30.0)
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        wait_for(lambda: app.store.workers() != [])
        app.pause("default")
        job = add.delay(1, 1)
        time.sleep(0.5)
        assert job.status == "queued"
        app.resume("default")
        assert job.result(timeout=10) == 2
    app.store.close()


def test_jobs_meant_for_a_killed_idle_worker_go_to_a_live_one_at_once(redis_url: str) -> None:
    watch = open_store(redis_url)
    code = (
        "from baozi import App\n"
        "from baozi.worker import Worker\n"
        "from tests import jobtasks\n"
        f"app = App({redis_url!r}, lease=60.0)\n"
        "app.task(jobtasks.add)\n"
        "Worker(app, concurrency=2).run()\n"
    )
    dead = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        wait_for(lambda: len(watch.workers()) == 1)
        time.sleep(0.3)  # idle: waiting for jobs handed to it
    finally:
        dead.kill()  # SIGKILL while idle: its entry stays until it runs out
        dead.wait(10)
    app = App(redis_url, lease=60.0)
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        wait_for(lambda: len(app.store.workers()) == 2)
        time.sleep(0.3)
        started = time.monotonic()
        assert add.delay(2, 3).result(timeout=30) == 5
        # Not leased to the dead worker (which would hold it for the 60 s lease).
        assert time.monotonic() - started < 5
    watch.close()
    app.store.close()


def test_a_long_handed_job_does_not_hold_up_the_next(
    redis_url: str,
) -> None:
    app = App(redis_url, lease=30.0)
    sleep = app.task(jobtasks.sleep)
    with working(app, concurrency=3):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)  # idle, so the next jobs are handed over
        long = sleep.delay(3.0)
        wait_for(lambda: long.status == "running", timeout=10)
        started = time.monotonic()
        assert sleep.delay(0.01).result(timeout=10) == 0.01
        assert time.monotonic() - started < 2.0  # not after the 3 s job
        many = sleep.map([(0.2,)] * 6)  # more than the free slots: the rest wait their turn
        assert [job.result(timeout=30) for job in many] == [0.2] * 6
        assert long.result(timeout=10) == 3.0
    app.store.close()


def test_a_handed_job_past_its_timeout_fails_at_the_deadline(redis_url: str) -> None:
    from baozi import JobFailed

    app = App(redis_url, lease=30.0)
    sleep = app.task(timeout=0.3)(jobtasks.sleep)
    with working(app, concurrency=2):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(JobFailed) as caught:
            sleep.delay(3).result(timeout=30)
        assert caught.value.exc_type == "TimeoutError"
        assert time.monotonic() - started < 2.5
    app.store.close()


def test_jobs_handed_across_queues_never_exceed_the_workers_concurrency(redis_url: str) -> None:
    import threading

    app = App(redis_url, lease=30.0)
    lock, now, peak = threading.Lock(), [0], [0]

    def work(x: int) -> int:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.3)
        with lock:
            now[0] -= 1
        return x

    ta = app.task(name="ta", queue="a")(work)
    tb = app.task(name="tb", queue="b")(work)
    with working(app, queues=["a", "b"], concurrency=2):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)  # waiting idle on both queues, with one count of free slots
        jobs = [ta.delay(1), ta.delay(2), tb.delay(3), tb.delay(4), ta.delay(5), tb.delay(6)]
        assert [job.result(timeout=30) for job in jobs] == [1, 2, 3, 4, 5, 6]
    assert peak[0] == 2
    app.store.close()


def test_a_closing_worker_is_handed_nothing_and_counts_no_delivery(redis_url: str) -> None:
    app = App(redis_url, lease=30.0)
    sleep = app.task(jobtasks.sleep)
    worker = Worker(app, concurrency=4)
    worker.start()
    wait_for(lambda: app.store.workers() != [])
    long = sleep.delay(1.5)
    wait_for(lambda: long.status == "running", timeout=10)
    worker.close()  # finishing the long job; it takes nothing new
    time.sleep(0.2)
    later = [sleep.delay(0) for _ in range(5)]
    time.sleep(0.3)
    assert [job.status for job in later] == ["queued"] * 5
    assert all(job.attempts == 0 for job in later)
    assert worker.join(30)
    with working(app, concurrency=2):
        assert [job.result(timeout=30) for job in later] == [0] * 5
    assert all(job.attempts == 1 for job in later)
    app.store.close()


def test_a_job_handed_and_lost_on_the_way_runs_after_its_lease(
    private_redis: PrivateRedis,
) -> None:
    import redis

    app = App(private_redis.url, lease=1.0)
    add = app.task(jobtasks.add)
    admin = redis.Redis(port=private_redis.port)
    decoy = admin.pubsub()
    decoy.subscribe("decoy")
    assert decoy.get_message(timeout=10) is not None  # the subscription's confirmation
    with working(app, concurrency=1) as worker:
        wait_for(lambda: admin.zcard("baozi:q:default:w") == 1)
        for _ in range(10):
            # Its next job goes astray: leased to it, sent where it does not listen (unless the
            # worker, still settling in, names its own channel again first: then once more).
            admin.hset("baozi:wi", worker.owner, "1 1 decoy")
            lost = add.delay(1, 1)
            if decoy.get_message(timeout=2) is not None:
                break
            assert lost.result(timeout=30) == 2
        else:
            pytest.fail("no job was handed to the decoy channel")
        assert lost.status == "running"
        admin.client_kill_filter(_type="pubsub")  # and its hand-off line drops, as it would
        assert lost.result(timeout=30) == 2  # its lease ran out: reserved again, and run
        assert lost.attempts == 2
        # Nothing counts as still on its way: the one slot takes new jobs at once.
        for i in range(3):
            started = time.monotonic()
            assert add.delay(i, 1).result(timeout=30) == i + 1
            assert time.monotonic() - started < 2.0
    decoy.close()
    app.store.close()
