"""RQ job functions for the jobs benchmark (RQ imports them by dotted path)."""

from common import count_done, record_latency


def noop(n):
    """Drain job: a no-op apart from the completion counter."""
    count_done()


def lat(enqueued_at):
    """Latency job."""
    record_latency(enqueued_at)
