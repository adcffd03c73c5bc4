"""Celery app for the jobs benchmark: Redis broker, no result backend (celery's default)."""

from celery import Celery
from common import REDIS_URL, count_done, record_latency

app = Celery("bench", broker=REDIS_URL)
# A queue of our own; keep celery from replacing the root logger's handlers.
app.conf.update(task_default_queue="bench", worker_hijack_root_logger=False)


@app.task
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@app.task
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
