"""Junk written straight into a Redis store's own keys never loses or stops a good job: each
record a script cannot read is moved aside intact, logged once at ERROR naming its key, and every
other job runs exactly once."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from baozi import App, Worker, current_job
from baozi.backends import open_store
from baozi.backends.base import Deduplicated, NewJob, Outcome

from . import jobtasks
from ._helpers import lines, wait_for, working
from ._redisserver import PrivateRedis
from .conftest import REDIS_URL, drop_redis_prefix, fresh_prefix, redis_or_skip


class Store:
    """A baozi app on a fresh key prefix, with a raw client to write junk with."""

    def __init__(self, tmp_path: Path) -> None:
        self.prefix = fresh_prefix()
        self.app = App(f"{REDIS_URL}?prefix={self.prefix}", lease=5.0)
        self.raw = redis.Redis.from_url(REDIS_URL)
        self.ran = tmp_path / "ran.txt"
        self.note = self.app.task(jobtasks.note)

    def key(self, rest: str) -> str:
        return f"{self.prefix}:{rest}"

    def enqueue(self, tags: range) -> list[str]:
        return [self.note.delay(str(self.ran), tag).id for tag in tags]

    def file_inbox(self) -> None:
        self.app.store.counts("default")  # any script that reads the queue files the inbox

    def work(self) -> None:
        Worker(self.app, concurrency=2).run(burst=True)

    def runs(self) -> Counter[str]:
        return Counter(lines(self.ran))


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Store]:
    redis_or_skip()
    store = Store(tmp_path)
    yield store
    store.app.store.close()
    store.raw.close()
    drop_redis_prefix(store.prefix)


def errors_naming(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    """The ERROR records that say ``key`` could not be read."""
    said = f"{key} could not be read"
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and said in r.getMessage()
    ]


def assert_ran_once(s: Store, tags: list[int]) -> None:
    assert s.runs() == Counter(str(t) for t in tags)


# -- the inbox --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_stray_value_in_the_inbox_loses_no_job(
    s: Store, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    s.enqueue(range(3))
    if where == "middle":
        s.raw.rpush(s.key("in"), b"stray")
        s.enqueue(range(3, 23))
    else:
        s.enqueue(range(3, 23))  # each in the inbox when delay() returns
        s.raw.rpush(s.key("in"), b"stray")
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, list(range(23)))
    assert s.raw.lrange(s.key("junk:in"), 0, -1) == [b"stray"]
    assert len(errors_naming(caplog, s.key("in"))) == 1
    assert s.raw.hget(s.key("junk"), s.key("junk:in")) is not None


def test_a_stray_value_among_a_batch_blocks_pushes_loses_no_job(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with s.app.batch():
        s.enqueue(range(10))
        s.raw.rpush(s.key("in"), b"stray")
        s.enqueue(range(10, 20))
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, list(range(20)))
    assert s.raw.lrange(s.key("junk:in"), 0, -1) == [b"stray"]
    assert len(errors_naming(caplog, s.key("in"))) == 1


def test_a_value_of_the_wrong_type_where_the_inbox_is_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    s.raw.set(s.key("in"), b"not a list")
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.file_inbox()  # the first script that files the inbox moves it aside
        s.enqueue(range(3))
        s.work()
    assert_ran_once(s, [0, 1, 2])
    asides = s.raw.keys(s.key("junk:in:*"))
    assert [s.raw.get(k) for k in asides] == [b"not a list"]
    assert len(errors_naming(caplog, s.key("in"))) == 1


@pytest.mark.parametrize("rest", ["q:default:r", "q:default:j", "q:default:l", "queues"])
def test_a_value_of_the_wrong_type_where_a_queue_keeps_its_items_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture, rest: str
) -> None:
    """The inbox is filed into these keys: a key of another type there must not stop the filing
    half way (the inbox trimmed, the jobs in no set) nor stop the queue."""
    s.raw.set(s.key(rest), b"junk of the wrong type")
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.enqueue(range(3))  # confirmed: each returned once Redis had it
        s.file_inbox()
        s.work()
    assert_ran_once(s, [0, 1, 2])
    asides = s.raw.keys(s.key(f"junk:{rest}:*"))
    assert [s.raw.get(k) for k in asides] == [b"junk of the wrong type"]
    assert len(errors_naming(caplog, s.key(rest))) == 1


# -- an item's hash ---------------------------------------------------------------------------

# What is written into one job's hash: a field set to a value (None: the field deleted).
FIELD_JUNK = [
    ("d", b"abc"),
    ("pr", b"zzz"),
    ("pr", b"0x10"),
    ("f", b"-1"),
    ("f", b"99"),  # more failures than deliveries: max_deliveries would never end it
    ("st", b"9"),
    ("m", b"no colon"),
    ("m", None),
    ("q", None),
    ("p", None),
    ("t", b"\xff\xfe"),
    ("q", b"\xff"),
]


def _junk_one(s: Store, item_id: str, name: str, value: bytes | None) -> dict[bytes, Any]:
    h = s.key(f"i:{item_id}")
    if value is None:
        s.raw.hdel(h, name)
    else:
        s.raw.hset(h, name, value)
    return s.raw.hgetall(h)


@pytest.mark.parametrize(("name", "value"), FIELD_JUNK)
def test_a_junk_field_moves_its_job_aside_and_the_others_run_once(
    s: Store, caplog: pytest.LogCaptureFixture, name: str, value: bytes | None
) -> None:
    ids = s.enqueue(range(4))
    s.file_inbox()
    bad = ids[1]
    held = _junk_one(s, bad, name, value)
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, [0, 2, 3])
    assert s.raw.hgetall(s.key(f"junk:i:{bad}")) == held  # intact
    assert not s.raw.exists(s.key(f"i:{bad}"))
    assert len(errors_naming(caplog, s.key(f"i:{bad}"))) == 1
    assert s.app.store.counts("default").total == 0
    assert [r.id for r in s.app.store.records()] == [i for i in reversed(ids) if i != bad]


def test_a_task_name_only_the_client_finds_unreadable_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = s.enqueue(range(3))
    s.file_inbox()
    s.raw.hset(s.key(f"i:{ids[1]}"), "t", b"\xe0\x80\x80")  # UTF-8 in form, overlong in fact
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, [0, 2])
    assert s.raw.hget(s.key(f"junk:i:{ids[1]}"), "t") == b"\xe0\x80\x80"
    assert len(errors_naming(caplog, s.key(f"i:{ids[1]}"))) == 1


def corrupt_own_record(prefix: str, path: str, tag: str) -> None:
    """A task that writes junk into its own record while it runs, then notes that it ran."""
    client = redis.Redis.from_url(REDIS_URL)
    client.hset(f"{prefix}:i:{current_job().id}", "f", b"many")
    client.close()
    jobtasks.note(path, tag)


def test_junk_written_while_a_job_runs_is_moved_aside_when_it_settles(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = s.enqueue(range(2))
    bad = s.app.task(corrupt_own_record).delay(s.prefix, str(s.ran), "bad").id
    ids += s.enqueue(range(2, 4))
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert s.runs() == Counter(["0", "1", "bad", "2", "3"])
    assert s.raw.hget(s.key(f"junk:i:{bad}"), "f") == b"many"
    assert len(errors_naming(caplog, s.key(f"i:{bad}"))) == 1
    assert s.app.store.job_counts("default")["succeeded"] == 4


def test_an_idle_worker_handed_jobs_past_a_stray_inbox_value_runs_each_once(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="baozi.redis"), working(s.app, concurrency=4):
        s.enqueue(range(3))
        wait_for(lambda: len(lines(s.ran)) == 3)
        s.raw.rpush(s.key("in"), b"stray")
        jobs = [s.note.delay(str(s.ran), tag) for tag in range(3, 23)]
        for job in jobs:
            job.result(timeout=30)
    assert_ran_once(s, list(range(23)))
    assert s.raw.lrange(s.key("junk:in"), 0, -1) == [b"stray"]
    assert len(errors_naming(caplog, s.key("in"))) == 1


def test_a_record_whose_m_names_another_item_takes_nothing_of_that_item_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = s.enqueue(range(3))
    s.file_inbox()
    other = s.raw.hget(s.key(f"i:{ids[2]}"), "m")
    s.raw.hset(s.key(f"i:{ids[0]}"), "m", other)
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, [1, 2])
    assert s.raw.hget(s.key(f"junk:i:{ids[0]}"), "m") == other
    assert len(errors_naming(caplog, s.key(f"i:{ids[0]}"))) == 1


def test_a_hash_replaced_by_a_string_goes_aside(s: Store, caplog: pytest.LogCaptureFixture) -> None:
    ids = s.enqueue(range(3))
    s.file_inbox()
    s.raw.delete(s.key(f"i:{ids[0]}"))
    s.raw.set(s.key(f"i:{ids[0]}"), b"junk")
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, [1, 2])
    assert s.raw.get(s.key(f"junk:i:{ids[0]}")) == b"junk"
    assert len(errors_naming(caplog, s.key(f"i:{ids[0]}"))) == 1


def test_a_non_json_payload_fails_only_its_own_job(s: Store) -> None:
    ids = s.enqueue(range(3))
    s.file_inbox()
    s.raw.hset(s.key(f"i:{ids[1]}"), "p", b"\xffnot json")
    s.work()
    assert_ran_once(s, [0, 2])
    assert s.app.job(ids[1]).status == "failed"
    assert [s.app.job(i).status for i in (ids[0], ids[2])] == ["succeeded", "succeeded"]


@pytest.mark.parametrize(("name", "value"), [("c", b"yesterday"), ("n", b"x"), ("out", b"odd")])
def test_a_record_that_cannot_be_listed_goes_aside_and_the_listing_goes_on(
    s: Store, caplog: pytest.LogCaptureFixture, name: str, value: bytes
) -> None:
    ids = s.enqueue(range(3))
    s.work()
    held = _junk_one(s, ids[1], name, value)
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        assert [r.id for r in s.app.store.records()] == [ids[2], ids[0]]
        assert s.app.store.record(ids[1]) is None
    assert s.raw.hgetall(s.key(f"junk:i:{ids[1]}")) == held
    assert len(errors_naming(caplog, s.key(f"i:{ids[1]}"))) == 1
    assert_ran_once(s, [0, 1, 2])


# -- sets that point to items -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "member", "score"),
    [
        ("r", b"1000!10000000000000099:deadbeef", 0),  # names no hash
        ("r", b"no colon at all", 0),
        ("l", b"00000000000001.000000:deadbeef", 0),  # a lease long run out, of no item
        ("l", b"!", 0),
        ("s", b"deadbeef", 1),  # scheduled long ago, no item
    ],
)
def test_a_dangling_member_goes_aside_and_every_job_runs_once(
    s: Store, caplog: pytest.LogCaptureFixture, suffix: str, member: bytes, score: int
) -> None:
    s.enqueue(range(3))
    s.file_inbox()
    key = s.key(f"q:default:{suffix}")
    s.raw.zadd(key, {member: score})
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        s.work()
    assert_ran_once(s, [0, 1, 2])
    assert s.raw.lrange(s.key(f"junk:q:default:{suffix}"), 0, -1) == [member]
    assert len(errors_naming(caplog, key)) == 1


def test_a_dangling_id_in_the_jobs_list_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ids = s.enqueue(range(2))
    s.work()
    s.raw.zadd(s.key("q:default:j"), {b"deadbeef": 99})
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        assert [r.id for r in s.app.store.records(queue="default")] == ids[::-1]
    assert s.raw.lrange(s.key("junk:q:default:j"), 0, -1) == [b"deadbeef"]
    assert len(errors_naming(caplog, s.key("q:default:j"))) == 1


# -- counters, options, names, heartbeats -----------------------------------------------------


def test_junk_in_the_order_counter_goes_aside_and_order_is_kept(s: Store) -> None:
    s.enqueue(range(2))
    s.file_inbox()
    s.raw.set(s.key("seq"), b"abc")
    s.enqueue(range(2, 4))
    s.work()
    assert lines(s.ran) == ["0", "1", "2", "3"] or sorted(lines(s.ran)) == ["0", "1", "2", "3"]
    assert [s.raw.get(k) for k in s.raw.keys(s.key("junk:seq:*"))] == [b"abc"]


def test_a_count_that_is_no_number_goes_aside(s: Store, caplog: pytest.LogCaptureFixture) -> None:
    s.enqueue(range(2))
    s.work()
    s.raw.hset(s.key("q:default:c"), "failed", b"many")
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        counts = s.app.store.job_counts("default")
    assert counts["succeeded"] == 2 and counts["failed"] == 0
    assert s.raw.lrange(s.key("junk:q:default:c"), 0, -1) == [b"failed", b"many"]
    assert len(errors_naming(caplog, s.key("q:default:c"))) == 1


def test_a_job_total_that_is_no_number_goes_aside_and_counting_goes_on(s: Store) -> None:
    s.enqueue(range(2))
    s.work()
    s.raw.hset(s.key("q:default:t"), "succeeded:x", b"lots")
    s.raw.hset(s.key("q:default:t"), b"\xff:x", b"1")
    totals = s.app.store.job_totals("default")
    assert sum(t["succeeded"] for t in totals.values()) == 2
    junk = s.raw.lrange(s.key("junk:q:default:t"), 0, -1)
    assert junk == [b"succeeded:x", b"lots", b"\xff:x", b"1"]
    s.enqueue(range(2, 3))
    s.work()
    assert sum(t["succeeded"] for t in s.app.store.job_totals("default").values()) == 3


def test_a_queue_option_that_is_no_json_goes_aside(s: Store) -> None:
    s.app.store.set_queue_options("default", maxsize=5)
    s.raw.hset(s.key("q:default:o"), "paused", b"{not json")
    assert s.app.store.queue_options("default") == {"maxsize": 5}
    assert s.raw.lrange(s.key("junk:q:default:o"), 0, -1) == [b"paused", b"{not json"]


def test_a_queue_name_that_is_no_text_goes_aside(s: Store) -> None:
    s.enqueue(range(1))
    s.file_inbox()
    s.raw.sadd(s.key("queues"), b"\xff\xfe")
    assert "default" in s.app.store.queues()
    assert s.raw.lrange(s.key("junk:queues"), 0, -1) == [b"\xff\xfe"]


@pytest.mark.parametrize(
    "info", [b"not json", b"[1, 2]", b'{"id": "w9", "host": 5}', b'{"id": "w9"}']
)
def test_a_heartbeat_that_cannot_be_read_goes_aside(
    s: Store, caplog: pytest.LogCaptureFixture, info: bytes
) -> None:
    with open_store(s.app.url) as store:
        from baozi.backends.base import WorkerInfo

        store.heartbeat(WorkerInfo("w1", "here", 1, "thread", 1, ("default",)), 60)
        store.heartbeat(WorkerInfo("w9", "here", 2, "thread", 1, ("default",)), 60)
        s.raw.hset(s.key("w"), "w9", info)
        with caplog.at_level(logging.ERROR, logger="baozi.redis"):
            assert [w.id for w in store.workers()] == ["w1"]
            assert [w.id for w in store.workers()] == ["w1"]
    assert s.raw.lrange(s.key("junk:w"), 0, 0) == [b"w9"]
    assert s.raw.lindex(s.key("junk:w"), 1) == info
    assert len(errors_naming(caplog, s.key("w"))) == 1


def test_an_idle_worker_entry_that_is_junk_goes_aside_and_jobs_still_run(s: Store) -> None:
    s.raw.hset(s.key("wi"), "ghost", b"lots of slots")
    s.raw.zadd(s.key("q:default:w"), {b"ghost": 9e12})
    s.enqueue(range(3))
    s.work()
    assert_ran_once(s, [0, 1, 2])
    assert s.raw.lrange(s.key("junk:wi"), 0, -1) == [b"ghost", b"lots of slots"]


def test_a_heartbeat_with_no_info_goes_aside(s: Store) -> None:
    s.raw.zadd(s.key("w:exp"), {b"ghost": 9e12})
    assert s.app.store.workers() == []
    assert s.raw.lindex(s.key("junk:w"), 0) == b"ghost"


def test_a_rate_limit_time_that_is_no_number_starts_over(s: Store) -> None:
    s.raw.hset(s.key("rate"), "r", b"soon")
    assert s.app.store.rate_acquire("r", 1.0) == 0.0
    assert s.raw.lrange(s.key("junk:rate"), 0, -1) == [b"r", b"soon"]


# -- a server that evicts keys ----------------------------------------------------------------


def test_a_redis_that_may_evict_jobs_is_warned_of_once_and_reported(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    from click.testing import CliRunner

    from baozi.cli import main

    from ._web import served

    # A server of its own: every other test's Redis client would be warned too.
    redis.Redis.from_url(private_redis.url).config_set("maxmemory-policy", "allkeys-lru")
    app = App(private_redis.url)  # its first script has not run yet: the policy is checked then
    try:
        with caplog.at_level(logging.WARNING, logger="baozi.redis"):
            app.store.counts("default")
            app.store.counts("default")
            reported = app.store.warnings()
        table = CliRunner().invoke(
            main, ["queues", "--url", private_redis.url], env={"COLUMNS": "300"}
        )
        with served(app) as base:
            health = httpx.get(f"{base}/healthz", timeout=30).json()
        redis.Redis.from_url(private_redis.url).config_set("maxmemory-policy", "noeviction")
        mended = app.store.warnings()  # read again: a server set right says nothing
    finally:
        app.store.close()
    warned = [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "maxmemory-policy noeviction" in warned[0].getMessage()
    assert "allkeys-lru" in warned[0].getMessage()
    assert len(reported) == 1 and "maxmemory-policy noeviction" in reported[0]
    assert table.exit_code == 0, table.output
    assert "maxmemory-policy noeviction" in " ".join(table.output.split())
    assert health["status"] == "ok" and health["warnings"] == reported
    assert mended == []


# -- unique keys and dependencies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("u", b"\xff"),
        ("uw", b"sometimes"),
        ("uf", b"soon"),
        ("uf", b"-1"),
        ("pa", b"1:2"),
        ("od", b"maybe"),
    ],
)
def test_a_junk_workflow_field_moves_its_job_aside_and_the_listing_goes_on(
    s: Store, caplog: pytest.LogCaptureFixture, name: str, value: bytes
) -> None:
    store = s.app.store
    (a,) = store.enqueue("default", [NewJob("t", b"a", unique_key="k")])
    b, c = store.enqueue(
        "default", [NewJob("t", b"b", unique_key=k, depends_on=(a,)) for k in ("k2", "k3")]
    )
    held = _junk_one(s, b, name, value)
    with caplog.at_level(logging.ERROR, logger="baozi.redis"):
        assert [r.id for r in store.records()] == [c, a]
        assert store.record(b) is None
    assert s.raw.hgetall(s.key(f"junk:i:{b}")) == held
    assert len(errors_naming(caplog, s.key(f"i:{b}"))) == 1
    (item,) = store.reserve("default", "w", 30, 1)
    store.settle("default", "w", [Outcome(a, "succeeded", result=b"1")], ttl=60)
    assert store.statuses([a, b, c]) == {a: "succeeded", c: "queued"}


def test_junk_in_the_workflow_keys_stops_no_enqueue_and_no_release(s: Store) -> None:
    store = s.app.store
    (a,) = store.enqueue("default", [NewJob("t", b"a", unique_key="k")])
    digest = hashlib.sha1(b"k").hexdigest()
    s.raw.sadd(s.key(f"uq:{digest}"), b"not an id!", b"deadbeef")
    s.raw.set(s.key(f"uq:{hashlib.sha1(b'k2').hexdigest()}"), b"a string")
    (c,) = store.enqueue("default", [NewJob("t", b"c", depends_on=(a,))])
    s.raw.zadd(s.key(f"ch:{a}"), {b"not an id!": 0, b"deadbeef": 1})
    s.raw.delete(s.key(f"pw:{c}"))
    s.raw.set(s.key(f"pw:{c}"), b"a string")
    assert store.enqueue("default", [NewJob("t", b"x", unique_key="k")]) == [a]
    assert s.raw.smembers(s.key(f"uq:{digest}")) == {a.encode()}  # the others left it
    (k2,) = store.enqueue("default", [NewJob("t", b"y", unique_key="k2")])
    assert not isinstance(k2, Deduplicated)
    rec = store.record(a)
    assert rec is not None and rec.children == (c,)
    store.reserve("default", "w", 30, 1)
    store.settle("default", "w", [Outcome(a, "succeeded", result=b"1")], ttl=60)
    assert store.statuses([c]) == {c: "queued"}
    (aside,) = s.raw.scan_iter(match=s.key(f"junk:pw:{c}:*"))
    assert s.raw.get(aside) == b"a string"  # moved aside, intact
