"""``GET /metrics``: the store's job totals as Prometheus counters, and gauges, read when scraped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..backends.base import COUNTED, STATUSES, Store, WorkerInfo
from ._wire import DEQUE_PREFIX

__all__ = ["CONTENT_TYPE", "Metrics", "busy_slots"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_HELP = {
    "enqueued": "Jobs enqueued.",
    "started": "Jobs leased to a worker to run (each delivery, a retry's too).",
    "succeeded": "Runs of jobs that succeeded.",
    "failed": "Runs of jobs that failed for good.",
    "cancelled": "Jobs cancelled before they started.",
}


def busy_slots(store: Store, workers: list[WorkerInfo]) -> dict[str, int]:
    """How many jobs each worker holds now (by worker id), read from the store's leases rather
    than from the workers' heartbeats, which are up to a lease old."""
    queues = sorted({q for w in workers for q in w.queues})
    return store.lease_holders(queues) if queues else {}


class Metrics:
    """A registry of its own whose one collector reads the store at each scrape: the job totals
    the store keeps (true counters: they count from the queue's first job, not from the
    server's start, and never fall), queue depths, jobs by status, and live workers."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store))

    def render(self) -> bytes:
        """The exposition text (reads the store: call it off the event loop)."""
        return generate_latest(self.registry)


class _StoreCollector:
    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []  # read only when scraped, never at registration

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        totals = {
            event: CounterMetricFamily(
                f"baozi_jobs_{event}", _HELP[event], labels=["queue", "task"]
            )
            for event in COUNTED
        }
        depth = GaugeMetricFamily(
            "baozi_queue_depth", "Jobs ready to run, waiting for a worker.", labels=["queue"]
        )
        jobs = GaugeMetricFamily(
            "baozi_queue_jobs", "Jobs of the queue by status.", labels=["queue", "status"]
        )
        for name in store.queues():
            if name.startswith(DEQUE_PREFIX):
                continue
            for task, events in sorted(store.job_totals(name).items()):
                for event, family in totals.items():
                    family.add_metric([name, task], events.get(event, 0))
            counts = store.job_counts(name)
            depth.add_metric([name], counts.get("queued", 0))
            for status in STATUSES:
                jobs.add_metric([name, status], counts.get(status, 0))
        yield from totals.values()
        yield from (depth, jobs)
        yield from _workers(store)


def _workers(store: Store) -> Iterator[Metric]:
    workers = store.workers()
    alive = GaugeMetricFamily("baozi_workers", "Workers with a recent heartbeat.")
    alive.add_metric([], len(workers))
    slots = GaugeMetricFamily("baozi_worker_slots", "Worker slots, busy or idle.", labels=["state"])
    held = busy_slots(store, workers)
    busy = sum(min(held.get(w.id, 0), w.concurrency) for w in workers)
    slots.add_metric(["busy"], busy)
    slots.add_metric(["idle"], max(0, sum(w.concurrency for w in workers) - busy))
    yield from (alive, slots)
