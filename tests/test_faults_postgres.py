"""Faults around a PostgreSQL store, through baozi's public API: a server that stops (a fast
shutdown) or dies (SIGKILL to the postmaster) and comes back, and a storm of SIGKILLs on the
workers.

- A producer keeps trying for the URL's ``?retry=`` seconds: it raises StoreUnavailable only
  after them, and succeeds when the server is back within them.
- A worker rides out the outage by itself: it reconnects, logs the outage once, and runs every
  job exactly once, whether the restart falls between jobs or while jobs run.
- A kill storm on the shared server loses no job and repeats only jobs a killed worker held.

The restart tests run on a cluster of their own (tests/_pgserver.py: killed and removed after
the test, its schema with it); the storm runs on the test server (BAOZI_TEST_POSTGRES) in a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from baozi import App, StoreUnavailable, Worker

from . import jobtasks
from ._helpers import lines, wait_for, working
from ._pgserver import PrivatePostgres
from .conftest import (
    POSTGRES_URL,
    drop_postgres_schema,
    fresh_schema,
    postgres_or_skip,
    private_postgres_or_skip,
)
from .test_faults import worker_command

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "faults"  # on a cluster of the test's own, which goes with everything in it

OUTAGES = ["stop", "kill"]
"""How the server goes away: a fast shutdown (SIGINT: it says goodbye to each client), or a crash
(SIGKILL to the postmaster: connections just end, and the start does crash recovery)."""


@pytest.fixture
def server(private_postgres: PrivatePostgres) -> PrivatePostgres:
    """A PostgreSQL cluster of this test's own (conftest's fixture), to stop and start."""
    return private_postgres


@pytest.fixture
def apps() -> Iterator[Callable[..., App]]:
    """``App(...)`` whose store is closed after the test: its threads (the result watcher, the
    lease renewer) do not keep calling a cluster that is gone into the tests that follow."""
    made: list[App] = []

    def make(url: str, **options: object) -> App:
        app = App(url, **options)  # type: ignore[arg-type]
        made.append(app)
        return app

    yield make
    for app in made:
        app.store.close()


def _go_away(server: PrivatePostgres, how: str) -> None:
    if how == "kill":
        server.kill()
    else:
        server.stop()


def _later(seconds: float, action: Callable[[], None]) -> Future[None]:
    """Run ``action`` in a thread after ``seconds``; its future raises what it raised."""
    pool = ThreadPoolExecutor(1)

    def run() -> None:
        time.sleep(seconds)
        action()

    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


def _said(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("baozi") and r.levelno == level]


# -- producers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", OUTAGES)
def test_a_producer_raises_store_unavailable_only_after_its_retry(
    server: PrivatePostgres, apps: Callable[..., App], tmp_path: Path, how: str
) -> None:
    retry = 1.5
    app = apps(server.url(SCHEMA, retry=retry))
    log = tmp_path / "done.txt"
    note = app.task(name="note")(jobtasks.note)
    note.delay(str(log), "before")  # the schema exists, and the store holds connections to it
    _go_away(server, how)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        note.delay(str(log), "refused")
    waited = time.monotonic() - started
    assert retry - 0.05 <= waited < retry + 10
    assert isinstance(caught.value, ConnectionError)
    assert f"127.0.0.1:{server.port}" in str(caught.value)  # it says which store
    server.start()
    Worker(app, concurrency=2).run(burst=True)
    assert lines(log) == ["before"]  # kept across the outage; the refused job was never filed


@pytest.mark.parametrize("how", OUTAGES)
def test_a_producer_succeeds_when_the_server_is_back_within_its_retry(
    server: PrivatePostgres, apps: Callable[..., App], tmp_path: Path, how: str
) -> None:
    retry = 20.0
    app = apps(server.url(SCHEMA, retry=retry))
    log = tmp_path / "done.txt"
    note = app.task(name="note")(jobtasks.note)
    note.delay(str(log), "before")
    _go_away(server, how)
    back = _later(1.0, server.start)
    started = time.monotonic()
    job = note.delay(str(log), "during")  # waits for the server, however long it takes to return
    waited = time.monotonic() - started
    back.result(timeout=30)
    assert 0.9 <= waited < retry  # it waited for the server (the timer started just before)
    Worker(app, concurrency=2).run(burst=True)
    assert job.result(timeout=30) == "during"
    assert sorted(lines(log)) == ["before", "during"]  # each once


# -- workers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", OUTAGES)
def test_a_worker_rides_out_a_restart_between_jobs_and_runs_each_job_once(
    server: PrivatePostgres, apps: Callable[..., App], tmp_path: Path, how: str
) -> None:
    app = apps(server.url(SCHEMA, retry=10), lease=4.0)
    log = tmp_path / "done.txt"
    note = app.task(name="note")(jobtasks.note)
    with working(app, concurrency=2) as worker:
        before = note.map([(str(log), f"before-{i}") for i in range(10)])
        for job in before:
            job.result(timeout=30)
        due_after = [note.apply_async((str(log), f"due-{i}"), delay=3.0) for i in range(5)]
        wait_for(lambda: app.store.counts("default").leased == 0)  # between jobs: none running
        waiting = ThreadPoolExecutor(1)
        awaited = waiting.submit(due_after[0].result, 60)  # a result() that spans the outage
        waiting.shutdown(wait=False)
        _go_away(server, how)
        time.sleep(1.5)  # the worker's loop, heartbeat and change feed all find it gone
        server.start()
        after = note.map([(str(log), f"after-{i}") for i in range(10)])  # the same worker's
        for job in [*due_after, *after]:
            job.result(timeout=60)
        assert awaited.result(timeout=60) == "due-0"
        assert not worker.join(0)  # still running: it never gave up
    runs = Counter(lines(log))
    expected = [
        f"{kind}-{i}" for kind, n in [("before", 10), ("due", 5), ("after", 10)] for i in range(n)
    ]
    assert sorted(runs) == sorted(expected) and max(runs.values()) == 1  # none lost, none twice
    jobs = [*before, *due_after, *after]
    assert all(job.status == "succeeded" and job.attempts == 1 for job in jobs)


@pytest.mark.parametrize("how", OUTAGES)
def test_jobs_running_through_a_restart_finish_once(
    server: PrivatePostgres, apps: Callable[..., App], tmp_path: Path, how: str
) -> None:
    # As the Redis test does: four jobs run while the server is away; their outcomes wait for
    # it, and their leases (8 s) outlast the outage, so none runs again.
    app = apps(server.url(SCHEMA, retry=0.3), lease=8.0)
    log = tmp_path / "done.txt"
    slow_note = app.task(name="slow_note")(jobtasks.slow_note)
    jobs = slow_note.map([(str(log), i, 0.4) for i in range(12)])
    with working(app, concurrency=4):
        wait_for(lambda: app.store.counts("default").leased == 4)
        _go_away(server, how)  # four jobs are in flight, held by this worker
        with pytest.raises(StoreUnavailable):
            slow_note.delay(str(log), 99, 0)
        time.sleep(1.0)  # they finish while the server is away
        server.start()
        for job in jobs:
            job.result(timeout=60)
    runs = Counter(lines(log))
    assert sorted(int(k) for k in runs) == list(range(12))  # every one, and never the refused 99
    assert max(runs.values()) == 1
    assert all(job.attempts == 1 for job in jobs)


def test_an_outage_is_one_warning_when_it_starts_and_one_info_when_it_ends(
    server: PrivatePostgres, apps: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baozi")
    app = apps(server.url(SCHEMA, retry=0.2), lease=1.5)  # the keeper renews every 0.5 s
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        assert add.delay(1, 2).result(timeout=30) == 3
        caplog.clear()
        server.kill()  # the loop, the keeper and the change feed all fail
        time.sleep(3)
        server.start()
        wait_for(lambda: _said(caplog, logging.INFO), timeout=30)
        assert add.delay(2, 3).result(timeout=30) == 5
        time.sleep(1)  # whatever else noticed the outage has had time to speak
    (warning,) = _said(caplog, logging.WARNING)
    assert f"127.0.0.1:{server.port}" in warning.getMessage()
    assert "unreachable" in warning.getMessage() and warning.exc_info is None
    assert not _said(caplog, logging.ERROR)
    back = [r for r in _said(caplog, logging.INFO) if "works again" in r.getMessage()]
    assert len(back) == 1


def test_a_worker_whose_postgres_never_answers_stops_with_one_line() -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "--url"]
        + [f"postgresql://postgres@127.0.0.1:{port}/postgres?schema={SCHEMA}&retry=0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count(" WARNING ") <= 1
    assert "StoreUnavailable: " in done.stderr and f"127.0.0.1:{port}" in done.stderr


def _hog(server: PrivatePostgres, seconds: float) -> list[object]:
    """Take every connection the server frees for ``seconds``, and keep them."""
    import psycopg

    held: list[object] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            held.append(server.connect())
        except psycopg.OperationalError:
            time.sleep(0.01)
    return held


def test_a_replacement_worker_process_that_cannot_open_the_store_prints_no_traceback(
    tmp_path: Path,
) -> None:
    # What a kill storm met on a server whose connections another test run had taken: the
    # supervisor's replacement for a killed worker process imports the app, App() opens the
    # store, and the server answers "too many clients" for the whole ?retry= window.
    private_postgres_or_skip()
    err = tmp_path / "stderr.txt"
    with PrivatePostgres(max_connections=20) as server:
        url = server.url(SCHEMA, retry=0.5)
        apps_store = App(url).store  # makes the schema
        apps_store.close()
        with worker_command(url, "-p", "2", "-c", "1", stderr=err):
            probe = App(url)
            wait_for(lambda: len(probe.store.workers()) == 2, timeout=60)
            victim = probe.store.workers()[0].pid
            probe.store.close()
            os.kill(victim, signal.SIGKILL)
            held = _hog(server, 3.0)  # every slot, the killed worker's too, as it frees them
            try:
                wait_for(lambda: "exited (1)" in err.read_text(), timeout=30)
            finally:
                for conn in held:
                    conn.close()  # type: ignore[attr-defined]
            probe = App(url)
            wait_for(lambda: len(probe.store.workers()) == 2, timeout=60)  # replaced in the end
            probe.store.close()
    said = err.read_text()
    assert "StoreUnavailable" in said and "Traceback" not in said, said[-3000:]


# -- the kill storm -----------------------------------------------------------------------------


def storm(*options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """bench/killstorm.py on the test PostgreSQL server, in a schema of its own: the storm drops
    it when it ends, and so does this, should the storm itself have been stopped."""
    postgres_or_skip()
    schema = fresh_schema()
    try:
        return subprocess.run(
            [sys.executable, str(ROOT / "bench" / "killstorm.py"), "--store", "postgres"]
            + ["--postgres", POSTGRES_URL, "--schema", schema, *options],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        drop_postgres_schema(schema)


def test_a_small_kill_storm_on_postgres_loses_no_job_and_repeats_only_killed_workers_jobs() -> None:
    # Workers of every pool kind; each worker process killed is replaced by its supervisor.
    ran = storm("--jobs", "500", "--kills", "10", "--time-limit", "80", "--out", "", timeout=110)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    row = next(line for line in ran.stdout.splitlines() if line.startswith("| postgres "))
    assert "| pass |" in row


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_full_kill_storm_on_postgres_passes(tmp_path: Path) -> None:
    ran = storm("--out", str(tmp_path / "storm.md"), timeout=800)
    assert ran.returncode == 0, ran.stdout + ran.stderr
