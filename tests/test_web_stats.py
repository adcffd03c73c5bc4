"""What the server counts: the store's job totals, exact however many jobs finish between two
samples and whoever writes them; the rates, chart and estimates drawn from their rises."""

from __future__ import annotations

import re
import threading
import time
import uuid

import httpx
import pytest

from baozi import App, Worker
from baozi.backends.base import Outcome
from baozi.web import create_app
from baozi.web.stats import WINDOW, Observer

from ._helpers import wait_for
from ._web import served_asgi


def _metric(text: str, name: str, queue: str, task: str) -> float:
    found = re.search(rf'^{name}{{queue="{queue}",task="{task}"}} (\S+)$', text, re.MULTILINE)
    assert found is not None, (name, queue, task)
    return float(found.group(1))


def test_n_jobs_made_and_run_by_concurrent_writers_while_served_count_exactly_n(url: str) -> None:
    app = App(url)
    add = app.task(name="add")(lambda a, b: a + b)
    producers, per_producer = 4, 150
    n = producers * per_producer
    web = create_app(app, interval=0.05)  # sampled often: many samples land mid-burst
    workers = [Worker(app, concurrency=4) for _ in range(2)]
    with served_asgi(web) as base, httpx.Client(base_url=base, timeout=30) as client:
        for worker in workers:
            worker.start()

        def produce(k: int) -> None:
            for i in range(per_producer):
                if i % 10 == 0:  # some through the API, some straight to the store
                    assert client.post("/api/jobs", json={"task": "add", "args": [k, i]})
                elif i % 3 == 0:
                    add.map([(k, i)])
                else:
                    add.delay(k, i)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def done() -> bool:
            counts = app.store.job_counts("default")
            return counts["succeeded"] == n

        wait_for(done, timeout=120)
        for worker in workers:
            worker.close()
        for worker in workers:
            assert worker.join(30)
        text = client.get("/metrics").text
        for name in ("enqueued", "started", "succeeded"):
            assert _metric(text, f"baozi_jobs_{name}_total", "default", "add") == n, name
        assert _metric(text, "baozi_jobs_failed_total", "default", "add") == 0
        observer: Observer = web.state.observer
        wait_for(lambda: observer.sampled.clear() or observer.sampled.wait(5))
        (queue,) = [q for q in client.get("/api/queues").json()["queues"] if q["name"] == "default"]
        assert queue["succeeded"] == n and queue["finished_last_minute"] == n
        assert sum(client.get("/api/throughput").json()["queues"]["default"]) == n


def test_each_finish_counts_once_and_a_retried_job_again_when_it_finishes_again(url: str) -> None:
    app = App(url)
    add = app.task(name="add")(lambda a, b: a + b)
    fail = app.task(name="fail")(lambda: 1 / 0)
    observer = Observer(lambda: app.store)
    observer.sample()  # nothing yet
    add.map([(i, i) for i in range(1500)])
    failed = fail.delay()
    observer.sample()
    Worker(app).run(burst=True)
    observer.sample()
    observer.sample()  # nothing new: nothing counted twice
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 1501 and stats.rate
    assert stats.counts == {"waiting": 0, "scheduled": 0, "queued": 0, "running": 0}
    assert sum(observer.throughput()[1]["default"]) == 1501
    failed.retry()
    Worker(app).run(burst=True)
    observer.sample()
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 1502
    assert app.store.job_totals("default")["fail"]["failed"] == 2


def test_finishes_from_before_the_server_started_are_not_taken_for_recent_ones() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    add.map([(1, 1)] * 10)
    Worker(app).run(burst=True)
    observer = Observer(lambda: app.store, interval=0.1)
    observer.sample()
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 0 and stats.rate is None
    add.map([(1, 1)] * 5)
    Worker(app).run(burst=True)
    observer.sample()
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 5
    # Over the time watched, not the whole minute: what came before it is not known.
    assert stats.rate is not None and stats.rate > 5 / WINDOW


def test_a_queue_made_after_the_server_started_has_all_its_finishes_counted() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    observer = Observer(lambda: app.store)
    observer.sample()  # no queue yet
    add.map([(1, 1)] * 6)
    Worker(app).run(burst=True)
    observer.sample()
    stats = observer.stats("default")
    assert stats is not None and stats.finished_last_minute == 6
    assert stats.rate == pytest.approx(6 / WINDOW, rel=0.01)  # nothing before it: the full minute


def test_the_mean_duration_comes_from_the_jobs_running_and_the_rate() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    observer = Observer(lambda: app.store)
    observer.sample()
    add.map([(1, 1)] * 4)
    items = app.store.reserve("default", "here", 60, 4)
    observer.sample()  # 4 running
    app.store.settle(
        "default", "here", [Outcome(i.id, "succeeded", result=b"") for i in items], ttl=60
    )
    observer.sample()  # 0 running, 4 finished
    stats = observer.stats("default")
    assert stats is not None and stats.rate and stats.mean_duration is not None
    assert stats.mean_duration == pytest.approx(2 / stats.rate)  # 2 running on average


def test_a_deleted_queue_leaves_the_observer_and_counts_anew_when_made_again() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add", queue="q")(lambda a, b: a + b)
    observer = Observer(lambda: app.store)
    observer.sample()
    add.map([(1, 1)] * 3)
    Worker(app, queues=["q"]).run(burst=True)
    observer.sample()
    app.store.clear("q")
    assert app.store.delete_queue("q")
    observer.sample()
    assert observer.stats("q") is None
    add.delay(1, 1)
    Worker(app, queues=["q"]).run(burst=True)
    observer.sample()
    stats = observer.stats("q")
    assert stats is not None and stats.finished_last_minute == 1


def test_the_server_does_not_wait_long_to_show_what_finished() -> None:
    app = App(f"memory://{uuid.uuid4().hex}")
    add = app.task(name="add")(lambda a, b: a + b)
    web = create_app(app, interval=0.05)
    with served_asgi(web) as base:
        add.map([(1, 1)] * 3)
        started = time.monotonic()
        Worker(app).run(burst=True)
        wait_for(
            lambda: (
                sum(httpx.get(f"{base}/api/throughput").json()["queues"].get("default", [])) == 3
            )
        )
        assert time.monotonic() - started < 10
