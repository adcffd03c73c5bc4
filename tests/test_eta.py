"""How long until a job is done: a job's snapshot estimates it from its place, the live workers'
slots and its task's run time as workers report it -- within twice the real wait with a worker
running -- and says None when nothing is known."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi import App, Worker
from baozi._eta import RUN_TIMES, Slots, estimate, run_time
from baozi.backends.base import JobPlace, JobRecord, WorkerInfo

from ._helpers import wait_for, working
from .conftest import _fresh

NAP = 0.3
"""How long the task of these tests runs."""


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def worked_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store a worker thread pool and the test share."""
    yield from _fresh(request, tmp_path)


def _app(url: str, seconds: float = NAP) -> App:
    app = App(url, lease=3.0)  # a heartbeat each second: a worker is seen at once

    @app.task(name="nap")
    def nap() -> None:
        time.sleep(seconds)

    return app


@pytest.mark.parametrize(("slots", "burst"), [(1, 1), (1, 4), (2, 6)])
def test_the_estimate_for_the_last_of_n_jobs_is_within_twice_its_real_wait(
    worked_url: str, slots: int, burst: int
) -> None:
    # An idle queue and one worker: a lone job, a few in a row on one slot, a burst on two.
    app = _app(worked_url)
    nap = app.tasks["nap"]
    with working(app, concurrency=slots):
        for warm in [nap.delay() for _ in range(3)]:
            warm.result(timeout=30)
        wait_for(lambda: run_time(app.store, "nap") is not None, timeout=10)
        wait_for(lambda: app.store.lease_holders(["default"]) == {}, timeout=10)  # idle again
        last = [nap.delay() for _ in range(burst)][-1]
        asked = time.monotonic()
        snap = last.snapshot()
        last.result(timeout=30)
        waited = time.monotonic() - asked
    assert snap.status in ("queued", "running"), snap
    assert snap.eta_seconds is not None, snap
    assert waited / 2 <= snap.eta_seconds <= waited * 2, (snap, waited)
    assert last.snapshot().eta_seconds == 0  # done


def test_with_nothing_known_the_estimate_is_none(url: str) -> None:
    app = _app(url, seconds=0.0)
    nap = app.tasks["nap"]
    first = nap.delay()
    assert first.snapshot().eta_seconds is None  # no worker, no run
    store = app.store
    idle = WorkerInfo("idle-worker", "host", 1, "thread", 4, ("default",))
    store.heartbeat(idle, ttl=60)
    assert first.snapshot().eta_seconds is None  # a worker, but no run of the task is known
    Worker(app).run(burst=True)  # its run time is reported as the worker stops
    assert run_time(store, "nap") is not None
    second = nap.delay()
    snap = second.snapshot()
    assert snap.status == "queued" and snap.eta_seconds is not None  # the idle worker's slots
    assert snap.eta_seconds < 5
    store.forget_worker("idle-worker")
    assert second.snapshot().eta_seconds is None  # a run time, but no worker to run it


def test_a_run_time_the_store_cannot_read_counts_as_unknown(url: str) -> None:
    app = _app(url)
    app.store.kv_set(RUN_TIMES, "nap", b"not json")
    assert run_time(app.store, "nap") is None
    app.store.kv_set(RUN_TIMES, "nap", b'{"seconds": -1}')
    assert run_time(app.store, "nap") is None
    app.store.kv_set(RUN_TIMES, "nap", b'{"seconds": 0.25, "runs": 3, "at": 0}')
    assert run_time(app.store, "nap") == 0.25


def _place(status: str, rank: int | None = None, **fields: float) -> JobPlace:
    rec = JobRecord(
        "1", "q", "t", status, 0, b"", 0, 0, 0.0, fields.get("started_at"), None, None, None, None
    )
    return JobPlace(dataclasses.replace(rec, due_at=fields.get("due")), rank)


@pytest.mark.parametrize(
    ("rank", "free", "expected"),
    [
        (0, 1, 2.0),  # a free slot: one run, its own
        (3, 4, 2.0),
        (0, 0, 4.0),  # every slot busy: one run ahead of it
        (3, 0, 6.0),  # 4 slots must free, 2 slots: two waves, then its own run
        (4, 0, 8.0),
        (5, 1, 8.0),
    ],
)
def test_a_queued_job_waits_a_run_per_wave_of_slots_ahead_of_it(
    rank: int, free: int, expected: float
) -> None:
    assert estimate(_place("queued", rank), 2.0, Slots(2, free)) == pytest.approx(expected)


def test_a_known_completion_rate_replaces_the_waves() -> None:
    # 5 slots must free at 10 jobs a second: 0.5 s, then its own 2 s run.
    assert estimate(_place("queued", 6), 2.0, Slots(4, 2), rate=10.0) == pytest.approx(2.5)
    assert estimate(_place("queued", 0), 2.0, Slots(4, 2), rate=10.0) == pytest.approx(2.0)


def test_running_scheduled_ended_and_unknown_jobs() -> None:
    now = 1000.0
    running = _place("running", started_at=now - 0.5)
    assert estimate(running, 2.0, Slots(1, 0), now=now) == pytest.approx(1.5)
    overdue = _place("running", started_at=now - 5)
    assert estimate(overdue, 2.0, Slots(1, 0), now=now) == 0.0
    later = _place("scheduled", due=now + 10)
    assert estimate(later, 2.0, Slots(1, 1), now=now) == pytest.approx(12.0)
    for ended in ("succeeded", "failed", "cancelled"):
        assert estimate(_place(ended), None, Slots(0, 0)) == 0.0
    assert estimate(_place("queued", 0), None, Slots(1, 1)) is None  # no run time
    assert estimate(_place("queued", 0), 2.0, Slots(0, 0)) is None  # no worker
    assert estimate(_place("waiting"), 2.0, Slots(1, 1)) is None
    assert estimate(_place("queued", None), 2.0, Slots(1, 1)) is None  # a store with no rank
