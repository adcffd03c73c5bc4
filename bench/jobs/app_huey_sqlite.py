"""Huey app for the jobs benchmark on SQLite storage (SqliteHuey); completion still via Redis."""

import os

from common import count_done, record_latency
from huey import SqliteHuey

# The driver points every measurement at a fresh SQLite file in a new temp dir.
huey = SqliteHuey("bench", filename=os.environ.get("BENCH_HUEY_DB", "/tmp/bench-huey.db"))


@huey.task()
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@huey.task()
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
