"""Every pool stops one running call when asked (Pool.cancel): its future fails with
baozi.Cancelled at once, its code stops, and the pool goes on running calls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from baozi import Cancelled
from baozi.pools import make_pool
from baozi.pools.base import Call, Pool

from . import jobtasks
from ._helpers import lines, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["thread", "process", "async"])
def pool(request: pytest.FixtureRequest) -> Any:
    made = make_pool(request.param, 2)
    yield made
    made.terminate()


def _started(path: Path) -> None:
    wait_for(lambda: "started" in lines(path), timeout=60)


def test_a_job_looping_in_python_code_stops_when_cancelled(pool: Pool, tmp_path: Path) -> None:
    log = tmp_path / "log"
    fn: Any = jobtasks.aspin if pool.kind == "async" else jobtasks.spin
    future = pool.submit(Call(fn, (str(log), 60.0), {}))
    _started(log)
    assert pool.cancel(future) is True
    assert isinstance(future.exception(timeout=1), Cancelled)  # failed at once
    assert pool.cancel(future) is False  # once
    # The pool goes on: both slots run calls again (a thread freed, a child replaced).
    again = [pool.submit(Call(jobtasks.add, (i, 1), {})) for i in range(2)]
    assert [f.result(timeout=60) for f in again] == [1, 2]
    time.sleep(0.5)  # the spin would have noted "finished" by now only if it ran on
    assert "finished" not in lines(log)
    if pool.kind == "thread":  # the thread left the call: no thread is stuck in it
        wait_for(lambda: pool.abandoned == 0, timeout=10)


def test_a_finished_call_is_not_cancelled(pool: Pool) -> None:
    future = pool.submit(Call(jobtasks.add, (1, 2), {}))
    assert future.result(timeout=60) == 3
    assert pool.cancel(future) is False
    assert future.result() == 3
    assert pool.cancel(Future()) is False  # nor one that is not the pool's


def test_in_a_thread_a_cancel_during_a_long_c_call_lands_when_it_returns(tmp_path: Path) -> None:
    pool = make_pool("thread", 1)
    log = tmp_path / "log"
    try:
        future = pool.submit(Call(jobtasks.nap_then_note, (str(log), 1.0), {}))
        _started(log)
        assert pool.cancel(future)
        assert isinstance(future.exception(timeout=1), Cancelled)
        wait_for(lambda: pool.abandoned == 0, timeout=10)  # the sleep returned, then it stopped
        assert lines(log) == ["started"]
        assert pool.submit(Call(jobtasks.add, (2, 2), {})).result(timeout=10) == 4
    finally:
        pool.terminate()


def test_a_thread_past_its_timeout_is_stopped_too(tmp_path: Path) -> None:
    pool = make_pool("thread", 1)
    log = tmp_path / "log"
    try:
        future = pool.submit(Call(jobtasks.spin, (str(log), 60.0), {}, timeout=0.5))
        assert isinstance(future.exception(timeout=30), TimeoutError)
        wait_for(lambda: pool.abandoned == 0, timeout=10)  # the thread is free again
        assert "finished" not in lines(log)
    finally:
        pool.terminate()


def test_a_call_cancelled_before_it_starts_never_runs(tmp_path: Path) -> None:
    pool = make_pool("process", 1)
    log = tmp_path / "log"
    try:
        first = pool.submit(Call(jobtasks.spin, (str(log), 60.0), {}))
        waiting = pool.submit(Call(jobtasks.note, (str(log), "second"), {}))
        _started(log)
        assert pool.cancel(waiting)
        assert pool.cancel(first)
        assert pool.submit(Call(jobtasks.add, (1, 1), {})).result(timeout=60) == 2
        assert lines(log) == ["started"]
    finally:
        pool.terminate()


def test_a_process_pool_child_past_its_memory_limit_is_replaced_after_that_job() -> None:
    pool = make_pool("process", 1, max_memory_per_child=150)
    try:
        first = pool.submit(Call(jobtasks.pid, (), {})).result(timeout=60)
        assert pool.submit(Call(jobtasks.pid, (), {})).result(timeout=60) == first  # kept
        big = pool.submit(Call(jobtasks.allocate, (300,), {})).result(timeout=60)
        assert big == first  # the job that passed the limit ran to its end in that child
        after = pool.submit(Call(jobtasks.pid, (), {})).result(timeout=60)
        assert after != first  # and the next one ran in a new child
    finally:
        pool.terminate()


@pytest.mark.parametrize("limit", [0, -1, "1", True])
def test_a_memory_limit_must_be_a_positive_number(limit: object) -> None:
    with pytest.raises(ValueError, match="max_memory_per_child must be a positive number"):
        make_pool("process", 1, max_memory_per_child=limit)


GEVENT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import sys, time
from baozi import Cancelled
from baozi.pools import make_pool
from baozi.pools.base import Call
from tests import jobtasks
import gevent

def cooperative(path):
    jobtasks.note(path, "started")
    while True:
        try:
            gevent.sleep(0.001)
        except Exception:
            pass

pool = make_pool("gevent", 10)
future = pool.submit(Call(cooperative, (sys.argv[1],), {}))
gevent.sleep(0.2)
assert pool.cancel(future)
assert isinstance(future.exception(timeout=1), Cancelled)
gevent.sleep(0.2)
assert pool.submit(Call(jobtasks.add, (1, 2), {})).result(timeout=10) == 3
pool.close()  # waits for every greenlet: the killed one is not among them any more
print("ok")
"""


def test_a_gevent_greenlet_is_killed_when_its_job_is_cancelled(tmp_path: Path) -> None:
    pytest.importorskip("gevent")
    log = tmp_path / "log"
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BAOZI_GEVENT": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok"]
    assert lines(log) == ["started"]
