"""The server's observer: what it counts by sampling the store (every store), once per job,
however many jobs finish between two samples, and a retried job again when it finishes again."""

from __future__ import annotations

import uuid
from collections import Counter

from baozi import App, Worker
from baozi.web.stats import Observer


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
