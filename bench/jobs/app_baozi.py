"""baozi app for the jobs benchmark: an embedded SQLite store, two tasks."""

import os

import baozi

from common import count_done, record_latency

# The driver points every measurement at a fresh SQLite file in a new temp dir.
app = baozi.App(os.environ.get("BENCH_BAOZI_URL", "sqlite:////tmp/bench-baozi.db"))


@app.task
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@app.task
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
