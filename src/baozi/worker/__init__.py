"""The worker: :class:`Worker` (its API), the loop over the store's Consumer, one job's outcome,
the lease keeper, and the supervisor of worker processes."""

from ._api import Worker

__all__ = ["Worker"]
