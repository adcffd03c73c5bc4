"""The Redis store's hand-offs: a new job leased by its push to a worker waiting idle, and what
becomes of it when that worker is paused, killed or out of reach. What a busy, timed-out or
closing worker does with the jobs handed to it is the same on every store: see
test_worker_turns.py and the consumer part of the conformance suite."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from baozi import App, Worker
from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome
from baozi.testing.contract.consumer import Inbox

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
        assert time.monotonic() - started < 4.0  # woken by the change, not its 5 s idle wait


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


def test_an_enqueue_with_places_tells_a_job_handed_to_an_idle_consumer_as_running(
    redis_url: str,
) -> None:
    # The add script hands the first job to the consumer waiting idle with one free slot: it is
    # out of line by the end of the script, so its place is read as it is (running), and the
    # one after it is first in line.
    store = open_store(redis_url)
    inbox = Inbox()
    consumer = store.consumer("w", ["q"], 30.0, inbox)
    try:
        assert consumer.take(1) == []
        (handed, p1), (kept, p2) = store.enqueue_placed("q", [NewJob("t", b"1"), NewJob("t", b"2")])
        wait_for(lambda: inbox.offered != [], timeout=5)
        assert [item.id for _, item in inbox.offered] == [handed]
        assert p1 is not None and (p1.record.status, p1.rank) == ("running", None)
        assert p2 is not None and (p2.record.status, p2.rank) == ("queued", 0)
        assert p2 == store.job_snapshot(kept)
    finally:
        consumer.close()
        store.close()


def test_jobs_filed_across_queues_are_handed_to_the_consumers_idle_on_each(
    redis_url: str,
) -> None:
    # One script files both groups and hands the head of each queue to the consumer waiting
    # idle on it with one free slot; the job behind is first in line.
    store = open_store(redis_url)
    inbox_q, inbox_r = Inbox(), Inbox()
    consumers = [
        store.consumer("wq", ["q"], 30.0, inbox_q),
        store.consumer("wr", ["r"], 30.0, inbox_r),
    ]
    try:
        assert [c.take(1) for c in consumers] == [[], []]
        into_q, into_r = store.enqueue_across(
            [("q", [NewJob("t", b"1"), NewJob("t", b"2")], 0), ("r", [NewJob("t", b"3")], 0)]
        )
        wait_for(lambda: inbox_q.offered != [] and inbox_r.offered != [], timeout=5)
        (handed, p1), (kept, p2) = into_q
        ((other, p3),) = into_r
        assert [item.id for _, item in inbox_q.offered] == [handed]
        assert [item.id for _, item in inbox_r.offered] == [other]
        for place in (p1, p3):
            assert place is not None and (place.record.status, place.rank) == ("running", None)
        assert p2 is not None and (p2.record.status, p2.rank) == ("queued", 0)
        assert p2 == store.job_snapshot(kept)
    finally:
        for c in consumers:
            c.close()
        store.close()


@pytest.mark.parametrize("how", ["settle", "cancel"])
def test_a_released_dependent_is_handed_to_an_idle_consumer(redis_url: str, how: str) -> None:
    store = open_store(redis_url)
    (parent,) = store.enqueue("p", [NewJob("t", b"parent")])
    (child,) = store.enqueue(
        "q", [NewJob("t", b"child", depends_on=(parent,), on_dependency_failure="run")]
    )
    inbox = Inbox()
    consumer = store.consumer("w", ["q"], 30.0, inbox)
    try:
        assert consumer.take(1) == []  # idle on "q", with one free slot
        if how == "settle":
            store.reserve("p", "other", 30.0, 1)
            store.settle("p", "other", [Outcome(parent, "succeeded", result=b"1")], 60)
        else:
            store.cancel(parent)  # ...and the child runs anyway
        wait_for(lambda: inbox.offered != [], timeout=5)
        assert [item.id for _, item in inbox.offered] == [child]
        assert store.record(child).status == "running"  # type: ignore[union-attr]
    finally:
        consumer.close()
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
        f"app = App({redis_url!r}, lease=600.0)\n"
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
    app = App(redis_url, lease=600.0)
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        wait_for(lambda: len(app.store.workers()) == 2)
        time.sleep(0.3)
        # Not leased to the dead worker, which would hold it for the 600 s lease.
        assert add.delay(2, 3).result(timeout=30) == 5
    watch.close()
    app.store.close()


def test_a_job_handed_and_lost_on_the_way_runs_after_its_lease(
    private_redis: PrivateRedis,
) -> None:
    # Fault injection: a hand-off lost between the server and the worker cannot be made from
    # outside at a chosen moment, so this reads the store's idle list (P:q:NAME:w) and points
    # the worker's entry (P:wi) at a channel it does not read -- a private server, so the keys
    # are the default prefix's.
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
        # Nothing counts as still on its way: the one slot takes new jobs, each run once.
        for i in range(3):
            job = add.delay(i, 1)
            assert job.result(timeout=30) == i + 1
            assert job.attempts == 1
    decoy.close()
    app.store.close()


def test_a_burst_worker_runs_the_job_its_last_settle_handed_back_to_it(redis_url: str) -> None:
    # The settle that ends a job's last parent releases the job and, the worker being idle on
    # the queue, leases it straight to that worker: a burst worker must wait for it, not take
    # the lease for another worker's and stop (then the job went back, never run).
    app = App(redis_url)
    add = app.task(name="add")(jobtasks.add)
    left = []
    for _ in range(150):
        first, second = add.delay(1, 1), add.delay(2, 2)
        last = add.apply_async((3, 3), depends_on=[first.id, second.id])
        Worker(app, queues=["default"]).run(burst=True)
        if last.status != "succeeded":
            left.append(last.status)
    assert left == [], f"{len(left)} of 150 dependent jobs were left: {left}"
