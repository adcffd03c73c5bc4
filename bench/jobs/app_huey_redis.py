"""Huey app for the jobs benchmark on Redis storage (RedisHuey: blocking BRPOP by default)."""

from common import REDIS_URL, count_done, record_latency
from huey import RedisHuey

huey = RedisHuey("bench", url=REDIS_URL)


@huey.task()
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@huey.task()
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
