"""What only the Redis store has: exact text keys, its URL options, and riding out a server that
stops and comes back (on a private redis-server this test starts, with its own append-only file)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baozi import App, Queue, StoreUnavailable
from baozi.backends import open_store
from baozi.backends.redis.store import priority_key
from baozi.worker import Worker

from . import jobtasks
from ._helpers import lines, wait_for, working
from ._redisserver import PrivateRedis
from .conftest import REDIS_URL, drop_redis_prefix, fresh_prefix, redis_or_skip

# -- keys -------------------------------------------------------------------------------------

priorities = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.sampled_from([0, -1, 1, 0.5, -0.5, 2**53, 2**53 + 1, 5e-324, -5e-324, 1e300]),
)


@given(st.lists(priorities, min_size=2, max_size=20))
def test_priority_keys_sort_exactly_as_the_numbers_do(values: list[int | float]) -> None:
    for a in values:
        for b in values:
            assert (priority_key(a) < priority_key(b)) == (a < b)
            assert (priority_key(a) == priority_key(b)) == (a == b)


def test_priority_keys_at_the_edges() -> None:
    edges = [-math.inf, -(2**63), -1e18, -1.5, -1, -0.5, -5e-324, 0, 5e-324, 0.5, 1, 1.5]
    edges += [2**53, 2**53 + 1, 2**62, 2**63 - 1, 1e300, math.inf]
    assert sorted(edges, key=priority_key) == edges
    assert priority_key(-0.0) == priority_key(0) == priority_key(0.0)


@pytest.fixture
def redis_url() -> Iterator[str]:
    redis_or_skip()
    prefix = fresh_prefix()
    yield f"{REDIS_URL}?prefix={prefix}"
    drop_redis_prefix(prefix)


def test_order_and_rank_stay_exact_past_2_to_the_40_items(redis_url: str) -> None:
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    with open_store(redis_url) as store:
        for start in (2**40, 2**52):
            store.clear("deep")
            client.set(f"{prefix}:seq", start)  # as if this many items had been pushed before
            back = store.push("deep", [b"a", b"b", b"c"])
            front = store.push("deep", [b"x", b"y"], front=True)
            assert [i.payload for i in store.snapshot("deep")] == [b"y", b"x", b"a", b"b", b"c"]
            assert [store.rank("deep", i) for i in front + back] == [1, 0, 2, 3, 4]
    client.close()


def test_url_options_are_checked_at_once() -> None:
    with pytest.raises(ValueError, match=r"invalid prefix '' .*\?prefix=myapp"):
        open_store("redis://127.0.0.1:6379/15?prefix=")
    with pytest.raises(ValueError, match=r"invalid retry='soon' .*\?retry=2"):
        open_store("redis://127.0.0.1:6379/15?retry=soon")


def test_two_prefixes_in_one_database_are_separate_stores(redis_url: str) -> None:
    other = f"{REDIS_URL}?prefix={fresh_prefix()}"
    try:
        with Queue("q", url=redis_url) as a, Queue("q", url=other) as b:
            a.put(1)
            assert b.qsize() == 0 and a.qsize() == 1
    finally:
        drop_redis_prefix(other.rsplit("=", 1)[1])


# -- a server that goes away --------------------------------------------------------------------


def test_a_call_to_a_server_that_is_down_raises_connection_error_after_its_retry(
    private_redis: PrivateRedis,
) -> None:
    with Queue("q", url=private_redis.url + "?retry=0.5") as q:
        q.put("kept")
        private_redis.kill()
        started = time.monotonic()
        with pytest.raises(ConnectionError) as caught:
            q.put("lost")
        assert 0.4 < time.monotonic() - started < 5
        assert isinstance(caught.value, StoreUnavailable)
        assert f"127.0.0.1:{private_redis.port}" in str(caught.value)
        assert "redis-server is running" in str(caught.value)
        private_redis.start()
        assert q.get(timeout=5) == "kept"  # acknowledged before the kill, so it survived
        q.task_done()


def test_workers_ride_out_a_redis_restart_and_run_no_job_twice(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    app = App(private_redis.url + "?retry=0.3", lease=8.0)
    log = tmp_path / "done.txt"
    slow_note = app.task(name="slow_note")(jobtasks.slow_note)
    jobs = slow_note.map([(str(log), i, 0.4) for i in range(12)])
    with working(app, concurrency=4):
        wait_for(lambda: app.store.counts("default").leased == 4)
        private_redis.kill()  # four jobs are in flight, held by this worker
        with pytest.raises(ConnectionError):
            slow_note.delay(str(log), 99, 0)
        time.sleep(1.0)  # they finish while the server is away: their outcomes wait
        private_redis.start()
        for job in jobs:
            job.result(timeout=60)
    runs = Counter(lines(log))
    assert sorted(int(k) for k in runs) == list(range(12))
    assert max(runs.values()) == 1
    assert all(job.attempts == 1 for job in jobs)


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
        assert time.monotonic() - started < 2.0  # woken by the change, not its 5 s idle wait


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A private redis-server that speaks only TLS, with a certificate made for the test."""
    import redis

    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.skip("redis-server or openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
        + ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        + ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        + ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    deadline = time.monotonic() + 10
    while True:
        if server.poll() is not None:
            out = server.stdout.read().decode() if server.stdout else ""
            pytest.skip(f"this redis-server cannot serve TLS: {out.strip()[-200:]}")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "the TLS redis-server did not start"
            time.sleep(0.05)
    yield url
    server.kill()
    server.wait(10)


def test_rediss_urls_speak_tls(tls_redis: str) -> None:
    app = App(tls_redis + "&prefix=tls", lease=5.0)
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        assert add.delay(2, 3).result(timeout=30) == 5
    with Queue("q", url=tls_redis + "&prefix=tls") as q:
        q.put("over TLS")
        assert q.get(timeout=5) == "over TLS"
        q.task_done()


def test_priorities_read_back_as_the_type_they_were_written(redis_url: str) -> None:
    with open_store(redis_url) as store:
        store.push("typed", [b"a", b"b", b"c"], [1, 1.0, 2.5])
        got = [(i.priority, type(i.priority)) for i in store.snapshot("typed")]
        assert got == [(1, int), (1.0, float), (2.5, float)]


# -- the inbox ---------------------------------------------------------------------------------


def test_single_pushes_wait_in_the_inbox_until_something_reads(redis_url: str) -> None:
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    with open_store(redis_url) as store:
        ids = [store.push("q", [str(i).encode()])[0] for i in range(2500)]
        (hi,) = store.push("q", [b"urgent"], -1)  # single, so also through the inbox
        assert client.llen(f"{prefix}:in") == 2501 * 8  # filed by nothing yet
        # A read files a big inbox a batch per script run, then answers as if it had all along.
        assert store.rank("q", hi) == 0
        assert store.rank("q", ids[-1]) == 2500
        assert client.llen(f"{prefix}:in") == 0
        assert [i.payload for i in store.reserve("q", "w", 30, 3)] == [b"urgent", b"0", b"1"]
    client.close()


def test_a_job_in_the_inbox_has_a_record_and_a_place(redis_url: str) -> None:
    app = App(redis_url)
    task = app.task(name="t")(jobtasks.note)
    first, second = task.delay("a", "x"), task.delay("b", "y")
    assert second.status == "queued"  # its record read straight from the inbox
    assert second.position() == 1 and first.position() == 0
    assert second.cancel()
    assert [r.id for r in app.store.records("default")] == [second.id, first.id]


def test_a_push_sent_again_after_a_lost_reply_is_filed_once(redis_url: str) -> None:
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    entry = ["q", "retried-id", priority_key(0), "0", b"payload", "", "0", "0"]
    client.rpush(f"{prefix}:in", *entry)  # the push that went through, its reply lost
    client.rpush(f"{prefix}:in", *entry[:-1], "1")  # the same push, sent again
    with open_store(redis_url) as store:
        assert [i.id for i in store.snapshot("q")] == ["retried-id"]
    client.close()


# -- job pushes: confirmed, or confirmed at the end of a batch block --------------------------


def test_delay_returns_once_the_server_has_the_job(redis_url: str) -> None:
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    job = note.delay("a", "x")
    # Nothing of this process reads before the raw client looks: the job is on the server.
    assert client.llen(f"{prefix}:in") == 8 or client.exists(f"{prefix}:i:{job.id}")
    client.close()
    app.store.close()


def test_a_refused_job_push_raises_at_the_call_site_and_enqueues_nothing(
    redis_url: str,
) -> None:
    import redis

    from baozi import StoreError

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{prefix}:in", "not a list")  # so the server refuses the push (WRONGTYPE)
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    with pytest.raises(StoreError, match="WRONGTYPE"):
        note.delay("a", "x")
    client.delete(f"{prefix}:in")
    assert app.store.counts("default").ready == 0
    assert app.store.records("default") == []
    assert note.delay("b", "y").status == "queued"
    client.close()
    app.store.close()


def test_a_server_out_of_memory_refuses_a_delay_at_once(private_redis: PrivateRedis) -> None:
    import redis

    from baozi import EnqueueFailed, StoreError

    app = App(private_redis.url)
    note = app.task(name="note")(jobtasks.note)
    kept = note.delay("a", "kept")
    admin = redis.Redis(port=private_redis.port)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)  # every write is refused with OOM from now on
    with pytest.raises(StoreError, match="maxmemory"):
        note.delay("a", "refused")
    with pytest.raises(EnqueueFailed, match="refused 3 job push") as caught:
        with app.batch():
            batched = [note.delay("a", str(i)) for i in range(3)]
    assert caught.value.job_ids == [job.id for job in batched]
    admin.config_set("maxmemory", 0)
    assert [r.id for r in app.store.records("default")] == [kept.id]
    admin.close()
    app.store.close()


def test_a_batch_block_confirms_its_pushes_when_it_ends(redis_url: str) -> None:
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    with app.batch():
        jobs = [note.delay("a", str(i)) for i in range(1000)]  # past the window: read as it goes
        with app.batch():  # a nested block joins the outer one
            jobs.append(note.delay("a", "inner"))
    assert app.store.counts("default").ready == 1001
    assert {r.id for r in app.store.records("default", limit=2000)} == {j.id for j in jobs}
    app.store.close()


def test_inside_a_batch_block_a_thread_reads_its_own_writes(redis_url: str) -> None:
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    with app.batch():
        first, second = note.delay("a", "x"), note.delay("b", "y")
        assert second.status == "queued" and second.position() == 1
        assert first.position() == 0
    app.store.close()


def test_a_batch_refusal_names_only_the_refused_jobs(redis_url: str) -> None:
    import redis

    from baozi import EnqueueFailed

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    with pytest.raises(EnqueueFailed) as caught:
        with app.batch():
            good = [note.delay("a", str(i)) for i in range(5)]
            app.store.counts("default")  # reads the replies: these five are filed
            client.set(f"{prefix}:in", "not a list")  # the server refuses what comes next
            bad = [note.delay("a", str(i)) for i in range(5, 8)]
    assert caught.value.job_ids == [job.id for job in bad]
    assert "WRONGTYPE" in str(caught.value)
    client.delete(f"{prefix}:in")
    assert {r.id for r in app.store.records("default")} == {job.id for job in good}
    client.close()
    app.store.close()


def test_batched_pushes_lost_with_the_server_are_sent_again_and_filed_once(
    private_redis: PrivateRedis,
) -> None:
    import redis

    app = App(private_redis.url + "?retry=10", lease=5.0)
    note = app.task(name="note")(jobtasks.note)
    admin = redis.Redis(port=private_redis.port)
    with app.batch():
        first = [note.delay("a", str(i)) for i in range(20)]
        app.store.counts("default")  # reads the first 20 replies
        admin.client_pause(60_000, all=False)  # writes wait: the next pushes are not run
        rest = [note.delay("a", str(i)) for i in range(20, 50)]  # written, not run
        private_redis.kill()  # the 30 pushes die with the server
        private_redis.start()
    # The block's end found the connection gone, made a new one and sent all 30 again.
    assert app.store.counts("default").ready == 50
    records = app.store.records("default", limit=100)
    assert sorted(r.id for r in records) == sorted(j.id for j in first + rest)
    app.store.close()


def test_a_batch_that_cannot_reach_the_server_names_its_unconfirmed_jobs(
    private_redis: PrivateRedis,
) -> None:
    import redis

    from baozi import EnqueueFailed

    app = App(private_redis.url + "?retry=0.3")
    note = app.task(name="note")(jobtasks.note)
    admin = redis.Redis(port=private_redis.port)
    with pytest.raises(EnqueueFailed, match="not confirmed") as caught:
        with app.batch():
            note.delay("a", "filed")
            app.store.counts("default")
            admin.client_pause(60_000, all=False)
            lost = [note.delay("a", str(i)) for i in range(3)]
            private_redis.kill()
    assert caught.value.job_ids == [job.id for job in lost]


def test_a_push_sent_twice_by_a_resend_is_filed_once(redis_url: str) -> None:
    import redis

    from baozi.backends.redis._conn import Server

    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    server: Server = app.store._server  # type: ignore[attr-defined]
    with app.batch():
        job = note.delay("a", "x")
        # As if the connection dropped after the push ran but before its reply came back: the
        # push is sent again, marked, and the store files the job once.
        batch = server._local.batch
        batch.flush()  # written...
        batch._resend()  # ...and written again before its reply was read
    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    assert client.llen(f"{prefix}:in") == 16  # the push and its resend, unfiled yet
    assert [r.id for r in app.store.records("default")] == [job.id]
    assert app.store.counts("default").ready == 1
    client.close()
    app.store.close()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter from the repository root; its output, as text."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    )


def test_a_producer_that_exits_at_once_leaves_its_jobs_enqueued(redis_url: str) -> None:
    code = (
        "import sys\n"
        "from baozi import App\n"
        "from tests import jobtasks\n"
        f"app = App({redis_url!r})\n"
        "note = app.task(name='note')(jobtasks.note)\n"
        "print(' '.join(note.delay('a', str(i)).id for i in range(300)))\n"
    )
    out = _python(code)
    assert out.stderr == ""
    ids = out.stdout.split()
    app = App(redis_url)
    assert sorted(r.id for r in app.store.records("default", limit=500)) == sorted(ids)
    app.store.close()


# -- jobs handed to idle workers ---------------------------------------------------------------


def test_an_idle_worker_is_handed_new_jobs_leased_to_it(redis_url: str) -> None:
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    app = App(redis_url, lease=30.0)
    add = app.task(jobtasks.add)
    server = app.store._server  # type: ignore[attr-defined]
    with working(app, concurrency=4) as worker:
        wait_for(lambda: client.zcard(f"{prefix}:q:default:w") == 1)  # it waits idle
        free, _, channel = client.hget(f"{prefix}:wi", worker.owner).decode().split()
        assert free == "4" and channel == server.hand_channel
        handed: list[str] = []
        receive = server.receivers[worker.owner]
        server.receivers[worker.owner] = lambda q, flat, took: (
            handed.extend(flat[i].decode() for i in range(0, len(flat), 6)),
            receive(q, flat, took),
        )
        jobs = []
        for i in range(3):  # each pushed while the worker waits idle
            wait_for(lambda: client.zcard(f"{prefix}:q:default:w") == 1)
            jobs.append(add.delay(i, 1))
            assert jobs[-1].result(timeout=10) == i + 1
        assert handed == [job.id for job in jobs]  # none had to be reserved
        assert all(job.attempts == 1 for job in jobs)
    # A worker that stops waits nowhere any more.
    assert client.zcard(f"{prefix}:q:default:w") == 0
    assert client.hlen(f"{prefix}:wi") == 0 and client.hlen(f"{prefix}:wh") == 0
    client.close()
    app.store.close()


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
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    code = (
        "from baozi import App\n"
        "from baozi.worker import Worker\n"
        "from tests import jobtasks\n"
        f"app = App({redis_url!r}, lease=60.0)\n"
        "app.task(jobtasks.add)\n"
        "Worker(app, concurrency=2).run()\n"
    )
    dead = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        wait_for(lambda: client.zcard(f"{prefix}:q:default:w") == 1)
    finally:
        dead.kill()  # SIGKILL while idle: its entry stays until it runs out
        dead.wait(10)
    app = App(redis_url, lease=60.0)
    add = app.task(jobtasks.add)
    with working(app, concurrency=2):
        wait_for(lambda: client.zcard(f"{prefix}:q:default:w") == 2)
        started = time.monotonic()
        assert add.delay(2, 3).result(timeout=30) == 5
        # Not leased to the dead worker (which would hold it for the 60 s lease).
        assert time.monotonic() - started < 5
    client.close()
    app.store.close()


def test_a_handed_job_running_in_the_reading_thread_does_not_hold_up_the_next(
    redis_url: str,
) -> None:
    app = App(redis_url, lease=30.0)
    sleep = app.task(jobtasks.sleep)
    with working(app, concurrency=3):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)  # idle, so the next jobs are handed over
        long = sleep.delay(3.0)
        wait_for(lambda: long.status == "running", timeout=10)
        started = time.monotonic()
        assert sleep.delay(0.01).result(timeout=10) == 0.01
        assert time.monotonic() - started < 2.0  # not after the 3 s job
        many = sleep.map([(0.2,)] * 6)  # more than the free slots: the rest wait their turn
        assert [job.result(timeout=30) for job in many] == [0.2] * 6
        assert long.result(timeout=10) == 3.0
    app.store.close()


def test_a_handed_job_past_its_timeout_fails_at_the_deadline(redis_url: str) -> None:
    from baozi import JobFailed

    app = App(redis_url, lease=30.0)
    sleep = app.task(timeout=0.3)(jobtasks.sleep)
    with working(app, concurrency=2):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(JobFailed) as caught:
            sleep.delay(3).result(timeout=30)
        assert caught.value.exc_type == "TimeoutError"
        assert time.monotonic() - started < 2.5
    app.store.close()


def test_jobs_handed_across_queues_never_exceed_the_workers_concurrency(redis_url: str) -> None:
    import threading

    app = App(redis_url, lease=30.0)
    lock, now, peak = threading.Lock(), [0], [0]

    def work(x: int) -> int:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.3)
        with lock:
            now[0] -= 1
        return x

    ta = app.task(name="ta", queue="a")(work)
    tb = app.task(name="tb", queue="b")(work)
    with working(app, queues=["a", "b"], concurrency=2):
        wait_for(lambda: app.store.workers() != [])
        time.sleep(0.2)  # waiting idle on both queues, with one count of free slots
        jobs = [ta.delay(1), ta.delay(2), tb.delay(3), tb.delay(4), ta.delay(5), tb.delay(6)]
        assert [job.result(timeout=30) for job in jobs] == [1, 2, 3, 4, 5, 6]
    assert peak[0] == 2
    app.store.close()


def test_a_closing_worker_is_handed_nothing_and_counts_no_delivery(redis_url: str) -> None:
    app = App(redis_url, lease=30.0)
    sleep = app.task(jobtasks.sleep)
    worker = Worker(app, concurrency=4)
    worker.start()
    wait_for(lambda: app.store.workers() != [])
    long = sleep.delay(1.5)
    wait_for(lambda: long.status == "running", timeout=10)
    worker.close()  # finishing the long job; it takes nothing new
    time.sleep(0.2)
    later = [sleep.delay(0) for _ in range(5)]
    time.sleep(0.3)
    assert [job.status for job in later] == ["queued"] * 5
    assert all(job.attempts == 0 for job in later)
    assert worker.join(30)
    with working(app, concurrency=2):
        assert [job.result(timeout=30) for job in later] == [0] * 5
    assert all(job.attempts == 1 for job in later)
    app.store.close()


def test_a_fork_inside_a_batch_block_leaves_the_parents_pushes_alone(redis_url: str) -> None:
    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    with app.batch():
        jobs = [note.delay("a", str(i)) for i in range(20)]  # replies not read yet
        pid = os.fork()
        if pid == 0:  # the child pushes a job of its own, confirmed on its own connection
            note.delay("a", "child")
            os._exit(0)
        os.waitpid(pid, 0)
    assert app.store.counts("default").ready == 21
    assert {job.status for job in jobs} == {"queued"}
    app.store.close()


def test_a_job_handed_and_lost_on_the_way_runs_after_its_lease(
    private_redis: PrivateRedis,
) -> None:
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
        # Nothing counts as still on its way: the one slot takes new jobs at once.
        for i in range(3):
            started = time.monotonic()
            assert add.delay(i, 1).result(timeout=30) == i + 1
            assert time.monotonic() - started < 2.0
    decoy.close()
    app.store.close()
