"""arq worker settings for the jobs benchmark; the tuning knobs come from the environment."""

import os
from urllib.parse import urlsplit

import redis.asyncio
from arq.connections import RedisSettings
from common import REDIS_URL, count_done_async, record_latency_async


def redis_settings() -> RedisSettings:
    """arq's connection settings for the benchmark's Redis database."""
    url = urlsplit(REDIS_URL)
    return RedisSettings(host=url.hostname, port=url.port or 6379, database=int(url.path[1:] or 0))


async def noop(ctx, n):
    """Drain job: a no-op apart from the completion counter."""
    await count_done_async(ctx["bench_redis"])


async def lat(ctx, enqueued_at):
    """Latency job."""
    await record_latency_async(ctx["bench_redis"], enqueued_at)


async def startup(ctx):
    # An async client of our own for the job bodies, the same for every job.
    ctx["bench_redis"] = redis.asyncio.Redis.from_url(REDIS_URL)


async def shutdown(ctx):
    await ctx["bench_redis"].aclose()


class WorkerSettings:
    """arq's worker configuration (``arq app_arq.WorkerSettings``)."""

    functions = [noop, lat]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_settings()
    max_jobs = int(os.environ.get("ARQ_MAX_JOBS", "10"))
    poll_delay = float(os.environ.get("ARQ_POLL_DELAY", "0.5"))
    keep_result = float(os.environ.get("ARQ_KEEP_RESULT", "3600"))


# arq's own default log configuration, at WARNING instead of INFO (``--custom-log-dict``).
QUIET = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "arq.standard": {
            "level": "WARNING",
            "class": "logging.StreamHandler",
            "formatter": "arq.standard",
        }
    },
    "formatters": {"arq.standard": {"format": "%(asctime)s: %(message)s", "datefmt": "%H:%M:%S"}},
    "loggers": {"arq": {"handlers": ["arq.standard"], "level": "WARNING"}},
}
