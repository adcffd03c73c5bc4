"""``GET /metrics``: the server's Prometheus counters and gauges, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..backends.base import STATUSES, Store
from ._wire import DEQUE_PREFIX

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    """Counters fed by the observer (the :class:`~baozi.web.stats.Sink` it reports to), and
    gauges read from the store at each scrape. Counters start at zero when the server does."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self.registry = CollectorRegistry()
        labels = ["queue", "task"]
        self._enqueued = Counter(
            "baozi_jobs_enqueued", "Jobs enqueued.", labels, registry=self.registry
        )
        self._started = Counter(
            "baozi_jobs_started", "Jobs a worker started.", labels, registry=self.registry
        )
        self._succeeded = Counter(
            "baozi_jobs_succeeded", "Jobs that succeeded.", labels, registry=self.registry
        )
        self._failed = Counter(
            "baozi_jobs_failed", "Jobs that failed for good.", labels, registry=self.registry
        )
        self._duration = Histogram(
            "baozi_job_duration_seconds",
            "How long finished jobs ran, from start to finish.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreGauges(store))

    def enqueued(self, queue: str, task: str) -> None:
        self._enqueued.labels(queue, task).inc()

    def started(self, queue: str, task: str) -> None:
        self._started.labels(queue, task).inc()

    def finished(self, status: str, queue: str, task: str, duration: float | None) -> None:
        counter = self._succeeded if status == "succeeded" else self._failed
        counter.labels(queue, task).inc()
        if duration is not None:
            self._duration.labels(queue, task).observe(duration)

    def render(self) -> bytes:
        """The exposition text (reads the store for the gauges: call it off the event loop)."""
        return generate_latest(self.registry)


class _StoreGauges:
    """Queue depths, jobs by status and live workers, read from the store when scraped."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []  # read only when scraped, never at registration

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        depth = GaugeMetricFamily(
            "baozi_queue_depth", "Jobs ready to run, waiting for a worker.", labels=["queue"]
        )
        jobs = GaugeMetricFamily(
            "baozi_queue_jobs", "Jobs of the queue by status.", labels=["queue", "status"]
        )
        for name in store.queues():
            if name.startswith(DEQUE_PREFIX):
                continue
            counts = store.job_counts(name)
            depth.add_metric([name], counts.get("queued", 0))
            for status in STATUSES:
                jobs.add_metric([name, status], counts.get(status, 0))
        workers = store.workers()
        alive = GaugeMetricFamily("baozi_workers", "Workers with a recent heartbeat.")
        alive.add_metric([], len(workers))
        slots = GaugeMetricFamily(
            "baozi_worker_slots", "Worker slots, busy or idle.", labels=["state"]
        )
        busy = sum(w.busy for w in workers)
        slots.add_metric(["busy"], busy)
        slots.add_metric(["idle"], max(0, sum(w.concurrency for w in workers) - busy))
        yield from (depth, jobs, alive, slots)
