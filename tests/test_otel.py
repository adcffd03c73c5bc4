"""The OpenTelemetry middleware: one enqueue span and one span per run of each job, the runs in
the enqueue's trace as its children, with the job's attributes and its failures recorded."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from baozi import App, Full, Hold, JobFailed, Message, Middleware, Run, Worker
from baozi.middleware.otel import OpenTelemetry

from . import jobtasks
from ._helpers import working


class Traced:
    """An app traced into memory."""

    def __init__(self, url: str) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = App(url, lease=5.0, middleware=[OpenTelemetry(tracer_provider=self.provider)])

    def spans(self, prefix: str) -> list[ReadableSpan]:
        """The finished spans whose name starts with ``prefix``, in the order they ended."""
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]


@pytest.fixture
def traced(url: str) -> Traced:
    return Traced(url)


def one(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def assert_child(run: ReadableSpan, enqueue: ReadableSpan) -> None:
    assert run.context is not None and enqueue.context is not None and run.parent is not None
    assert run.context.trace_id == enqueue.context.trace_id
    assert run.parent.span_id == enqueue.context.span_id
    assert run.parent.is_remote  # it came with the job, through the store


def test_a_job_has_an_enqueue_span_and_a_run_span_in_one_trace(traced: Traced) -> None:
    add = traced.app.task(jobtasks.add)
    job = add.delay(2, 3)
    with working(traced.app, concurrency=1):
        assert job.result(timeout=30) == 5
    enqueue = one(traced.spans("enqueue "))
    run = one(traced.spans("run "))
    assert enqueue.name == f"enqueue {add.name}" and run.name == f"run {add.name}"
    assert enqueue.kind is SpanKind.PRODUCER and run.kind is SpanKind.CONSUMER
    assert_child(run, enqueue)
    assert dict(enqueue.attributes or {}) == {
        "messaging.system": "baozi",
        "messaging.operation.type": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": job.id,
        "baozi.task": add.name,
    }
    assert dict(run.attributes or {}) == {
        "messaging.system": "baozi",
        "messaging.operation.type": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": job.id,
        "baozi.task": add.name,
        "baozi.job.attempt": 1,
        "baozi.job.status": "succeeded",
    }
    assert run.status.status_code is StatusCode.UNSET and not run.events


def test_a_failed_run_has_status_error_and_its_exception_recorded(traced: Traced) -> None:
    fail = traced.app.task(jobtasks.fail)
    job = fail.delay("out of buns")
    with working(traced.app, concurrency=1):
        with pytest.raises(JobFailed):
            job.result(timeout=30)
    run = one(traced.spans("run "))
    assert_child(run, one(traced.spans("enqueue ")))
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "ValueError: out of buns"
    assert (run.attributes or {})["baozi.job.status"] == "failed"
    (event,) = run.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"
    assert (event.attributes or {})["exception.message"] == "out of buns"


def test_each_run_of_a_retried_job_is_a_child_of_its_enqueue(traced: Traced) -> None:
    flaky = traced.app.task(retries=1, retry_backoff=0.0)(jobtasks.fail_until)
    job = flaky.delay(1)  # the first run raises, the second succeeds
    with working(traced.app, concurrency=1):
        assert job.result(timeout=30) == 2
    enqueue = one(traced.spans("enqueue "))
    first, second = traced.spans("run ")
    for run in (first, second):
        assert_child(run, enqueue)
    assert (first.attributes or {})["baozi.job.attempt"] == 1
    assert (first.attributes or {})["baozi.job.status"] == "retry"
    assert first.status.status_code is StatusCode.UNSET  # the job goes on
    assert [e.name for e in first.events] == ["exception", "retry"]
    assert (first.events[1].attributes or {})["baozi.job.retry_in"] == 0.0  # no backoff
    assert (second.attributes or {})["baozi.job.attempt"] == 2
    assert (second.attributes or {})["baozi.job.status"] == "succeeded"


class HoldOnce(Middleware):
    """Holds each job back once, for a moment."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        if run.item.id in self.held:
            return None
        self.held.add(run.item.id)
        return Hold(0.05)


def test_a_run_held_back_after_its_span_began_ends_it_as_returned(traced: Traced) -> None:
    traced.app.add_middleware(HoldOnce())  # after the tracing: the held run has a span
    add = traced.app.task(jobtasks.add)
    job = add.delay(1, 2)
    with working(traced.app, concurrency=1):
        assert job.result(timeout=30) == 3
    enqueue = one(traced.spans("enqueue "))
    held, ran = traced.spans("run ")
    for run in (held, ran):
        assert_child(run, enqueue)
        assert (run.attributes or {})["baozi.job.attempt"] == 1  # a hold is no delivery
    assert (held.attributes or {})["baozi.job.status"] == "returned"
    assert (ran.attributes or {})["baozi.job.status"] == "succeeded"


class SeeMeta(Middleware):
    """Keeps what the middleware before it put in each message's meta."""

    def __init__(self) -> None:
        self.metas: list[dict[str, str]] = []

    def before_enqueue(self, app: App, message: Message) -> None:
        self.metas.append(dict(message.meta))


def test_the_enqueue_joins_the_callers_trace_and_sends_a_w3c_traceparent(traced: Traced) -> None:
    seen = SeeMeta()
    traced.app.add_middleware(seen)
    add = traced.app.task(jobtasks.add)
    tracer = traced.provider.get_tracer("test")
    with tracer.start_as_current_span("checkout") as checkout:
        jobs = add.map([(1, 2), (3, 4)])
    with working(traced.app, concurrency=2):
        assert [job.result(timeout=30) for job in jobs] == [3, 7]
    enqueues = traced.spans("enqueue ")
    assert len(enqueues) == 2 and len(traced.spans("run ")) == 2
    trace_id = checkout.get_span_context().trace_id
    for enqueue, meta in zip(enqueues, seen.metas, strict=True):
        assert enqueue.context is not None and enqueue.parent is not None
        assert enqueue.parent.span_id == checkout.get_span_context().span_id
        context = enqueue.context
        assert meta["traceparent"] == (
            f"00-{trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        )
        assert context.trace_flags.sampled
    runs = {(s.attributes or {})["messaging.message.id"]: s for s in traced.spans("run ")}
    for job, enqueue in zip(jobs, enqueues, strict=True):
        assert_child(runs[job.id], enqueue)


def test_an_enqueue_that_fails_ends_its_span_with_status_error(traced: Traced) -> None:
    traced.app.queue("small", maxsize=1)
    add = traced.app.task(queue="small")(jobtasks.add)
    add.delay(1, 2)
    with pytest.raises(Full):
        add.apply_async((3, 4), block=False)
    ok, full = traced.spans("enqueue ")
    assert ok.status.status_code is StatusCode.UNSET
    assert full.status.status_code is StatusCode.ERROR
    assert "messaging.message.id" not in (full.attributes or {})


def test_without_opentelemetry_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "baozi.middleware.otel")
    with pytest.raises(ImportError, match=r"pip install 'baozi\[otel\]'"):
        importlib.import_module("baozi.middleware.otel")
