"""OpenTelemetry: a trace span for every enqueue and every run of a job, the run in the trace of
the code that enqueued it (``pip install 'baozi[otel]'``).

``app.add_middleware(OpenTelemetry())`` traces with the global tracer provider (or the
``tracer_provider`` given). Enqueueing a job makes a PRODUCER span, ``enqueue {task}``, a child
of whatever span is current there; its context is written into the job's ``meta`` by the text-map
propagator (W3C ``traceparent`` by default) and so travels with the job. Each run of the job in a
worker makes a CONSUMER span, ``run {task}``, whose parent is that enqueue span -- in whatever
process or machine runs it. A run that fails has its exception recorded and the status ERROR; a
run that is retried records the exception and a ``retry`` event. The span ends when the run
does, before its outcome is settled; one that never ran to an end (held back by a middleware
after this one, or put back by ``terminate``) ends with the status ``returned``.

The run span is not made current in the thread (or process) that calls the task, which no hook
reaches: spans the task makes start traces of their own. Add this middleware after the ones that
change outcomes, so that its spans show the outcome that is settled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the OpenTelemetry middleware needs opentelemetry-api: pip install 'baozi[otel]'"
    ) from exc

from . import Hold, Message, Middleware, Run

if TYPE_CHECKING:
    from ..app import App
    from ..backends.base import Outcome
    from ..worker import Worker

__all__ = ["OpenTelemetry"]

# Span attributes: OpenTelemetry's messaging conventions, then baozi's own.
SYSTEM = "messaging.system"
OPERATION = "messaging.operation.type"
QUEUE = "messaging.destination.name"
JOB_ID = "messaging.message.id"
TASK = "baozi.task"
ATTEMPT = "baozi.job.attempt"
STATUS = "baozi.job.status"
RETRY_IN = "baozi.job.retry_in"

_SPAN = "otel.span"  # the key of the span in a Message's or a Run's state
_SETTLED = "otel.outcome"  # in a Run's state: after_process saw its outcome


class OpenTelemetry(Middleware):
    """Traces enqueues and runs (see the module docstring)."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self.tracer = trace.get_tracer("baozi", tracer_provider=tracer_provider)
        self._propagator = propagator

    def _inject(self, carrier: dict[str, str], context: Context) -> None:
        if self._propagator is not None:
            self._propagator.inject(carrier, context=context)
        else:  # the global one, as configured when the job is enqueued
            propagate.inject(carrier, context=context)

    def _extract(self, carrier: dict[str, str]) -> Context:
        # From an empty context: never the worker thread's own current span.
        if self._propagator is not None:
            return self._propagator.extract(carrier, context=Context())
        return propagate.extract(carrier, context=Context())

    # -- the producer ---------------------------------------------------------------------------

    def before_enqueue(self, app: App, message: Message) -> None:
        attributes: dict[str, Any] = {
            SYSTEM: "baozi",
            OPERATION: "send",
            QUEUE: message.queue,
            TASK: message.task,
        }
        span = self.tracer.start_span(
            f"enqueue {message.task}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        self._inject(message.meta, trace.set_span_in_context(span))
        message.state[_SPAN] = span

    def after_enqueue(self, app: App, message: Message, job_id: str | None) -> None:
        span: Span | None = message.state.pop(_SPAN, None)
        if span is None:
            return
        if job_id is None:
            span.set_status(Status(StatusCode.ERROR, "the job was not enqueued"))
        else:
            span.set_attribute(JOB_ID, job_id)
        span.end()

    # -- the worker -----------------------------------------------------------------------------

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        attributes: dict[str, Any] = {
            SYSTEM: "baozi",
            OPERATION: "process",
            QUEUE: run.queue,
            TASK: run.task.name,
            JOB_ID: run.item.id,
            ATTEMPT: run.item.deliveries,
        }
        run.state[_SPAN] = self.tracer.start_span(
            f"run {run.task.name}",
            context=self._extract(run.meta),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        return None

    def after_process(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None
    ) -> Outcome:
        span: Span | None = run.state.get(_SPAN)
        if span is None:
            return outcome
        run.state[_SETTLED] = True
        span.set_attribute(STATUS, outcome.status)
        if outcome.status in ("failed", "retry") and exc is not None:
            span.record_exception(exc)
        if outcome.status == "failed":
            detail = f"{type(exc).__name__}: {exc}" if exc is not None else "failed"
            span.set_status(Status(StatusCode.ERROR, detail))
        elif outcome.status == "retry":
            span.add_event("retry", {RETRY_IN: outcome.retry_in})
        return outcome

    def job_ended(self, worker: Worker, run: Run) -> None:
        span: Span | None = run.state.pop(_SPAN, None)
        if span is None:
            return
        if not run.state.pop(_SETTLED, False):
            span.set_attribute(STATUS, "returned")
        span.end()
