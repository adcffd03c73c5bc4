"""The gevent pool, in worker processes that patch the standard library at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baozi import App, JobFailed

from . import jobtasks
from ._helpers import lines, wait_for

pytest.importorskip("gevent")

ROOT = Path(__file__).resolve().parent.parent


def start_worker(url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "-q", "-P", "gevent", *args],
        cwd=ROOT,
        env={**os.environ, "BAOZI_TEST_URL": url},
        start_new_session=True,
    )


def test_a_gevent_worker_runs_a_thousand_blocking_sleeps_at_once(shared_url: str) -> None:
    app = App(shared_url)
    sleep = app.task(name="sleep")(jobtasks.sleep)
    jobs = sleep.map([(1.0,)] * 1000)
    started = time.monotonic()
    worker = start_worker(shared_url, "-c", "1000", "--burst")
    assert worker.wait(120) == 0
    assert all(j.status == "succeeded" for j in jobs)
    # time.sleep is patched: a thousand one-second sleeps overlap instead of taking 1000 s
    assert time.monotonic() - started < 30


def test_a_gevent_job_past_its_timeout_fails_and_the_pool_carries_on(shared_url: str) -> None:
    app = App(shared_url)
    slow = app.task(name="sleep_limited")(jobtasks.sleep)  # the worker's app gives it 0.3 s
    stuck, quick = slow.delay(10), slow.delay(0.01)
    worker = start_worker(shared_url, "-c", "10")
    try:
        with pytest.raises(JobFailed) as caught:
            stuck.result(timeout=30)
        assert caught.value.exc_type == "TimeoutError"
        assert quick.result(timeout=30) == 0.01
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_sigterm_lets_greenlets_finish_and_a_second_one_puts_them_back(
    shared_url: str, tmp_path: Path
) -> None:
    app = App(shared_url, lease=30)
    log = tmp_path / "done.txt"
    slow_note = app.task(name="slow_note")(jobtasks.slow_note)
    finishing = slow_note.map([(str(log), i, 0.5) for i in range(5)])
    worker = start_worker(shared_url, "-c", "5")
    wait_for(lambda: app.store.counts("default").leased == 5, timeout=30)
    worker.send_signal(signal.SIGTERM)  # close: the five finish
    assert worker.wait(30) == 0
    assert sorted(lines(log)) == ["0", "1", "2", "3", "4"]
    assert all(j.status == "succeeded" for j in finishing)

    stopped = slow_note.map([(str(log), f"late{i}", 30) for i in range(3)])
    worker = start_worker(shared_url, "-c", "5")
    wait_for(lambda: app.store.counts("default").leased == 3, timeout=30)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)  # terminate: killed, and back in the queue
    worker.wait(30)
    assert app.store.counts("default").ready == 3
    assert all(j.status == "queued" for j in stopped)


def test_two_gevent_processes_share_the_work(shared_url: str, tmp_path: Path) -> None:
    app = App(shared_url)
    log = tmp_path / "done.txt"
    note = app.task(name="note")(jobtasks.note)
    jobs = note.map([(str(log), i) for i in range(300)])
    worker = start_worker(shared_url, "-c", "100", "-p", "2", "--burst")
    assert worker.wait(120) == 0
    assert all(j.status == "succeeded" for j in jobs)
    assert sorted(int(x) for x in lines(log)) == list(range(300))


def test_asking_for_gevent_without_it_names_the_extra(tmp_path: Path) -> None:
    # A Python whose gevent cannot be imported: a module of that name that raises.
    fake = tmp_path / "gevent.py"
    fake.write_text("raise ImportError('no gevent here')\n")
    done = subprocess.run(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "-P", "gevent", "--burst"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}", "BAOZI_TEST_URL": "memory://x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "pip install 'baozi[gevent]'" in done.stderr
    assert "Traceback" not in done.stderr
