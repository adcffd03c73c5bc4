"""pgqueuer worker factory for the jobs benchmark (``pgq run app_pgqueuer:main``).

One asyncpg connection, as pgqueuer's docs advise for the QueueManager (asyncpg is the driver
they recommend); the schema comes from ``PGQUEUER_SCHEMA``, which pgqueuer reads itself (set by
the driver for each measurement). The job bodies are the async ones, on an async Redis client, as
for arq and SAQ. Batch size, concurrency cap and log level are ``pgq run`` options (systems_pg).
"""

from contextlib import asynccontextmanager

import asyncpg
import redis.asyncio
from common import REDIS_URL, count_done_async, record_latency_async
from pg import PG_DSN
from pgqueuer import PgQueuer


@asynccontextmanager
async def main():
    conn = await asyncpg.connect(PG_DSN)
    r = redis.asyncio.Redis.from_url(REDIS_URL)
    pgq = PgQueuer.from_asyncpg_connection(conn)

    @pgq.entrypoint("noop")
    async def noop(job):
        """Drain job: a no-op apart from the completion counter."""
        await count_done_async(r)

    @pgq.entrypoint("lat")
    async def lat(job):
        """Latency job: the payload is the enqueue wall time."""
        await record_latency_async(r, float(job.payload))

    try:
        yield pgq
    finally:
        await r.aclose()
        await conn.close()
