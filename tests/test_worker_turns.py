"""A worker's slots on every store: a long job does not hold up the next, a job past its timeout
fails and the worker runs the next, the jobs of several queues share one count of slots, and a
closing worker takes nothing new.

Jobs are held by events, never by sleeps, so what the tests check is the order of things, not
the machine's speed. Each test first runs a job to completion, so that the worker is idle when
the jobs under test arrive: on Redis those are handed to it by their push (and the first may run
on the hand-off reader's own thread), on the other stores it is woken and takes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from baozi import App, JobFailed, Worker

from . import jobtasks
from ._helpers import wait_for, working


def _held(started: threading.Event, gate: threading.Event) -> Callable[[], str]:
    """A task body that says it started and then waits until the test opens ``gate``."""

    def hold() -> str:
        started.set()
        assert gate.wait(60), "the test never let the job go"
        return "done"

    return hold


def test_a_long_job_does_not_hold_up_the_next(url: str) -> None:
    app = App(url, lease=60.0)
    add = app.task(jobtasks.add)
    started, gate = threading.Event(), threading.Event()
    held = app.task(name="held")(_held(started, gate))
    with working(app, concurrency=2):
        try:
            assert add.delay(1, 1).result(timeout=30) == 2  # idle from here
            long = held.delay()
            assert started.wait(30)
            # The other slot runs job after job while the long one holds its own.
            assert [add.delay(i, 1).result(timeout=30) for i in range(5)] == [1, 2, 3, 4, 5]
            assert long.status == "running"
        finally:
            gate.set()
        assert long.result(timeout=30) == "done"
    app.store.close()


def test_a_job_past_its_timeout_on_an_idle_worker_fails_and_the_next_runs(url: str) -> None:
    app = App(url, lease=60.0)
    add = app.task(jobtasks.add)
    gate = threading.Event()
    stuck = app.task(name="stuck", timeout=0.3)(_held(threading.Event(), gate))
    with working(app, concurrency=2):
        try:
            assert add.delay(1, 1).result(timeout=30) == 2  # idle from here
            with pytest.raises(JobFailed) as caught:
                stuck.delay().result(timeout=30)  # a bound for the test, far past the 0.3 s
            assert caught.value.exc_type == "TimeoutError"
            assert add.delay(2, 3).result(timeout=30) == 5
        finally:
            gate.set()  # the abandoned call ends too
    app.store.close()


def test_jobs_of_several_queues_never_exceed_the_workers_concurrency(url: str) -> None:
    app = App(url, lease=60.0)
    lock, gate = threading.Lock(), threading.Event()
    running, peak = [0], [0]

    def work(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            assert gate.wait(60), "the test never let the job go"
        finally:
            with lock:
                running[0] -= 1
        return x

    ta = app.task(name="ta", queue="a")(work)
    tb = app.task(name="tb", queue="b")(work)
    quick = app.task(name="quick", queue="b")(jobtasks.add)
    with working(app, queues=["a", "b"], concurrency=2):
        try:
            assert quick.delay(1, 1).result(timeout=30) == 2  # idle on both queues from here
            jobs = [ta.delay(1), tb.delay(2), ta.delay(3), tb.delay(4), ta.delay(5), tb.delay(6)]
            wait_for(lambda: running[0] >= 2)
            # Both slots are held: two of the six are the worker's, four wait in their queues.
            assert sorted(job.status for job in jobs) == ["queued"] * 4 + ["running"] * 2
            assert running[0] == 2
        finally:
            gate.set()
        assert [job.result(timeout=30) for job in jobs] == [1, 2, 3, 4, 5, 6]
    assert peak[0] == 2
    app.store.close()


def test_a_closing_worker_takes_nothing_new_and_counts_no_delivery(url: str) -> None:
    # On Redis, a job the push script hands to a worker just as it closes is still read and
    # returned at once: the worker waits for a fence it publishes once off the idle lists.
    app = App(url, lease=60.0)
    add = app.task(jobtasks.add)
    started, gate = threading.Event(), threading.Event()
    held = app.task(name="held")(_held(started, gate))
    worker = Worker(app, concurrency=4)
    worker.start()
    try:
        assert add.delay(1, 1).result(timeout=30) == 2  # idle from here, four slots free
        long = held.delay()
        assert started.wait(30)
        worker.close()  # it finishes the long job and takes nothing new
        later = [add.delay(i, 0) for i in range(5)]
    finally:
        gate.set()
    assert worker.join(30)
    assert long.result(timeout=30) == "done"
    # A job handed to it on its way out comes back at once, as if never handed.
    # (A turn under way when close() was called used to take them now and then: close() now
    # waits for it to end.)
    try:
        wait_for(lambda: [job.status for job in later] == ["queued"] * 5, timeout=10)
    except AssertionError:
        seen = [(job.status, job.attempts) for job in later]
        raise AssertionError(f"the later jobs, (status, attempts): {seen}") from None
    assert [job.attempts for job in later] == [0] * 5
    with working(app, concurrency=2):
        assert [job.result(timeout=30) for job in later] == [0, 1, 2, 3, 4]
    assert [job.attempts for job in later] == [1] * 5
    app.store.close()
