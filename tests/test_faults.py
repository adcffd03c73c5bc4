"""Faults around worker processes: nothing is left running when a supervisor or a worker is
killed, --burst leaves no job behind, a shutdown timeout puts what still runs back, and a storm of
SIGKILLs loses no job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from baozi import App, Worker

from . import faultapp, jobtasks
from ._helpers import lines, wait_for
from .conftest import REDIS_URL, fresh_prefix, redis_or_skip

ROOT = Path(__file__).resolve().parent.parent


def gone(pid: int) -> bool:
    """Whether a process has ended: no longer there, or a zombie no one has reaped yet (a child
    of a killed parent waits for whatever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@contextmanager
def worker_command(
    url: str, *args: str, stderr: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``baozi worker tests.faultapp:app ARGS`` in a session of its own; whatever of it is still
    running at the end of the block is killed."""
    env = {**os.environ, "BAOZI_TEST_URL": url}
    err = stderr.open("wb") if stderr is not None else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.faultapp:app", "-q", *args],
        cwd=ROOT,
        env=env,
        stderr=err,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        if err is not None:
            err.close()


@pytest.mark.parametrize("pool", ["thread", "process", "gevent"])
def test_killing_a_supervisor_stops_its_worker_processes(
    shared_url: str, tmp_path: Path, pool: str
) -> None:
    app = App(shared_url, lease=1.0)
    log = tmp_path / "done.txt"
    tick = app.task(name="tick")(faultapp.tick)
    jobs = tick.map([(str(log), i, 0.01) for i in range(5000)])
    with worker_command(shared_url, "-P", pool, "-p", "2", "-c", "2") as supervisor:
        wait_for(lambda: len(app.store.workers()) == 2 and len(lines(log)) >= 20, timeout=60)
        pids = [w.pid for w in app.store.workers()]
        os.kill(supervisor.pid, signal.SIGKILL)  # the supervisor only, not its group
        supervisor.wait(30)
        # Generous: a worker process notices at once, then finishes its jobs in flight.
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=10)
        ran = len(lines(log))
        time.sleep(1.0)
        assert len(lines(log)) == ran  # no job runs after its workers stopped
        assert ran < len(jobs)
    assert app.store.workers() == []  # each stopped as on SIGTERM, and said so
    assert app.store.counts("default").leased == 0  # its jobs in flight finished


def test_process_pool_children_of_a_killed_worker_exit_quietly(
    shared_url: str, tmp_path: Path
) -> None:
    app = App(shared_url, lease=1.0)
    started, err = tmp_path / "pids.txt", tmp_path / "stderr.txt"
    pid_then_sleep = app.task(name="pid_then_sleep")(faultapp.pid_then_sleep)
    jobs = pid_then_sleep.map([(str(started), 0.5)] * 20)
    with worker_command(shared_url, "-P", "process", "-c", "2", stderr=err) as worker:
        wait_for(lambda: len(lines(started)) >= 4, timeout=60)
        children = {int(pid) for pid in lines(started)}
        os.kill(worker.pid, signal.SIGKILL)  # the worker only: its pool children are orphaned
        worker.wait(30)
        wait_for(lambda: all(gone(pid) for pid in children), timeout=10)
        time.sleep(1.0)  # a child that lingered on would have answered (and failed) by now
    assert "Traceback" not in err.read_text(), err.read_text()
    assert len(children) == 2
    assert sum(j.status == "succeeded" for j in jobs) < len(jobs)


def test_burst_runs_the_jobs_a_dead_worker_held(shared_url: str) -> None:
    app = App(shared_url, lease=1.0)
    sleep = app.task(name="sleep")(jobtasks.sleep)
    jobs = sleep.map([(30,)] * 4)
    env = {**os.environ, "BAOZI_TEST_URL": shared_url}
    doomed = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "-q", "-c", "4"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for(lambda: app.store.counts("default").leased == 4, timeout=60)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(30)
    app.task(name="sleep")(jobtasks.identity)  # the burst does not wait 30 s for each
    started = time.monotonic()
    Worker(app, concurrency=4).run(burst=True)
    assert [j.status for j in jobs] == ["succeeded"] * 4
    assert [j.attempts for j in jobs] == [2] * 4
    assert time.monotonic() - started < 20  # about one lease, on a busy machine


def test_burst_leaves_a_live_workers_job_to_it(shared_url: str) -> None:
    app = App(shared_url, lease=1.0)
    sleep = app.task(name="sleep")(jobtasks.sleep)
    held = sleep.delay(30)
    env = {**os.environ, "BAOZI_TEST_URL": shared_url}
    live = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "-q", "-c", "1"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for(lambda: held.status == "running", timeout=60)
        quick = sleep.delay(0)
        started = time.monotonic()
        Worker(app, concurrency=2).run(burst=True)
        assert time.monotonic() - started < 20  # it did not wait for the 30 s job
        assert quick.status == "succeeded"
        assert held.status == "running" and live.poll() is None
    finally:
        os.killpg(live.pid, signal.SIGKILL)
        live.wait(30)


@pytest.mark.parametrize("pool", ["thread", "async", "process"])
def test_close_with_a_timeout_puts_the_jobs_still_running_back(
    shared_url: str, pool: str, tmp_path: Path
) -> None:
    app = App(shared_url, lease=1.0)
    started = tmp_path / "pids.txt"
    pid_then_sleep = app.task(name="pid_then_sleep")(faultapp.pid_then_sleep)
    quick, *slow = pid_then_sleep.map([(str(started), 0.5), (str(started), 30), (str(started), 30)])
    worker = Worker(app, pool=pool, concurrency=3)
    worker.start()
    wait_for(lambda: len(lines(started)) == 3, timeout=60)  # running (process children boot)
    t0 = time.monotonic()
    worker.close(timeout=3.0)
    assert worker.join(30)
    assert 3.0 <= time.monotonic() - t0 < 20
    assert worker.terminated
    assert quick.status == "succeeded"  # finished within the timeout
    assert [j.status for j in slow] == ["queued"] * 2
    assert [j.position() for j in slow] == [0, 1]  # back in their places


def test_close_without_a_timeout_still_waits_for_every_job(shared_url: str) -> None:
    app = App(shared_url, lease=1.0)
    sleep = app.task(jobtasks.sleep)
    jobs = sleep.map([(1.0,)] * 2)
    worker = Worker(app, concurrency=2, shutdown_timeout=5.0)
    worker.start()
    wait_for(lambda: app.store.counts("default").leased == 2)
    worker.close()  # the worker's shutdown_timeout, longer than the jobs
    assert worker.join(30)
    assert not worker.terminated
    assert [j.status for j in jobs] == ["succeeded"] * 2


@pytest.mark.parametrize("processes,slots", [("1", "2"), ("2", "1")])
def test_shutdown_timeout_option_puts_jobs_back_after_sigterm(
    shared_url: str, processes: str, slots: str, tmp_path: Path
) -> None:
    app = App(shared_url, lease=1.0)
    started = tmp_path / "pids.txt"
    pid_then_sleep = app.task(name="pid_then_sleep")(faultapp.pid_then_sleep)
    jobs = pid_then_sleep.map([(str(started), 30)] * 2)
    with worker_command(
        shared_url, "-p", processes, "-c", slots, "--shutdown-timeout", "1"
    ) as worker:
        wait_for(lambda: len(lines(started)) == 2, timeout=60)
        t0 = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert time.monotonic() - t0 < 15
    assert [j.status for j in jobs] == ["queued", "queued"]
    assert sorted(j.position() for j in jobs) == [0, 1]


@pytest.mark.parametrize("timeout", [-1, "5", True])
def test_a_bad_shutdown_timeout_fails_at_once(shared_url: str, timeout: object) -> None:
    app = App(shared_url)
    with pytest.raises(ValueError, match="shutdown timeout"):
        Worker(app, shutdown_timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown timeout"):
        Worker(app).close(timeout=timeout)  # type: ignore[arg-type]


def storm(store: str, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """bench/killstorm.py on one store (it makes and removes a store of its own)."""
    if store == "redis":
        redis_or_skip()
        options = ("--redis", REDIS_URL, "--prefix", fresh_prefix(), *options)
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "killstorm.py"), "--store", store, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_small_kill_storm_loses_no_job_and_repeats_only_killed_workers_jobs(store: str) -> None:
    # Workers of every pool kind; each worker process killed is replaced by its supervisor.
    ran = storm(
        store, "--jobs", "500", "--kills", "10", "--time-limit", "80", "--out", "", timeout=110
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    row = next(line for line in ran.stdout.splitlines() if line.startswith(f"| {store} "))
    assert "| pass |" in row


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_the_full_kill_storm_passes(store: str, tmp_path: Path) -> None:
    ran = storm(store, "--out", str(tmp_path / "storm.md"), timeout=800)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_a_signal_landing_while_the_main_thread_holds_an_events_lock_does_not_deadlock(
    shared_url: str,
) -> None:
    # A handler runs in the main thread, between two of its bytecodes: here, inside the lock of
    # the very event that SIGTERM sets (as when SIGUSR1 lands inside SIGTERM's handler). Setting
    # it from the handler would wait forever on a lock its own thread holds.
    worker = Worker(App(shared_url), concurrency=1)
    restore = worker._install_signals()
    try:
        with worker._closing._cond:  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler has run by now
        assert worker._closing.wait(10)
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_for(worker._terminating.is_set, timeout=10)
    finally:
        restore()


_FORKSERVER_EOF = """\
2026-12-07T12:07:51.336+00:00 WARNING baozi.worker: worker process 15707 exited (-9); starting another
Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/usr/lib/python3.11/multiprocessing/forkserver.py", line 258, in main
    fds = reduction.recvfds(s, MAXFDS_TO_SEND + 1)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/multiprocessing/reduction.py", line 159, in recvfds
    raise EOFError
EOFError
"""

_A_WORKER_FAULT = """\
Traceback (most recent call last):
  File "/src/baozi/worker.py", line 10, in run
    self._settle(job)
KeyError: 'x'
"""


def test_the_kill_storm_excuses_only_the_forkserver_of_a_killed_process(tmp_path: Path) -> None:
    # A worker process killed while asking its forkserver for a pool child leaves that forkserver
    # a half-read request: it prints an EOFError and exits with its owner. Any other traceback,
    # even beside one of those, fails the run.
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "killstorm_script", ROOT / "bench" / "killstorm.py"
    )
    assert spec and spec.loader
    killstorm = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    sys.modules[spec.name] = killstorm
    try:
        spec.loader.exec_module(killstorm)
    finally:
        sys.path.remove(str(ROOT / "bench"))
        del sys.modules[spec.name]
    (tmp_path / "a.stderr").write_text(_FORKSERVER_EOF)
    out = killstorm.Outcome(store="sqlite", jobs=1)
    killstorm._count_tracebacks(tmp_path, out)
    assert (out.tracebacks, out.orphaned_forkservers, out.problems) == (0, 1, [])
    (tmp_path / "b.stderr").write_text(
        _A_WORKER_FAULT + _FORKSERVER_EOF.removesuffix("EOFError\n") + "OSError: x\n"
    )
    out = killstorm.Outcome(store="sqlite", jobs=1)
    killstorm._count_tracebacks(tmp_path, out)
    assert (out.tracebacks, out.orphaned_forkservers) == (2, 1)
    assert out.problems == ["2 traceback(s) printed by the workers"]
