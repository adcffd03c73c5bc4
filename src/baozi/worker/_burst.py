"""A burst worker (``--burst``) stops once its queues are drained: when that is, and how often
it looks while only other workers' leases stand between it and the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Burst"]


class Burst:
    """What a worker knows of its queues' end (used in burst mode only; harmless otherwise)."""

    def __init__(self, app: App, queues: Sequence[str], owner: str = "") -> None:
        self._app = app
        self._queues = tuple(queues)
        self._owner = owner  # the worker: a lease it holds is a job on its way to it
        self.since: float | None = None  # when it first found only leased jobs

    def busy(self) -> None:
        """It has work: leases are judged afresh when it is done."""
        self.since = None

    def wait(self) -> float:
        """How long to sleep at most while hungry: a burst waiting on other workers' leases
        looks again soon after they are due a renewal."""
        return 5.0 if self.since is None else self._app.lease / 6

    def drained(self) -> bool:
        """For --burst: whether its queues hold nothing ready or scheduled, and no job is leased
        to a worker that may have died.

        A live worker renews its leases every third of a lease, so a lease that ends more than a
        lease after this worker began to look (``_quiet_since``) was renewed since: its holder is
        alive, and the job is left to it. Any other lease is waited for: renewed (the holder
        lives), or run out, and then its job is ready and this worker runs it.
        """
        store = self._app.store
        if self.since is None:
            self.since = time.time()
        renewed_after = self.since + self._app.lease
        for queue in self._queues:
            if store.queue_options(queue).get("paused"):
                continue  # nothing will come out of it: for --burst it is as good as empty
            counts = store.counts(queue)
            if counts.ready or counts.scheduled:
                self.since = None
                return False
            if counts.leased:
                # A job handed to this very worker (a settle released it, and the store leased
                # it to the worker's idle entry) is on its way to it: not the end.
                if self._owner and store.lease_holders([queue]).get(self._owner):
                    return False
                due = store.next_due(queue)
                if due is not None and due <= renewed_after:
                    return False
        return True
