"""SAQ worker settings for the jobs benchmark (``saq app_saq.settings``); knobs from the environment.

Pin for the ``bench`` extra: "saq[redis]==0.26.4". saq 0.26.4 (the newest release) asks for
redis>=4.2,<8, so it shares the environment with arq 0.28 (redis-py < 6); measured on redis-py 5.3.1
+ hiredis.
"""

import os

import redis.asyncio
from common import REDIS_URL, count_done_async, record_latency_async
from saq import Queue

# One queue object per process; saq's worker connects it at start (``Queue.connect``).
queue = Queue.from_url(REDIS_URL, name="bench")
# Job.ttl as set by the producer: seconds to keep a finished job's record, 0 = forever,
# -1 = delete it on completion (saq's default keeps it 600 s).
JOB_TTL = int(os.environ.get("SAQ_JOB_TTL", "600"))


async def noop(ctx, *, n):
    """Drain job: a no-op apart from the completion counter."""
    await count_done_async(ctx["bench_redis"])


async def lat(ctx, *, enqueued_at):
    """Latency job."""
    await record_latency_async(ctx["bench_redis"], enqueued_at)


async def startup(ctx):
    # An async client of our own for the job bodies, the same for every job.
    ctx["bench_redis"] = redis.asyncio.Redis.from_url(REDIS_URL)


async def shutdown(ctx):
    await ctx["bench_redis"].aclose()


# saq's worker configuration. concurrency = jobs in flight per worker process (saq's default 10),
# each a coroutine blocking in BLMOVE on its own connection while the queue is empty.
settings = {
    "queue": queue,
    "functions": [noop, lat],
    "concurrency": int(os.environ.get("SAQ_CONCURRENCY", "10")),
    "startup": startup,
    "shutdown": shutdown,
}
