"""The RabbitMQ job transport: RabbitMQ delivers the jobs, the store keeps their records.

Every test runs against the real broker (BAOZI_TEST_AMQP) and real stores, on queues of its own
(``baozi.<queue>`` and its dead-letter queue are deleted after)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from baozi import App, NotSupported
from baozi.amqp import transport as transport_module
from baozi.amqp.transport import GRACE, TransportStore, amqp_queue, dead_queue
from baozi.backends.base import NewJob

from ._helpers import wait_for, working
from .test_amqp_queue import AMQP_URL, _amqp_or_skip

ROOT = Path(__file__).resolve().parents[1]


def _delete_queues(*queues: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in queues:
        channel.queue_delete(amqp_queue(queue))
        channel.queue_delete(dead_queue(queue))
    connection.close()


@pytest.fixture
def qname() -> Iterator[str]:
    """A job queue of this test's own; its RabbitMQ queues are deleted after."""
    _amqp_or_skip()
    queue = f"t{uuid.uuid4().hex[:10]}"
    yield queue
    _delete_queues(queue)


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from .conftest import _fresh

    yield from _fresh(request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from .conftest import _fresh

    yield from _fresh(request, tmp_path)


def _message_count(queue: str) -> int:
    """Ready messages in ``queue``; 0 while it is not declared yet (publishes are
    asynchronous)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        count: int = connection.channel().queue_declare(queue, passive=True).method.message_count
        return count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return 0
        raise
    finally:
        if connection.is_open:
            connection.close()


def test_jobs_run_through_rabbitmq_with_records_in_the_store(store_url: str, qname: str) -> None:
    app = App(store_url, transport=AMQP_URL)
    ran: list[int] = []
    lock = threading.Lock()

    @app.task(queue=qname)
    def double(x: int) -> int:
        with lock:
            ran.append(x)
        return 2 * x

    assert isinstance(app.store, TransportStore)
    jobs = [double.delay(i) for i in range(200)]
    # The records are the store's; the messages wait in RabbitMQ.
    assert {j.status for j in jobs} == {"queued"}
    wait_for(lambda: _message_count(amqp_queue(qname)) == 200, 10)
    with working(app, concurrency=4):
        assert [j.result(timeout=30) for j in jobs] == [2 * i for i in range(200)]
    assert sorted(ran) == list(range(200))  # each ran once
    assert _message_count(amqp_queue(qname)) == 0
    # Every mark was cleared once its message was confirmed.
    assert app.store.inner.pending(qname, time.time() + 3600) == []


def test_jobs_filed_across_queues_are_marked_in_the_same_step_and_published(
    shared_store_url: str, qname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"{qname}-b"
    app = App(shared_store_url, transport=AMQP_URL)
    store = app.store
    assert isinstance(store, TransportStore)
    groups = [(qname, [NewJob("t", b"1"), NewJob("t", b"2")], 0), (other, [NewJob("t", b"3")], 0)]
    try:
        # A producer that dies before it publishes leaves every job marked, GRACE ahead.
        with monkeypatch.context() as patched:
            patched.setattr(store.link, "publish", lambda *args: None)
            before = time.time()
            silent = store.enqueue_across(groups)
        for (queue, _, _), placed in zip(groups, silent, strict=True):
            marks = dict(store.inner.pending(queue, time.time() + 3600))
            assert sorted(marks) == sorted(job_id for job_id, _ in placed)
            assert all(before + GRACE <= at <= time.time() + GRACE for at in marks.values())
            store.inner.clear_pending(queue, dict.fromkeys(marks))  # as if published since
        # Published: each message confirmed clears its job's mark.
        into_q, into_other = store.enqueue_across(groups)
        assert [len(into_q), len(into_other)] == [2, 1]
        wait_for(
            lambda: (
                (_message_count(amqp_queue(qname)), _message_count(amqp_queue(other))) == (2, 1)
            ),
            10,
        )
        wait_for(
            lambda: (
                [store.inner.pending(q, time.time() + 3600) for q in (qname, other)] == [[], []]
            ),
            10,
        )
        # What RabbitMQ cannot do is refused before anything is written.
        with pytest.raises(NotSupported, match="priorit"):
            store.enqueue_across(
                [(other, [NewJob("t", b"4")], 0), (qname, [NewJob("t", b"5", 5)], 0)]
            )
        assert store.inner.counts(other).ready == 2
    finally:
        _delete_queues(other)
        store.close()


def test_what_rabbitmq_cannot_do_raises_not_supported_at_the_call(
    qname: str, tmp_path: Path
) -> None:
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname)
    def noop() -> None:
        return None

    job = noop.delay()
    with pytest.raises(NotSupported, match="ahead"):
        job.position()
    with pytest.raises(NotSupported, match="first in, first out"):
        noop.apply_async(front=True)
    with pytest.raises(NotSupported, match="priorit"):
        noop.apply_async(priority=5)
    app.queue(f"{qname}-lifo", order="lifo")

    @app.task(queue=f"{qname}-lifo")
    def lifo() -> None:
        return None

    try:
        with pytest.raises(NotSupported, match="first in, first out"):
            lifo.delay()
    finally:
        _delete_queues(f"{qname}-lifo")
    snap = job.snapshot()
    assert snap.position is None and snap.position_supported is False
    assert snap.describe() == "queued"
    # A store URL of amqp:// is refused, naming the two things RabbitMQ is used for.
    with pytest.raises(NotSupported, match="baozi.Queue"):
        App(AMQP_URL)
    with pytest.raises(ValueError, match="RabbitMQ URL"):
        App(f"sqlite:///{tmp_path / 's.db'}", transport="redis://127.0.0.1/0")


def test_the_web_api_says_the_position_is_not_supported(qname: str, tmp_path: Path) -> None:
    import httpx

    from ._web import served

    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname)
    def noop() -> None:
        return None

    with served(app) as base:
        with httpx.Client(base_url=base) as http:
            posted = http.post("/api/jobs", json={"task": noop.name, "args": []})
            assert posted.status_code == 202, posted.text
            body = posted.json()
            assert body["position"] is None and body["position_supported"] is False
            got = http.get(body["url"]).json()
            assert got["status"] == "queued"
            assert got["position"] is None and got["position_supported"] is False


def test_a_delayed_job_is_published_when_due_by_a_worker(qname: str, tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)
    started: list[float] = []

    @app.task(queue=qname)
    def stamp() -> None:
        started.append(time.time())

    with working(app, concurrency=2):
        before = time.time()
        job = stamp.apply_async(delay=2.0)
        assert job.status == "scheduled"
        time.sleep(0.5)
        assert _message_count(amqp_queue(qname)) == 0  # nothing waits in RabbitMQ meanwhile
        job.result(timeout=15)
    assert started[0] >= before + 2.0
    assert started[0] < before + 2.0 + 2 * transport_module.SCAN + 1.0


def test_a_retried_job_comes_back_after_its_backoff(qname: str, tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)
    tries: list[float] = []

    @app.task(queue=qname, retries=2, retry_backoff=0.5)
    def flaky() -> str:
        tries.append(time.time())
        if len(tries) < 3:
            raise RuntimeError("not yet")
        return "ok"

    with working(app, concurrency=2):
        job = flaky.delay()
        assert job.result(timeout=20) == "ok"
    assert len(tries) == 3
    assert tries[1] - tries[0] >= 0.5


def test_a_cancelled_job_is_a_tombstone_its_message_is_dropped(qname: str, tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)
    ran: list[int] = []

    @app.task(queue=qname)
    def work(i: int) -> int:
        ran.append(i)
        return i

    jobs = [work.delay(i) for i in range(5)]
    assert jobs[2].cancel()
    wait_for(lambda: _message_count(amqp_queue(qname)) == 5, 10)  # its message is still there
    with working(app, concurrency=2):
        for i in (0, 1, 3, 4):
            assert jobs[i].result(timeout=20) == i
        wait_for(lambda: _message_count(amqp_queue(qname)) == 0, 10)
    assert sorted(ran) == [0, 1, 3, 4]
    assert jobs[2].status == "cancelled"


def _take_and_die(queue: str, times: int, job_id: str) -> None:
    """A consumer that takes the message and dies without acknowledging it, ``times`` over:
    RabbitMQ counts each as a failed delivery."""
    for _ in range(times):
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        deadline = time.monotonic() + 10
        while True:
            method, _, body = channel.basic_get(amqp_queue(queue))
            if method is not None:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert body.decode() == job_id
        connection.close()  # unacknowledged: the broker takes it back, counting a delivery


def test_a_job_whose_workers_died_past_the_limit_is_dead_lettered_and_fails(
    qname: str, tmp_path: Path
) -> None:
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname, max_deliveries=1)
    def never() -> None:
        raise AssertionError("a dead-lettered job must not run")

    job = never.delay()
    wait_for(lambda: _message_count(amqp_queue(qname)) == 1, 10)
    # A worker claimed it and died (its lease runs out), then RabbitMQ's count ran out too.
    assert [i.id for i in app.store.claim(qname, "dead-worker", 0.5, [job.id])] == [job.id]
    _take_and_die(qname, 2, job.id)
    wait_for(lambda: _message_count(dead_queue(qname)) == 1, 10)
    with working(app, concurrency=1):
        wait_for(lambda: job.status == "failed", 20)
    error = json.loads(app.store.record(job.id).error)
    assert error["type"] == "WorkerLost" and "x-delivery-limit" in error["message"]
    wait_for(lambda: _message_count(dead_queue(qname)) == 0, 10)


def test_a_job_bounced_unstarted_past_the_limit_is_published_again_and_runs(
    qname: str, tmp_path: Path
) -> None:
    # RabbitMQ counts messages a dying worker held in its prefetch, never started; the store
    # counts runs, and this job has had none.
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname, max_deliveries=1)
    def once() -> str:
        return "ran"

    job = once.delay()
    wait_for(lambda: _message_count(amqp_queue(qname)) == 1, 10)
    _take_and_die(qname, 2, job.id)
    wait_for(lambda: _message_count(dead_queue(qname)) == 1, 10)
    with working(app, concurrency=1):
        assert job.result(timeout=20) == "ran"
    assert app.store.record(job.id).attempts == 1


_PRODUCER = """
import os, sys, time
sys.path.insert(0, {root!r})
from baozi import App
from baozi.amqp import transport
from baozi.amqp.transport import TransportStore

transport.GRACE = 1.0
app = App({url!r}, transport={amqp!r})

@app.task(name="tick", queue={queue!r})
def tick(i):
    return i

def stop_here(self, queue, marks):
    print("recorded", ",".join(marks), flush=True)
    time.sleep(600)  # killed here: the records are stored, nothing is published

TransportStore.send = stop_here
tick.delay(7)
"""


def test_a_producer_killed_between_the_record_and_the_publish_loses_no_job(
    shared_store_url: str, qname: str
) -> None:
    producer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _PRODUCER.format(
                root=str(ROOT / "src"), url=shared_store_url, amqp=AMQP_URL, queue=qname
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = producer.stdout.readline() if producer.stdout else ""
        assert line.startswith("recorded "), line
        (job_id,) = line.split()[1].split(",")
        producer.send_signal(signal.SIGKILL)
        producer.wait(10)
    finally:
        if producer.poll() is None:
            producer.kill()
    time.sleep(0.5)
    assert _message_count(amqp_queue(qname)) == 0  # never published
    app = App(shared_store_url, transport=AMQP_URL)
    runs: list[int] = []

    @app.task(name="tick", queue=qname)
    def tick(i: int) -> int:
        runs.append(i)
        return i

    job = app.job(job_id)
    assert job.status == "queued"
    with working(app, concurrency=2):
        assert job.result(timeout=30) == 7
        time.sleep(2 * transport_module.SCAN)  # a second publish would show up meanwhile
    assert runs == [7]  # once
    assert app.store.inner.pending(qname, time.time() + 3600) == []


def test_a_worker_killed_mid_job_has_its_job_delivered_again_at_once(
    shared_store_url: str, qname: str, tmp_path: Path
) -> None:
    out = tmp_path / "pids"
    env = {
        **os.environ,
        "BAOZI_TEST_URL": shared_store_url,
        "BAOZI_TRANSPORT": AMQP_URL,
        "PYTHONPATH": str(ROOT),
    }
    app = App(shared_store_url, transport=AMQP_URL, lease=60.0)

    @app.task(name="pid_then_sleep", queue=qname)
    def pid_then_sleep(path: str, seconds: float) -> int:
        return 0

    job = pid_then_sleep.delay(str(out), 1.0)
    worker = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tests.faultapp:app", "-Q", qname, "-c", "1"],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for(lambda: out.exists() and out.read_text().strip(), 30)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_at = time.monotonic()
        second = subprocess.Popen(
            [sys.executable, "-m", "baozi", "worker", "tests.faultapp:app", "-Q", qname, "-c", "1"],
            env=env,
            cwd=ROOT,
        )
        try:
            assert job.result(timeout=30) > 0
            # Taken over at once, not after the 60 s lease ran out.
            assert time.monotonic() - killed_at < 30
        finally:
            second.terminate()
            second.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert len(out.read_text().split()) == 2


def test_the_cli_takes_the_transport_from_the_option_or_baozi_transport(
    qname: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = {**os.environ, "BAOZI_TEST_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("BAOZI_TRANSPORT", None)
    cmd = [sys.executable, "-m", "baozi", "enqueue", "tests.faultapp:app", "tick"]
    args = [json.dumps([str(tmp_path / "out"), 1, 0]), "--queue", qname]
    done = subprocess.run(
        [*cmd, *args, "--transport", AMQP_URL], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    job_id, where = done.stdout.split("\t")
    assert where.strip() == "queued"  # no place in line: RabbitMQ cannot tell it
    wait_for(lambda: _message_count(amqp_queue(qname)) == 1, 10)
    done = subprocess.run(
        [*cmd, *args],
        env={**env, "BAOZI_TRANSPORT": AMQP_URL},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    wait_for(lambda: _message_count(amqp_queue(qname)) == 2, 10)
    refused = subprocess.run(
        [*cmd, *args, "--transport", "redis://127.0.0.1:6379/0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "RabbitMQ URL" in refused.stderr


def test_a_message_rabbitmq_refuses_is_published_again_from_its_mark(
    qname: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "GRACE", 1.0)
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname)
    def echo(i: int) -> int:
        return i

    first = echo.delay(1)
    assert app.store.flush(10)
    # The queue goes away after this process declared it: the next message is unroutable.
    _delete_queues(qname)
    second = echo.delay(2)
    assert app.store.flush(10) is False  # answered, not confirmed: its mark stands
    assert [i for i, _ in app.store.inner.pending(qname, time.time() + 60)] == [second.id]
    with working(app, concurrency=2):  # declares the queue again; a worker publishes the mark
        assert second.result(timeout=20) == 2
    assert first.status == "queued"  # its message went with the queue (a queue deleted by hand)
    assert app.store.inner.pending(qname, time.time() + 3600) == []


def test_junk_messages_in_a_job_queue_are_dropped_and_the_jobs_behind_them_run(
    qname: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker is input too: anyone with access can publish to baozi.<queue>.
    app = App(f"sqlite:///{tmp_path / 's.db'}", transport=AMQP_URL)

    @app.task(queue=qname)
    def echo(i: int) -> int:
        return i

    first = echo.delay(1)
    assert app.store.flush(10)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for junk in (b"\xff\xfe", b"", b"x" * 500, b"999999999", b"not an id \n"):
        channel.basic_publish("", amqp_queue(qname), junk)
    connection.close()
    second = echo.delay(2)
    with working(app, concurrency=2):
        assert first.result(timeout=20) == 1
        assert second.result(timeout=20) == 2
        wait_for(lambda: _message_count(amqp_queue(qname)) == 0, 10)
    assert any("names no job" in r.getMessage() for r in caplog.records)
    assert app.store.inner.pending(qname, time.time() + 3600) == []
