"""A store outage is logged once when it starts (WARNING) and once when it ends (INFO), however
many parts of a worker keep retrying meanwhile; an error the server answered with never reads as
the server being unreachable."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from baozi import App, StoreError, StoreUnavailable, Worker
from baozi._outage import Outage, describe

from . import jobtasks
from ._helpers import wait_for, working
from ._redisserver import PrivateRedis


@pytest.fixture
def server(private_redis: PrivateRedis) -> PrivateRedis:
    """A redis-server of this test's own (conftest's fixture), to stop and start."""
    return private_redis


def _said(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("baozi") and r.levelno == level]


def test_an_outage_is_one_warning_when_it_starts_and_one_info_when_it_ends(
    server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baozi")
    app = App(server.url + "?retry=0.2", lease=1.5)  # the keeper renews every 0.5 s
    add = app.task(jobtasks.add)
    with working(app, concurrency=2) as worker:
        assert add.delay(1, 2).result(timeout=30) == 3
        # The result is stored once the settle ran; the worker counts the job done once its
        # reply came back. Killed in between, the settle is tried again after the restart,
        # finds the job settled, and says so (a second warning this test is not about).
        session = worker._session
        assert session is not None
        wait_for(lambda: not session.running_ids(), timeout=10)
        caplog.clear()
        server.kill()  # the loop, the keeper, the change feed and the hand-off reader all fail
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


def test_a_worker_whose_store_never_answers_stops_with_one_line() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "--url"]
        + [f"redis://127.0.0.1:{port}/0?retry=0.2"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count(" WARNING ") <= 1
    assert f"StoreUnavailable: Redis at 127.0.0.1:{port}/0 did not answer" in done.stderr


def test_an_error_the_server_answered_with_is_not_called_unreachable() -> None:
    refused = StoreError("Redis at 127.0.0.1:6379/0 refused reserve: OOM command not allowed")
    assert describe(refused).startswith("answered with an error: ")
    assert describe(StoreUnavailable("gone")).startswith("unreachable: ")


def test_a_second_failure_during_an_outage_is_only_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="baozi.store")
    outage = Outage("redis://user:secret@example.invalid/0")
    for _ in range(5):
        outage.failed(StoreUnavailable("down"), "a test")
    outage.failed(StoreUnavailable("down"), "another caller")
    outage.ok("a test")  # another caller still fails: not over yet
    outage.ok("another caller")
    outage.ok("another caller")
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 5 + [logging.INFO]
    outage.failed(StoreUnavailable("down"), "a worker that then stops")
    outage.withdraw("a worker that then stops")
    outage.failed(StoreUnavailable("down"), "a test")  # a new outage: news again
    assert caplog.records[-1].levelno == logging.WARNING
    assert "secret" not in caplog.text


def test_a_server_still_loading_its_data_is_not_said_to_be_silent() -> None:
    import redis

    from baozi.backends.redis._server import Server

    server = Server("redis://127.0.0.1:1/0")
    loading = redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory")
    message = str(server._unavailable("reserve", loading))
    assert "still loading its data set" in message and "did not answer" not in message
    server.client.close()


def test_a_refused_subscribe_is_a_refusal_in_every_message(
    server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    admin = redis.Redis(port=server.port)
    admin.execute_command("ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe")
    admin.close()
    caplog.set_level(logging.INFO, logger="baozi")
    app = App(f"redis://nosub:pw@127.0.0.1:{server.port}/0?retry=0.2", lease=2.0)
    app.task(jobtasks.add)
    worker = Worker(app)
    try:
        with pytest.raises(StoreError, match="refused to subscribe") as caught:
            worker.run()
    finally:
        app.store.close()  # no feed of this store retries on past the test
    assert not isinstance(caught.value, StoreUnavailable)
    said = caplog.text + str(caught.value)
    assert "unreachable" not in said and "did not answer" not in said
    assert "pw@" not in caplog.text  # the password never reaches the log
    assert len(_said(caplog, logging.WARNING)) == 1


def test_a_refused_change_feed_is_a_refusal_to_its_first_waiter_and_at_once_to_the_next(
    server: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    from baozi.backends import open_store

    admin = redis.Redis(port=server.port)
    admin.execute_command("ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe")
    admin.close()
    caplog.set_level(logging.INFO, logger="baozi")
    store = open_store(f"redis://nosub:pw@127.0.0.1:{server.port}/0?retry=0.2")
    try:
        with pytest.raises(StoreError, match="refused to subscribe") as caught:
            store.change_token()
        assert not isinstance(caught.value, StoreUnavailable)
        started = time.monotonic()
        with pytest.raises(StoreError, match="refused to subscribe"):
            store.change_token()
        assert time.monotonic() - started < 0.5  # the feed stopped asking: no second wait
    finally:
        store.close()
    assert "did not answer" not in caplog.text and "pw@" not in caplog.text
    assert len(_said(caplog, logging.WARNING)) == 1


def test_the_web_observer_reports_an_outage_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from baozi.backends import open_store
    from baozi.web.stats import Observer

    caplog.set_level(logging.INFO, logger="baozi")
    store = open_store("memory://observer-outage")
    down = threading.Event()
    down.set()
    queues = store.queues

    def flaky() -> list[str]:
        if down.is_set():
            raise StoreUnavailable("the store is away")
        return queues()

    monkeypatch.setattr(store, "queues", flaky)
    observer = Observer(lambda: store, interval=0.02)
    observer.start()
    try:
        wait_for(lambda: _said(caplog, logging.WARNING))
        time.sleep(0.3)  # a dozen more samples fail meanwhile
        down.clear()
        wait_for(lambda: _said(caplog, logging.INFO))
        time.sleep(0.1)
    finally:
        observer.stop()
        store.close()
    ours = [r for r in caplog.records if "observer-outage" in r.getMessage()]
    assert [r.levelno for r in ours] == [logging.WARNING, logging.INFO]


def test_a_failure_that_is_no_store_error_is_a_bug_logged_with_its_traceback_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("memory://bug")
    with caplog.at_level(logging.DEBUG, logger="baozi"):
        for _ in range(3):
            try:
                raise KeyError("a bug in the loop")
            except KeyError as exc:
                outage.failed(exc, "worker w1, taking jobs")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3 and all(r.exc_info for r in errors)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_take_that_fails_after_its_settle_leaves_the_settle_standing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The settle of a finished job and the take after it are one turn: when only the take
    fails (the store went away between the two), the job is done -- settled once, with no
    warning that its result was dropped -- and the worker backs off and goes on."""
    caplog.set_level(logging.INFO, logger="baozi")
    app = App("memory://take-fails-after-settle", lease=5)
    store = app.store
    armed = threading.Event()
    reserve = store.reserve

    def flaky(*args: object, **kwargs: object) -> list[object]:
        if armed.is_set():  # the settle of the arming job has just been done
            armed.clear()
            raise StoreUnavailable("the store went away")
        return reserve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "reserve", flaky)

    @app.task(name="arm")
    def arm(n: int) -> int:
        if n == 7:
            armed.set()  # the next reserve -- the take after this job's settle -- fails
        return n

    with working(app, concurrency=1):
        job = arm.delay(7)
        assert job.result(timeout=30) == 7
        wait_for(lambda: _said(caplog, logging.WARNING))  # the failed take, as an outage
        assert arm.delay(8).result(timeout=30) == 8  # and the worker goes on
        wait_for(lambda: _said(caplog, logging.INFO) and "works again" in caplog.text)
    assert not armed.is_set()  # the fault did happen
    assert "lost" not in caplog.text and "dropped" not in caplog.text
    assert job.attempts == 1 and job.status == "succeeded"
    (warning,) = _said(caplog, logging.WARNING)
    assert "went away" in warning.getMessage()
