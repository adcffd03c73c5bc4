"""The Redis store's job pushes: each confirmed by the server before ``delay`` returns, or all
of a batch block's confirmed when the block ends; filed once, however often they are sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from baozi import App

from . import jobtasks
from ._redisserver import PrivateRedis
from .conftest import REDIS_URL

# -- job pushes: confirmed, or confirmed at the end of a batch block --------------------------


def test_delay_returns_once_the_server_has_the_job(redis_url: str) -> None:
    # The producer dies the moment delay() returns, with no exit handlers run: whatever the
    # server did not have by then is lost.
    code = (
        "import os\n"
        "from baozi import App\n"
        "from tests import jobtasks\n"
        f"app = App({redis_url!r})\n"
        "note = app.task(name='note')(jobtasks.note)\n"
        "print(note.delay('a', 'x').id, flush=True)\n"
        "os._exit(0)\n"
    )
    job_id = _python(code).stdout.strip()
    app = App(redis_url)
    assert app.store.statuses([job_id]) == {job_id: "queued"}
    app.store.close()


def test_a_queue_named_only_by_pushes_not_yet_filed_is_listed(redis_url: str) -> None:
    # A push lands in the inbox; the listing files the inbox first, so an observer sampling
    # the queues (the web server's) sees a queue whose first jobs were pushed a moment ago.
    app = App(redis_url)
    app.task(name="note")(jobtasks.note).apply_async(("a", "x"), queue="fresh-queue")
    assert "fresh-queue" in App(redis_url).store.queues()
    app.store.close()


def _filed(app: App) -> list[str]:
    """The ids of the jobs the store has filed in the default queue, oldest first."""
    return [r.id for r in reversed(app.store.records("default"))]


def test_a_delay_after_the_server_forgot_its_scripts_is_filed_once(
    private_redis: PrivateRedis,
) -> None:
    import redis

    app = App(private_redis.url)
    note = app.task(name="note")(jobtasks.note)
    first = note.delay("a", "x")  # the script is loaded; later pushes take the short path
    admin = redis.Redis(port=private_redis.port)
    admin.script_flush()  # as a restarted server, or a failover to a replica, forgets them
    second = note.delay("a", "y")
    assert _filed(app) == [first.id, second.id]
    assert app.store.counts("default").ready == 2
    admin.close()
    app.store.close()


def test_a_delay_whose_connection_was_closed_is_filed_once(private_redis: PrivateRedis) -> None:
    import redis

    app = App(private_redis.url)
    note = app.task(name="note")(jobtasks.note)
    first = note.delay("a", "x")
    admin = redis.Redis(port=private_redis.port)
    # A timeout or a proxy drops the store's idle connections (the server is this test's own).
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    second = note.delay("a", "y")
    assert _filed(app) == [first.id, second.id]
    admin.close()
    app.store.close()


def test_a_delay_whose_reply_was_lost_is_filed_once(redis_url: str) -> None:
    # Fault injection: a reply lost after the server ran the push cannot be made from outside
    # without a proxy, so this wraps the read of the idle connection the next push takes.
    import redis

    app = App(redis_url)
    note = app.task(name="note")(jobtasks.note)
    first = note.delay("a", "x")
    conn = app.store._server._idle[-1]  # type: ignore[attr-defined]
    read = conn.read_response

    def reply_lost(*args: object, **kwargs: object) -> object:
        read(*args, **kwargs)  # the server ran the push...
        raise redis.ConnectionError("Connection reset by peer")  # ...and the reply is lost

    conn.read_response = reply_lost
    second = note.delay("a", "y")  # sent again, marked, on a new connection
    assert _filed(app) == [first.id, second.id]
    assert app.store.counts("default").ready == 2
    app.store.close()


def test_a_refused_job_push_raises_at_the_call_site_and_enqueues_nothing(
    redis_url: str,
) -> None:
    import redis

    from baozi import StoreError

    # Fault injection: a server that refuses a push is made by putting a string where the
    # store's inbox list (P:in) goes.
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

    # Fault injection: a server that refuses pushes partway through a batch is made by putting
    # a string where the store's inbox list (P:in) goes.
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

    from baozi.backends.redis._server import Server

    # Fault injection: a batch block resends its pushes only when its connection drops before
    # their replies come back, a moment that cannot be chosen from outside; so this calls the
    # resend itself, and reads the inbox (P:in) to check that both copies reached the server.
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
