"""baozi app for the jobs benchmark: an embedded SQLite store, two tasks."""

import os
import sys

from common import IMPORTED, count_done, record_latency

import baozi

# Every process that loads the app says which baozi it runs (to the worker's log, for measure.py:
# a baseline twin must run the baseline checkout's code in each of them).
print(IMPORTED, baozi.__file__, file=sys.stderr, flush=True)

# The driver points every measurement at a fresh SQLite file in a new temp dir; a config may ask
# for another durability level (e.g. "fsync": every commit synced to disk).
URL = os.environ.get("BENCH_BAOZI_URL", "sqlite:////tmp/bench-baozi.db")
DURABLE = os.environ.get("BENCH_BAOZI_DURABLE")
app = baozi.App(f"{URL}?durable={DURABLE}" if DURABLE else URL)


@app.task
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@app.task
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
