"""User middleware: it hears every hook, in order, around enqueueing and running jobs; it can add
meta that reaches the worker, hold jobs back, rewrite outcomes; and a hook that raises harms
neither the caller (after the enqueue) nor the worker."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from baozi import App, Full, JobFailed, StoreError, Worker
from baozi.backends.base import Outcome
from baozi.middleware import Hold, Message, Middleware, Run

from . import jobtasks
from ._helpers import working

Event = tuple[Any, ...]


class Recorder(Middleware):
    """Notes every hook it hears, with the job it concerns and what the hook was told."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.metas: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _note(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def before_enqueue(self, app: App, message: Message) -> None:
        self._note("before_enqueue", message.task)

    def after_enqueue(self, app: App, message: Message, job_id: str | None) -> None:
        self._note("after_enqueue", job_id)

    def worker_start(self, worker: Worker) -> None:
        self._note("worker_start")

    def worker_stop(self, worker: Worker) -> None:
        self._note("worker_stop")

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        self.metas[run.item.id] = dict(run.meta)
        self._note("before_process", run.item.id, run.item.deliveries)
        return None

    def on_hold(self, worker: Worker, run: Run, hold: Hold) -> None:
        self._note("on_hold", run.item.id, hold.delay)

    def after_process(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None
    ) -> Outcome:
        self._note("after_process", run.item.id, outcome.status, type(exc).__name__)
        return outcome

    def job_ended(self, worker: Worker, run: Run) -> None:
        self._note("job_ended", run.item.id)

    def after_settle(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None, value: Any
    ) -> None:
        self._note("after_settle", run.item.id, outcome.status, value)


@pytest.fixture(params=["App(middleware=...)", "app.add_middleware"])
def recorded(request: pytest.FixtureRequest, url: str) -> tuple[App, Recorder]:
    """An app with a Recorder, added either way an app takes middleware."""
    recorder = Recorder()
    if request.param == "app.add_middleware":
        app = App(url, lease=5.0)
        app.add_middleware(recorder)
    else:
        app = App(url, lease=5.0, middleware=[recorder])
    return app, recorder


def run_of(job_id: str, status: str, exc: str, value: Any, attempt: int = 1) -> list[Event]:
    """The worker-side hooks of one run of a job, in order."""
    return [
        ("before_process", job_id, attempt),
        ("after_process", job_id, status, exc),
        ("job_ended", job_id),
        ("after_settle", job_id, status, value),
    ]


def test_a_job_that_succeeds_passes_every_hook_in_order(recorded: tuple[App, Recorder]) -> None:
    app, recorder = recorded
    add = app.task(jobtasks.add)
    job = add.delay(2, 3)
    with working(app, concurrency=1):
        assert job.result(timeout=30) == 5
    assert recorder.events == [
        ("before_enqueue", add.name),
        ("after_enqueue", job.id),
        ("worker_start",),
        *run_of(job.id, "succeeded", "NoneType", 5),
        ("worker_stop",),
    ]


def test_a_job_that_raises_is_retried_and_the_middleware_sees_each_run(
    recorded: tuple[App, Recorder],
) -> None:
    app, recorder = recorded
    flaky = app.task(retries=1, retry_backoff=0.0)(jobtasks.fail_until)
    job = flaky.delay(1)  # the first run raises, the second returns its attempt
    with working(app, concurrency=1):
        assert job.result(timeout=30) == 2
    assert recorder.events == [
        ("before_enqueue", flaky.name),
        ("after_enqueue", job.id),
        ("worker_start",),
        *run_of(job.id, "retry", "RuntimeError", None),  # Retries ran first: a retry
        *run_of(job.id, "succeeded", "NoneType", 2, attempt=2),
        ("worker_stop",),
    ]


def test_a_job_that_fails_for_good_passes_every_hook_in_order(
    recorded: tuple[App, Recorder],
) -> None:
    app, recorder = recorded
    fail = app.task(jobtasks.fail)
    job = fail.delay("no")
    with working(app, concurrency=1):
        with pytest.raises(JobFailed, match="no"):
            job.result(timeout=30)
    assert recorder.events == [
        ("before_enqueue", fail.name),
        ("after_enqueue", job.id),
        ("worker_start",),
        *run_of(job.id, "failed", "ValueError", None),
        ("worker_stop",),
    ]


def test_after_enqueue_hears_none_when_the_enqueue_fails(url: str) -> None:
    recorder = Recorder()
    app = App(url, middleware=[recorder])
    app.queue("small", maxsize=1)
    add = app.task(queue="small")(jobtasks.add)
    job = add.delay(1, 2)
    with pytest.raises(Full):
        add.apply_async((3, 4), block=False)
    with pytest.raises(ValueError, match="can never fit"):
        add.map([(5, 6), (7, 8)])
    assert recorder.events == [
        ("before_enqueue", add.name),
        ("after_enqueue", job.id),
        ("before_enqueue", add.name),
        ("after_enqueue", None),
        ("before_enqueue", add.name),
        ("before_enqueue", add.name),
        ("after_enqueue", None),
        ("after_enqueue", None),
    ]
    assert app.store.counts("small").total == 1


class SaysAfter(Middleware):
    """Says its name into a shared list when it hears after_enqueue."""

    def __init__(self, name: str, said: list[str]) -> None:
        self.name, self.said = name, said

    def after_enqueue(self, app: App, message: Message, job_id: str | None) -> None:
        self.said.append(f"{self.name}.after_enqueue")


class SaysBoth(SaysAfter):
    """Says its name at before_enqueue too."""

    def before_enqueue(self, app: App, message: Message) -> None:
        self.said.append(f"{self.name}.before_enqueue")


def test_enqueue_hooks_run_in_the_order_the_middleware_was_added(url: str) -> None:
    said: list[str] = []
    app = App(url, middleware=[SaysAfter("first", said), SaysBoth("second", said)])
    app.task(jobtasks.add).delay(1, 2)
    assert said == ["second.before_enqueue", "first.after_enqueue", "second.after_enqueue"]


class Tenant(Middleware):
    """Tags every job with its tenant, on the producer's side."""

    def before_enqueue(self, app: App, message: Message) -> None:
        message.meta["tenant"] = "acme"
        message.meta["task"] = message.task


def test_meta_added_before_enqueue_reaches_the_run(url: str) -> None:
    recorder = Recorder()
    app = App(url, lease=5.0, middleware=[Tenant(), recorder])
    echo = app.task(jobtasks.echo)
    jobs = [echo.delay(1, k="v"), *echo.map([(2,), (3,)]), echo.apply_async((4,), delay=0.01)]
    with working(app, concurrency=2):
        results = [job.result(timeout=30) for job in jobs]
    # The meta is no argument.
    assert results == [[(1,), {"k": "v"}], [(2,), {}], [(3,), {}], [(4,), {}]]
    expected = {"tenant": "acme", "task": echo.name}
    assert recorder.metas == {job.id: expected for job in jobs}


def test_meta_reaches_the_run_in_another_worker_process(shared_url: str, tmp_path: Path) -> None:
    app = App(shared_url, middleware=[Tenant()])
    app.import_path = "tests.mwapp:app"  # whose middleware keeps each run's meta in the store
    note = app.task(name="note")(jobtasks.note)
    jobs = note.map([(str(tmp_path / "log"), i) for i in range(4)])
    worker = Worker(app, processes=2, concurrency=1)
    worker.start()
    try:
        for job in jobs:
            job.result(timeout=60)
    finally:
        worker.close()
        assert worker.join(60)
    seen = app.dict("seen")
    for job in jobs:
        assert seen[job.id]["meta"] == {"tenant": "acme", "task": "note"}
        assert seen[job.id]["pid"] != os.getpid()


class Refuse(Middleware):
    def before_enqueue(self, app: App, message: Message) -> None:
        raise PermissionError(f"no {message.task} today")


def test_a_before_enqueue_that_raises_enqueues_nothing_and_the_caller_gets_its_error(
    url: str,
) -> None:
    recorder = Recorder()
    app = App(url, middleware=[recorder, Refuse()])
    add = app.task(jobtasks.add)
    with pytest.raises(PermissionError, match="no .*add today"):
        add.delay(1, 2)
    with pytest.raises(PermissionError):
        add.map([(1, 2), (3, 4)])
    with pytest.raises(PermissionError):
        app.executor().submit(jobtasks.add, 1, 2)
    assert app.store.counts("default").total == 0
    # The middleware whose before_enqueue returned hears that the job was not enqueued.
    assert recorder.events == [("before_enqueue", add.name), ("after_enqueue", None)] * 2 + [
        ("before_enqueue", "tests.jobtasks:add"),
        ("after_enqueue", None),
    ]


class HoldOnce(Middleware):
    """Holds each job back once, for a moment."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        if run.item.id in self.held:
            return None
        self.held.add(run.item.id)
        return Hold(0.05)


def test_a_hold_from_before_process_runs_the_job_later_without_counting_an_attempt(
    url: str,
) -> None:
    recorder = Recorder()
    app = App(url, lease=5.0, middleware=[recorder, HoldOnce()])
    add = app.task(jobtasks.add)
    job = add.delay(1, 2)
    with working(app, concurrency=1):
        assert job.result(timeout=30) == 3
    assert job.attempts == 1
    assert recorder.events == [
        ("before_enqueue", add.name),
        ("after_enqueue", job.id),
        ("worker_start",),
        ("before_process", job.id, 1),
        ("job_ended", job.id),  # released before the hold: HoldOnce held it back
        ("on_hold", job.id, 0.05),
        *run_of(job.id, "succeeded", "NoneType", 3),  # the same attempt, once more
        ("worker_stop",),
    ]


def test_job_ended_is_called_once_when_settling_is_retried(url: str) -> None:
    recorder = Recorder()
    app = App(url, lease=5.0, middleware=[recorder])
    add = app.task(jobtasks.add)
    job = add.delay(1, 2)
    make_consumer, failures = app.store.consumer, [1]

    def flaky_consumer(*args: Any, **kwargs: Any) -> Any:
        consumer = make_consumer(*args, **kwargs)
        settle = consumer.settle

        def flaky_settle(*args: Any, **kwargs: Any) -> Any:
            if failures[0] > 0:
                failures[0] -= 1
                raise StoreError("the store is unreachable (injected)")
            return settle(*args, **kwargs)

        consumer.settle = flaky_settle  # type: ignore[method-assign]
        return consumer

    app.store.consumer = flaky_consumer  # type: ignore[method-assign]
    with working(app, concurrency=1):
        assert job.result(timeout=30) == 3
    assert failures == [0]
    worker_side = [e for e in recorder.events if e[0] not in ("before_enqueue", "after_enqueue")]
    assert worker_side == [
        ("worker_start",),
        *run_of(job.id, "succeeded", "NoneType", 3),
        ("worker_stop",),
    ]


class Reject(Middleware):
    """Fails every job that succeeded, with an error of its own."""

    def after_process(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None
    ) -> Outcome:
        if outcome.status != "succeeded":
            return outcome
        error = {"type": "Rejected", "message": "not today", "traceback": ""}
        return outcome._replace(status="failed", result=None, error=json.dumps(error))


def test_the_outcome_after_process_returns_is_the_one_settled(url: str) -> None:
    recorder = Recorder()
    app = App(url, lease=5.0, middleware=[Reject(), recorder])
    add = app.task(jobtasks.add)
    job = add.delay(1, 2)
    with working(app, concurrency=1):
        with pytest.raises(JobFailed) as caught:
            job.result(timeout=30)
    assert caught.value.exc_type == "Rejected" and "not today" in str(caught.value)
    assert job.status == "failed"
    assert run_of(job.id, "failed", "NoneType", 3)[1:2] == [
        e for e in recorder.events if e[0] == "after_process"
    ]
    assert ("after_settle", job.id, "failed", 3) in recorder.events


class Boom(Middleware):
    def after_settle(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None, value: Any
    ) -> None:
        raise RuntimeError("boom")


def test_an_after_settle_that_raises_is_logged_and_the_worker_keeps_running(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(url, lease=5.0, middleware=[Boom()])
    add = app.task(jobtasks.add)
    with caplog.at_level(logging.ERROR, logger="baozi.worker"), working(app, concurrency=1):
        assert add.delay(1, 2).result(timeout=30) == 3
        assert add.delay(3, 4).result(timeout=30) == 7
    failed = [r for r in caplog.records if r.getMessage() == "middleware Boom: after_settle failed"]
    assert len(failed) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failed)


def test_only_middleware_can_be_added() -> None:
    with pytest.raises(TypeError, match="must be a baozi.middleware.Middleware"):
        App("memory://only-middleware", middleware=[object()])  # type: ignore[list-item]
    app = App("memory://only-middleware")
    with pytest.raises(TypeError, match="not str"):
        app.add_middleware("Recorder")  # type: ignore[arg-type]
    assert len(app.middleware) == 3  # the defaults, nothing more
