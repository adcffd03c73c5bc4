"""Enqueue a few jobs, say where each stands, then wait for the results.

Run a worker beside it (`baozi worker tasks:app`), or let this script run one with --burst.
"""

import sys

from tasks import app, steam, taste

import baozi

jobs = [steam.delay(name, 3) for name in ("pork bun", "veggie bun", "custard bun")]
jobs.append(taste.delay("pork bun"))
for job in jobs:  # where each stands: its status and its place read together
    print(f"job {job.id}: {job.snapshot().describe()}")

if "--burst" in sys.argv:  # no worker running elsewhere: drain the queue here
    baozi.Worker(app).run(burst=True)

for job in jobs:
    print(f"job {job.id}: {job.result(timeout=60)}")
