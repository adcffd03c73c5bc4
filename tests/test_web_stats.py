"""The server's observer: what it counts by sampling the store (every store), once per job,
however many jobs finish between two samples, and a retried job again when it finishes again."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from baozi import App, Worker
from baozi.backends.base import Outcome, Store
from baozi.web import create_app
from baozi.web import stats as stats_module
from baozi.web.stats import UNKNOWN_TASK, WINDOW, Observer

from ._web import served_asgi


class Tally:
    """Records what the observer reports, as the Prometheus counters would count it."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str, str]] = Counter()
        self.durations: list[float] = []

    def enqueued(self, queue: str, task: str) -> None:
        self.events["enqueued", queue, task] += 1

    def started(self, queue: str, task: str) -> None:
        self.events["started", queue, task] += 1

    def finished(self, status: str, queue: str, task: str, duration: float | None) -> None:
        self.events[status, queue, task] += 1
        if duration is not None:
            self.durations.append(duration)


def test_each_job_is_counted_once_across_many_pages_and_samples(url: str) -> None:
    app = App(url)
    add = app.task(name="add")(lambda a, b: a + b)
    fail = app.task(name="fail")(lambda: 1 / 0)
    tally = Tally()
    observer = Observer(lambda: app.store, tally)
    observer.sample()  # nothing yet
    add.map([(i, i) for i in range(1500)])  # more than a page of records, between two samples
    failed = fail.delay()
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    observer.sample()  # nothing new: nothing counted twice
    assert tally.events == {
        ("enqueued", "default", "add"): 1500,
        ("enqueued", "default", "fail"): 1,
        ("started", "default", "add"): 1500,
        ("started", "default", "fail"): 1,
        ("succeeded", "default", "add"): 1500,
        ("failed", "default", "fail"): 1,
    }
    assert len(tally.durations) == 1501 and min(tally.durations) >= 0
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 1501 and stats.rate
    assert stats.counts["succeeded"] == 1500
    assert sum(observer.throughput()[1]["default"]) == 1501
    failed.retry()
    Worker(app).run(burst=True)
    observer.sample()
    assert tally.events["failed", "default", "fail"] == 2  # it finished again: counted again


def test_jobs_finished_before_the_observer_started_feed_the_rate_not_the_counters() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    add.map([(1, 1)] * 10)
    Worker(app).run(burst=True)
    tally = Tally()
    observer = Observer(lambda: app.store, tally)
    observer.sample()
    assert tally.events == {}
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 10 and stats.rate
    assert stats.rate == pytest.approx(10 / WINDOW, rel=0.01)  # over the minute, not a second


def test_a_job_that_finishes_behind_many_newer_ones_is_counted(url: str) -> None:
    app = App(url)
    fail = app.task(name="fail")(lambda: 1 / 0)
    jobs = fail.map([()] * 251)  # more than a page of records newer than the first
    tally = Tally()
    observer = Observer(lambda: app.store, tally)
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    assert tally.events["failed", "default", "fail"] == 251
    jobs[0].retry()  # the oldest: its record comes last, newest first
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    assert tally.events["started", "default", "fail"] == 252
    assert tally.events["failed", "default", "fail"] == 252
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 252
    assert sum(observer.throughput()[1]["default"]) == 252


def test_a_finish_beyond_the_records_read_is_counted_from_the_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    fail = app.task(name="fail")(lambda: 1 / 0)
    jobs = fail.map([()] * 25)
    tally = Tally()
    observer = Observer(lambda: app.store, tally)
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    monkeypatch.setattr(stats_module, "PAGE", 10)  # from now on 20 records of each kind at most
    monkeypatch.setattr(stats_module, "MAX_SCAN", 20)
    jobs[0].retry()
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    failed = {task: n for (kind, _, task), n in tally.events.items() if kind == "failed"}
    assert failed == {"fail": 25, UNKNOWN_TASK: 1}  # a finish no record read could name
    assert tally.events["started", "default", UNKNOWN_TASK] == 1


class _FinishingStore:
    """A store that runs ``then`` once, right after the next reading of a queue's counts: jobs
    finish after one sample read the counts and before it read the records."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.then: Callable[[], object] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app.store, name)

    def job_counts(self, queue: str) -> dict[str, int]:
        counts = self.app.store.job_counts(queue)
        then, self.then = self.then, None
        if then is not None:
            then()
        return counts


def test_a_finish_seen_in_its_record_before_the_counts_show_it_is_counted_once() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    add.map([(1, 1)] * 3)
    store = _FinishingStore(app)
    tally = Tally()
    observer = Observer(lambda: cast(Store, store), tally)
    observer.sample()
    store.then = lambda: Worker(app).run(burst=True)
    for _ in range(3):
        observer.sample()
    assert tally.events["succeeded", "default", "add"] == 3
    assert sum(n for (kind, _, _), n in tally.events.items() if kind == "succeeded") == 3


def test_a_running_job_looked_up_as_it_finishes_is_counted_once() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    job = add.delay(1, 1)
    store = _FinishingStore(app)
    tally = Tally()
    observer = Observer(lambda: cast(Store, store), tally)
    (item,) = app.store.reserve("default", "here", lease=60)
    observer.sample()  # seen running
    done = Outcome(item.id, "succeeded", result=app.codec.dumps(2))
    store.then = lambda: app.store.settle("default", "here", [done], ttl=60)
    add.delay(2, 2)  # a count moves: the sample reads who runs, after the job finished
    for _ in range(3):
        observer.sample()
    assert job.status == "succeeded"
    finished = {task: n for (kind, _, task), n in tally.events.items() if kind == "succeeded"}
    assert finished == {"add": 1}


def test_a_job_retried_through_the_api_is_counted_though_its_counts_end_where_they_were() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    fail = app.task(name="fail")(lambda: 1 / 0)
    jobs = fail.map([()] * 25)  # more failed records than a glance at the newest reads
    Worker(app).run(burst=True)
    web = create_app(app, interval=3600)  # sampled once as it starts, then when told here
    observer: Observer = web.state.observer
    with served_asgi(web) as base:
        assert observer.sampled.wait(10)
        retried = httpx.post(f"{base}/api/jobs/{jobs[0].id}/retry")
        assert retried.status_code == 202
        Worker(app).run(burst=True)  # it fails again: the failed count is back where it was
        observer.sample()
        metrics = httpx.get(f"{base}/metrics").text
    assert 'baozi_jobs_failed_total{queue="default",task="fail"} 1.0' in metrics
    assert 'baozi_jobs_started_total{queue="default",task="fail"} 1.0' in metrics


def test_the_rate_of_a_queue_with_more_history_than_the_first_read_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stats_module, "PAGE", 10)
    monkeypatch.setattr(stats_module, "MAX_SCAN", 20)
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    add.map([(1, 1)] * 30)
    Worker(app).run(burst=True)
    observer = Observer(lambda: app.store, Tally())
    observer.sample()  # reads 20 of the 30 finishes: the minute before is not known in full
    add.map([(1, 1)] * 5)
    Worker(app).run(burst=True)
    observer.sample()
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 5  # those it saw in full
    watched = min(WINDOW, time.time() - observer.since)
    assert stats.rate == pytest.approx(5 / max(1.0, watched), rel=0.1)
