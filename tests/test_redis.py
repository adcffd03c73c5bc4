"""What only the Redis store has: exact text keys, its URL options, its inbox, and riding out a
server that stops and comes back (on a private redis-server this test starts, with its own
append-only file)."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
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

from . import jobtasks
from ._helpers import lines, wait_for, working
from ._redisserver import PrivateRedis
from .conftest import REDIS_URL, drop_redis_prefix, fresh_prefix

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


def test_order_and_rank_stay_exact_past_2_to_the_40_items(redis_url: str) -> None:
    # Fault injection: 2**40 pushes cannot be made in a test, so this sets the store's push
    # counter (P:seq) as if they had been.
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


def test_a_read_after_many_single_pushes_finds_each_in_its_place(redis_url: str) -> None:
    # Single pushes wait in an inbox until a script reads the queue; the first read after
    # thousands of them files them all (a batch per script run) and answers as if they had
    # been filed all along.
    with open_store(redis_url) as store:
        ids = [store.push("q", [str(i).encode()])[0] for i in range(2500)]
        (hi,) = store.push("q", [b"urgent"], -1)
        assert store.rank("q", hi) == 0
        assert store.rank("q", ids[-1]) == 2500
        assert store.counts("q").ready == 2501
        assert [i.payload for i in store.reserve("q", "w", 30, 3)] == [b"urgent", b"0", b"1"]


def test_a_job_in_the_inbox_has_a_record_and_a_place(redis_url: str) -> None:
    app = App(redis_url)
    task = app.task(name="t")(jobtasks.note)
    first, second = task.delay("a", "x"), task.delay("b", "y")
    assert second.status == "queued"  # its record read straight from the inbox
    assert second.position() == 1 and first.position() == 0
    assert second.cancel()
    assert [r.id for r in app.store.records("default")] == [second.id, first.id]


def test_a_push_sent_again_after_a_lost_reply_is_filed_once(redis_url: str) -> None:
    # Fault injection: a reply lost after the server ran the push cannot be made from outside
    # without a proxy, so this writes the two inbox entries (P:in) the client would have sent --
    # the push, and the same push marked as sent again -- as raw commands.
    import redis

    prefix = redis_url.rsplit("=", 1)[1]
    client = redis.Redis.from_url(REDIS_URL)
    entry = ["q", "retried-id", priority_key(0), "0", b"payload", "", "0", "0"]
    client.rpush(f"{prefix}:in", *entry)  # the push that went through, its reply lost
    client.rpush(f"{prefix}:in", *entry[:-1], "1")  # the same push, sent again
    with open_store(redis_url) as store:
        assert [i.id for i in store.snapshot("q")] == ["retried-id"]
    client.close()


# -- listing ----------------------------------------------------------------------------------


def test_a_page_that_examines_its_budget_stops_short_with_a_cursor_and_none_is_lost(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baozi.backends.base import NewJob
    from baozi.backends.redis import _listing

    monkeypatch.setattr(_listing, "PAGE_BUDGET", 7)  # records examined per call
    with open_store(redis_url) as store:
        wanted: list[str] = []
        for i in range(40):  # one job in five is listed: most calls examine their 7 and stop
            queue = "a" if i % 2 else "b"
            (job_id,) = store.enqueue(queue, [NewJob("hit" if i % 5 == 0 else "miss", b"x")])
            if i % 5 == 0:
                wanted.insert(0, job_id)
        found: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        for _ in range(40):
            page, cursor = store.records_page(task="hit", limit=3, cursor=cursor)
            found += [rec.id for rec in page]
            sizes.append(len(page))
            if cursor is None:
                break
        assert cursor is None and found == wanted  # newest first across both queues
        assert len(sizes) >= 40 // 7 and min(sizes) < 3  # short pages, each with a cursor
