"""Cancelling a running job: it is cancelled in the store at once, never retried, its late result
dropped, and its worker stops its code -- on every store and every pool."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baozi import App, JobCancelled

from . import jobtasks
from ._helpers import lines, wait_for, working

ROOT = Path(__file__).resolve().parent.parent


def _stopped_in_time(app: App, job_id: str, log: Path) -> None:
    """The job is cancelled at once, and its code stops: the worker runs the next job."""
    job = app.job(job_id)
    wait_for(lambda: "started" in lines(log), timeout=60)
    assert job.status == "running"
    assert job.cancel() is True
    assert job.status == "cancelled" and job.cancelled
    with pytest.raises(JobCancelled):
        job.result(timeout=1)
    assert job.cancel() is False  # once


def test_a_running_job_is_stopped_on_every_store(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baozi")
    app = App(url, lease=5.0)
    spin = app.task(name="spin", retries=3)(jobtasks.spin)
    add = app.task(name="add")(jobtasks.add)
    log = tmp_path / "log"
    with working(app, concurrency=1):  # one slot: the next job runs only once it is free
        job = spin.delay(str(log), 60.0)
        _stopped_in_time(app, job.id, log)
        assert add.delay(1, 2).result(timeout=30) == 3
    assert "finished" not in lines(log)
    assert job.status == "cancelled" and job.attempts == 1  # never retried
    assert lines(log) == ["started"]
    said = caplog.text
    assert f"job {job.id}: cancelled while running" in said
    assert "lost" not in said and "dropped" not in said  # a cancel is no lost lease


@pytest.mark.parametrize("pool", ["process", "async"])
def test_a_running_job_is_stopped_on_the_process_and_async_pools(pool: str, tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'store.db'}", lease=5.0)
    fn = jobtasks.aspin if pool == "async" else jobtasks.spin
    spin = app.task(name="spin")(fn)
    add = app.task(name="add")(jobtasks.add)
    log = tmp_path / "log"
    with working(app, pool=pool, concurrency=1):
        job = spin.delay(str(log), 60.0)
        _stopped_in_time(app, job.id, log)
        assert add.delay(2, 3).result(timeout=60) == 5
    assert lines(log) == ["started"]


def test_a_job_that_catches_the_cancel_sees_it_and_its_result_is_dropped(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'store.db'}", lease=5.0)
    careful = app.task(name="careful")(jobtasks.careful)
    log = tmp_path / "log"
    with working(app, concurrency=1):
        job = careful.delay(str(log))
        _stopped_in_time(app, job.id, log)
        # Its clean-up runs on in its thread after the cancel (a store read, then a note).
        wait_for(lambda: len(lines(log)) >= 3, timeout=30)
    assert lines(log) == ["started", "cleaned", "True"]  # current_job().cancelled said so
    assert job.status == "cancelled"  # what it returned after cleaning up was dropped


def test_a_cancelled_gevent_job_has_its_greenlet_killed(shared_url: str, tmp_path: Path) -> None:
    pytest.importorskip("gevent")
    app = App(shared_url)
    gspin = app.task(name="gspin")(jobtasks.gspin)
    add = app.task(name="add")(jobtasks.add)
    log = tmp_path / "log"
    job = gspin.delay(str(log))
    worker = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "-q", "-P", "gevent"],
        cwd=ROOT,
        env={**os.environ, "BAOZI_TEST_URL": shared_url},
        start_new_session=True,
    )
    try:
        _stopped_in_time(app, job.id, log)
        assert add.delay(1, 1).result(timeout=60) == 2
        time.sleep(1.0)  # the greenlet would have noted "finished" by now if it ran on
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(60) == 0
    assert lines(log) == ["started"]
