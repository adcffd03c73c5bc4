"""procrastinate app for the jobs benchmark: PostgreSQL through psycopg 3, two async tasks.

procrastinate runs async tasks on its worker's event loop (a sync task would run in a thread), so
the job bodies are the async ones, on an async Redis client, as for arq and SAQ. The schema comes
from the environment (``BENCH_PG_SCHEMA``, set by the driver for each measurement): procrastinate
puts its objects in the first schema of the connection's search_path (its docs, "Set the database
PG schema"). ``BENCH_PROCRASTINATE_POOL`` sizes the connection pool (psycopg_pool's default 4
when unset).
"""

import os

import procrastinate
import redis.asyncio
from common import REDIS_URL, count_done_async, record_latency_async
from pg import PG_DSN

SCHEMA = os.environ.get("BENCH_PG_SCHEMA", "public")
_pool = {}
if os.environ.get("BENCH_PROCRASTINATE_POOL"):
    size = int(os.environ["BENCH_PROCRASTINATE_POOL"])
    _pool = {"min_size": size, "max_size": size}

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=PG_DSN, kwargs={"options": f"-c search_path={SCHEMA}"}, **_pool
    )
)
_redis: list[redis.asyncio.Redis] = []


def bench_redis() -> redis.asyncio.Redis:
    """The worker's async Redis client, made on first use (on the worker's event loop)."""
    if not _redis:
        _redis.append(redis.asyncio.Redis.from_url(REDIS_URL))
    return _redis[0]


@app.task(name="noop")
async def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    await count_done_async(bench_redis())


@app.task(name="lat")
async def lat(enqueued_at):
    """Latency job."""
    await record_latency_async(bench_redis(), enqueued_at)
