"""Dramatiq actors for the jobs benchmark: Redis broker, default middleware and actor options."""

import dramatiq
from common import REDIS_URL, count_done, record_latency
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=REDIS_URL))


@dramatiq.actor
def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


@dramatiq.actor
def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
