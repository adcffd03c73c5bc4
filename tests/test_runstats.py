"""Run statistics kept in the store: what workers count of the runs they settle, the attempt
logs they write, the queue depths the web observer keeps -- exact, shared by every worker and
server, and read back alike through a store handle opened afterwards (as after a restart)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from baozi import App, Worker
from baozi._runstats import (
    DepthSamples,
    RunStats,
    attempt_log,
    depth_series,
    prune,
    task_stats,
    throughput,
)
from baozi._runstats._layout import (
    FAMILIES,
    attempts_ns,
    depth_ns,
    hist_index,
    hist_ms,
    hour_of,
    percentile,
    runs_ns,
)
from baozi.backends import open_store
from baozi.backends.base import Item
from baozi.web.stats import Observer

from . import jobtasks
from ._helpers import lines, wait_for, working


def _by_task(stats: list) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["task"]: s for s in stats}


def test_runs_that_succeed_fail_retry_or_are_refused_are_counted_exactly(url: str) -> None:
    app = App(url, lease=5.0)
    add = app.task(name="add")(jobtasks.add)
    flaky = app.task(name="flaky", retries=2, retry_backoff=0.01)(jobtasks.fail_until)
    fail = app.task(name="fail", retries=1, retry_backoff=0.01)(jobtasks.fail)
    adds = add.map([(i, i) for i in range(5)])
    once = flaky.delay(1)  # attempt 1 raises, attempt 2 succeeds
    never = fail.delay("no")  # attempt 1 raises and is retried, attempt 2 fails for good
    unknown = app.store.enqueue_one("default", "no.such.task", app.codec.dumps([[], {}]))
    Worker(app).run(burst=True)
    assert once.result(timeout=1) == 2 and never.status == "failed"

    for store in (app.store, open_store(url)):  # the second: a server started afterwards
        stats = _by_task(task_stats(store, 600))
        assert sorted(stats) == ["add", "fail", "flaky", "no.such.task"]
        assert {k: stats["add"][k] for k in ("queue", "succeeded", "failed", "retried")} == {
            "queue": "default",
            "succeeded": 5,
            "failed": 0,
            "retried": 0,
        }
        assert stats["add"]["failure_rate"] == 0.0
        assert (stats["flaky"]["succeeded"], stats["flaky"]["failed"]) == (1, 1)
        assert stats["flaky"]["retried"] == 1 and stats["flaky"]["failure_rate"] == 0.5
        assert (stats["fail"]["succeeded"], stats["fail"]["failed"]) == (0, 2)
        assert stats["fail"]["retried"] == 1 and stats["fail"]["failure_rate"] == 1.0
        # Refused without running: a failure with no run time.
        assert (stats["no.such.task"]["failed"], stats["no.such.task"]["retried"]) == (1, 0)
        assert stats["no.such.task"]["run_ms"] == {"p50": None, "p95": None, "p99": None}
        assert all(stats[t]["run_ms"]["p50"] is not None for t in ("add", "flaky", "fail"))
        for window in (3600, 86400):  # the minute buckets say the same
            assert _by_task(task_stats(store, window)) == stats

        chart = throughput(store, 600)
        assert chart["bucket_seconds"] == 10 and chart["end"] - chart["start"] == 600
        series = chart["queues"]["default"]
        assert all(len(s) == 60 for s in series.values())
        totals = [sum(series[k]) for k in ("succeeded", "failed", "retried")]
        assert totals == [6, 4, 2]
        day = throughput(store, 86400, queue="default")
        assert day["bucket_seconds"] == 900 and len(day["queues"]["default"]["failed"]) == 96
        assert sum(day["queues"]["default"]["failed"]) == 4
        assert throughput(store, 3600, queue="other")["queues"] == {}

        log = attempt_log(store, once.id, once.created_at)
        assert [(e["attempt"], e["outcome"]) for e in log] == [(1, "retried"), (2, "succeeded")]
        assert log[0]["error"] == {"type": "RuntimeError", "message": "attempt 1 fails"}
        assert log[1]["error"] is None
        assert all(e["started_at"] <= e["finished_at"] for e in log)
        assert log[0]["finished_at"] <= log[1]["started_at"]
        log = attempt_log(store, never.id, never.created_at)
        assert [(e["attempt"], e["outcome"]) for e in log] == [(1, "retried"), (2, "failed")]
        assert log[1]["error"] == {"type": "ValueError", "message": "no"}
        refused = app.job(unknown)
        log = attempt_log(store, unknown, refused.created_at)
        assert [(e["attempt"], e["outcome"], e["error"]["type"]) for e in log] == [  # type: ignore[index]
            (1, "failed", "UnknownTask")
        ]
        assert attempt_log(store, adds[0].id, adds[0].created_at) == []
        if store is not app.store:
            store.close()


def test_a_failed_runs_attempt_is_readable_while_its_worker_runs(url: str) -> None:
    app = App(url, lease=5.0)
    fail = app.task(name="fail")(jobtasks.fail)
    with working(app):
        job = fail.delay("now")
        with pytest.raises(Exception, match="now"):
            job.result(timeout=30)
        # Written by the worker's flusher within a few seconds, not only when it stops.
        wait_for(lambda: attempt_log(app.store, job.id, job.created_at), timeout=30)
    (entry,) = attempt_log(app.store, job.id, job.created_at)
    assert entry["outcome"] == "failed" and entry["attempt"] == 1


@pytest.mark.parametrize("url", ["sqlite", "redis"], indirect=True)
def test_percentiles_of_known_run_times_land_within_the_histograms_error(url: str) -> None:
    app = App(url, lease=5.0)
    sleep = app.task(name="sleep")(jobtasks.sleep)
    sleep.map([(0.05,)] * 10 + [(0.4,)] * 10)
    Worker(app, concurrency=10).run(burst=True)
    (stats,) = task_stats(app.store, 600)
    assert stats["succeeded"] == 20
    p = stats["run_ms"]
    assert p["p50"] is not None and p["p95"] is not None and p["p99"] is not None
    # A run takes at least its sleep, and the slowest of the short runs far less than 0.4 s:
    # the 10th of 20 is a short one, the 19th and 20th long ones.
    assert 50 / 1.05 <= p["p50"] < 400 / 1.05
    assert 400 / 1.05 <= p["p95"] <= p["p99"]


def test_a_percentile_is_within_five_percent_of_the_run_time_it_stands_for(url: str) -> None:
    store = open_store(url)
    try:
        stats = RunStats(store, "w1")
        times = [i / 1000 for i in range(1, 1001)]  # 1 ms to 1 s, one run each
        for seconds in times:
            stats.ran("q", _item("t"), "succeeded", time.monotonic() - seconds, seconds, None)
        stats.flush()
        (found,) = task_stats(store, 3600)
        p = found["run_ms"]
        for got, q in ((p["p50"], 500), (p["p95"], 950), (p["p99"], 990)):
            assert got is not None and abs(got - q) / q <= 0.05, (got, q)
    finally:
        store.close()
    for ms in (0.005, 0.011, 0.5, 1.0, 7.3, 123.4, 60_000.0):  # each bin's middle is near all of it
        assert abs(hist_ms(hist_index(ms / 1000)) - max(ms, 0.01)) / max(ms, 0.01) <= 0.049
    assert percentile({}, 0.5) is None


def _item(task: str, deliveries: int = 1, failures: int = 0) -> Item:
    return Item(uuid.uuid4().hex, b"", 0, deliveries, task, failures)


def test_flushes_of_many_workers_at_once_add_up_with_no_lost_update(url: str) -> None:
    recorders, flushes, per_flush = 4, 25, 3
    stores = [open_store(url) for _ in range(recorders)]  # a handle each, as workers have
    start = threading.Barrier(recorders)

    def work(n: int) -> None:
        stats = RunStats(stores[n], f"w{n}")
        start.wait()
        for _ in range(flushes):
            for _ in range(per_flush):
                stats.ran("q", _item("t"), "succeeded", time.monotonic(), 0.001, None)
                stats.ran("q", _item("t"), "retry", time.monotonic(), 0.002, "{}")
            stats.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(recorders)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (found,) = task_stats(stores[0], 600)
        runs = recorders * flushes * per_flush
        assert (found["succeeded"], found["failed"], found["retried"]) == (runs, runs, runs)
        assert sum(throughput(stores[0], 3600)["queues"]["q"]["succeeded"]) == runs
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("url", ["sqlite", "redis"], indirect=True)
def test_two_workers_on_one_store_add_up(url: str) -> None:
    app = App(url, lease=5.0)
    add = app.task(name="add")(jobtasks.add)
    add.map([(i, i) for i in range(300)])
    workers = [Worker(App(url, lease=5.0), concurrency=4) for _ in range(2)]
    for w in workers:
        w.app.task(name="add")(jobtasks.add)
        w.start(burst=True)
    for w in workers:
        assert w.join(60)
    (stats,) = task_stats(app.store, 600)
    assert stats["succeeded"] == 300 and stats["failed"] == 0


@pytest.mark.parametrize("url", ["sqlite", "redis"], indirect=True)
def test_a_run_cancelled_while_it_ran_counts_nothing(url: str, tmp_path: Path) -> None:
    app = App(url, lease=5.0)
    spin = app.task(name="spin", retries=3)(jobtasks.spin)
    add = app.task(name="add")(jobtasks.add)
    log = tmp_path / "log"
    with working(app, concurrency=1):
        job = spin.delay(str(log), 60.0)
        wait_for(lambda: "started" in lines(log), timeout=60)
        assert job.cancel() is True
        assert add.delay(1, 2).result(timeout=30) == 3
    assert [s["task"] for s in task_stats(app.store, 600)] == ["add"]
    assert attempt_log(app.store, job.id, job.created_at) == []


def test_pruning_drops_the_hours_each_family_no_longer_keeps(url: str) -> None:
    store = open_store(url)
    now = time.time()
    h = hour_of(now)
    written = {
        runs_ns("10s", h - 2): True,  # kept: 10-second buckets keep the last 3 hours
        runs_ns("10s", h - 3): False,
        runs_ns("1m", h - 25): True,
        runs_ns("1m", h - 26): False,
        runs_ns("1m", h - 40): False,
        depth_ns("10s", h): True,
        depth_ns("1m", h - 30): False,
        attempts_ns(h - 8 * 24): True,  # jobs made 8 days ago keep their logs
        attempts_ns(h - 8 * 24 - 1): False,
    }
    try:
        for ns in written:
            store.kv_set(ns, "1", b"{}")
        assert prune(store, now) == sum(1 for kept in written.values() if not kept)
        for ns, kept in written.items():
            assert bool(store.kv_items(ns)) is kept, ns
        assert prune(store, now) == 0  # it goes on from where it stopped: nothing left
        # Two hours later the next two hours of each family go, and only those.
        store.kv_set(runs_ns("1m", h - 24), "1", b"{}")
        store.kv_set(runs_ns("1m", h - 23), "1", b"{}")
        assert FAMILIES["runs.1m"] == 26
        assert prune(store, now + 2 * 3600) == 4
        gone = [runs_ns("10s", h - 2), runs_ns("1m", h - 25), runs_ns("1m", h - 24)]
        for ns in [*gone, attempts_ns(h - 8 * 24)]:
            assert not store.kv_items(ns), ns
        assert store.kv_items(runs_ns("1m", h - 23)) and store.kv_items(depth_ns("10s", h))
    finally:
        store.close()


def test_a_writer_drops_counts_whose_hour_has_aged_out(url: str) -> None:
    store = open_store(url)
    try:
        stats = RunStats(store, "w1")
        stats.ran("q", _item("t"), "succeeded", time.monotonic(), 0.001, None)
        stats.flush(now=time.time() + 30 * 3600)  # its buckets are older than any kept
        h = hour_of(time.time())
        assert not any(store.kv_items(runs_ns(res, h)) for res in ("10s", "1m"))
        stats.flush()
        assert not any(store.kv_items(runs_ns(res, h)) for res in ("10s", "1m"))
    finally:
        store.close()


def test_depth_series_returns_the_samples_an_observer_wrote(url: str) -> None:
    app = App(url, lease=5.0)
    add = app.task(name="add")(jobtasks.add)
    add.delay(1, 1)
    add.delay(2, 2)
    add.apply_async((3, 3), delay=600)
    observer = Observer(lambda: app.store)
    observer.sample()
    app.store.reserve("default", "here", 60, 1)
    observer.sample()
    observer.depths.flush(app.store)
    for store in (app.store, open_store(url)):
        found = depth_series(store, "default", 600)
        assert found["bucket_seconds"] == 10 and found["end"] - found["start"] == 600
        series = found["series"]
        sampled = [v for v in series["ready"] if v is not None]
        assert 1 <= len(sampled) <= 2  # two when the samples fell either side of a bucket's end
        # Each point is the largest count sampled in it.
        top = {name: max(v for v in values if v is not None) for name, values in series.items()}
        assert top == {"ready": 2, "scheduled": 1, "running": 1, "waiting": 0}
        assert depth_series(store, "other", 600)["series"]["ready"] == [None] * 60
        hour = depth_series(store, "default", 3600)
        assert hour["bucket_seconds"] == 60 and max(v or 0 for v in hour["series"]["ready"]) == 2
        if store is not app.store:
            store.close()


def test_servers_writing_the_same_bucket_keep_the_largest_count(url: str) -> None:
    store = open_store(url)
    now = (time.time() // 60) * 60 + 5  # 5 s into a minute, in the first 10 s bucket
    try:
        one, two = DepthSamples(), DepthSamples()  # two servers sampling one store
        one.add("q", {"ready": 5, "scheduled": 1, "running": 0, "waiting": 2}, now)
        two.add("q", {"ready": 3, "scheduled": 4, "running": 1, "waiting": 0}, now + 1)
        two.add("r", {"ready": 9}, now + 1)
        two.flush(store, now + 2)
        one.flush(store, now + 2)
        one.flush(store, now + 3)  # again: changes nothing
        series = depth_series(store, "q", 600, now=now)["series"]
        assert [series[k][-1] for k in ("ready", "scheduled", "running", "waiting")] == [5, 4, 1, 2]
        assert [series[k][-2] for k in ("ready", "scheduled", "running", "waiting")] == [None] * 4
        assert depth_series(store, "r", 3600, now=now)["series"]["ready"][-1] == 9
        assert depth_series(store, "r", 86400, now=now)["series"]["ready"][-1] == 9
    finally:
        store.close()


def test_counts_a_flush_could_not_write_are_written_by_the_next_once(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baozi.errors import StoreUnavailable

    store = open_store(url)
    try:
        stats = RunStats(store, "w1")
        job = App(url).task(name="t")(jobtasks.add).delay(1, 1)
        item = _item("t")._replace(id=job.id)
        stats.ran("q", item, "failed", time.monotonic(), 0.001, None)
        cas = store.kv_cas
        calls = []

        def failing(*args: object) -> bool:
            calls.append(args)
            if len(calls) == 2:  # the second write of the flush: the first went through
                raise StoreUnavailable("the store is away")
            return cas(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "kv_cas", failing)
        with pytest.raises(StoreUnavailable):
            stats.flush()
        stats.flush()
        stats.flush()  # nothing left: nothing written twice
        (found,) = task_stats(store, 600)
        assert (found["failed"], found["succeeded"]) == (1, 0)
        assert _by_task(task_stats(store, 3600)) == {"t": found}
        assert [e["attempt"] for e in attempt_log(store, job.id, job.created_at)] == [1]
    finally:
        store.close()


@pytest.mark.parametrize("url", ["sqlite", "redis"], indirect=True)
def test_a_run_past_its_timeout_is_a_failure_logged_with_its_timeout_error(url: str) -> None:
    app = App(url, lease=5.0)
    slow = app.task(name="slow", timeout=0.2, retries=1, retry_backoff=0.01)(jobtasks.sleep)
    job = slow.delay(1.0)
    Worker(app).run(burst=True)
    assert job.status == "failed"
    (stats,) = task_stats(app.store, 600)
    assert (stats["failed"], stats["retried"], stats["succeeded"]) == (2, 1, 0)
    log = attempt_log(app.store, job.id, job.created_at)
    assert [(e["attempt"], e["outcome"]) for e in log] == [(1, "retried"), (2, "failed")]
    assert {e["error"]["type"] for e in log if e["error"]} == {"TimeoutError"}
