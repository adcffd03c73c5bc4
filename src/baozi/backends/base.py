"""The store contract: what every backend provides, in three parts and a consumer.

* :class:`~baozi.backends.contract.queues.QueueStore` -- named queues of items, their order,
  leases and change signals (:mod:`baozi.backends.contract.queues` says how items are ordered
  and what their states are);
* :class:`~baozi.backends.contract.jobs.JobStore` -- jobs, whose records outlive their runs,
  and the workers that run them;
* :class:`~baozi.backends.contract.coord.CoordStore` -- key-value namespaces, slots and rate
  limits, which the coordination primitives are built on;
* :class:`~baozi.backends.contract.consumer.Consumer` -- how a worker gets its jobs, opened
  with :meth:`Store.consumer`; a store with a faster way (a hand-off) gives its own.

:class:`Store` combines them, with a handle's life cycle. A new backend implements the three
parts' abstract methods; the public conformance suite in :mod:`baozi.testing` checks each part.

Every method is atomic: concurrent calls from any thread, process or machine see each other's
effects entirely or not at all, and no two reservations can obtain the same item while a lease
holds. Delivery is at-least-once: an item is removed only by ``ack`` or ``pop`` (or ``clear``), so
a consumer that dies leaves a lease that expires. Methods do not block, except
:meth:`Store.wait_for_change`, which is how callers wait without spinning.

Backends raise :class:`~baozi.errors.StoreError` (or a subclass) for failures of the store itself,
translated from the driver's exception with ``raise ... from exc``; they raise
:class:`~baozi.errors.Full` only from :meth:`Store.push` with ``maxsize``.

A store that cannot serve a feature at all declares it: :attr:`Store.unsupported` lists the
features, and the call that needs one raises :class:`~baozi.errors.NotSupported` at the call
site (:meth:`Store.require`).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from typing import ClassVar

from .._outage import shown_url
from ..errors import NotSupported
from .contract.consumer import Consumer, Delivery, Receiver, TakeFailed
from .contract.coord import CoordStore
from .contract.jobs import JobStore
from .contract.queues import QueueStore
from .contract.records import (
    CLAIM_TTL,
    COUNTED,
    DEPENDENCY_FAILED,
    ON_DEPENDENCY_FAILURE,
    STATUSES,
    UNIQUE_WHILE,
    Counts,
    Deduplicated,
    Item,
    JobPlace,
    JobRecord,
    NewJob,
    Outcome,
    Priority,
    WorkerInfo,
    dependency_error,
    kept_for,
    unique_holds,
)

__all__ = [
    "CLAIM_TTL",
    "COUNTED",
    "DEPENDENCY_FAILED",
    "Deduplicated",
    "ON_DEPENDENCY_FAILURE",
    "UNIQUE_WHILE",
    "dependency_error",
    "kept_for",
    "unique_holds",
    "FEATURES",
    "Consumer",
    "CoordStore",
    "Counts",
    "Delivery",
    "Item",
    "JobPlace",
    "JobRecord",
    "JobStore",
    "NewJob",
    "Outcome",
    "Priority",
    "QueueStore",
    "Receiver",
    "TakeFailed",
    "STATUSES",
    "Store",
    "WorkerInfo",
]

FEATURES = {
    "position": "how many items are ahead of one (rank, peek, snapshot)",
    "lifo": "pushing to the front (LifoQueue, Deque.appendleft, front=True)",
    "priority": "ordering by priority (PriorityQueue, priority=)",
    "cancel": "cancelling a waiting job, or removing a waiting item",
    "records": "job records kept after a job ends (results, statuses)",
}
"""The features a store may declare it cannot serve (:attr:`Store.unsupported`)."""


class Store(QueueStore, JobStore, CoordStore, ABC):
    """A handle on one store, opened from a URL by :func:`baozi.backends.open_store`.

    A handle may be used from many threads at once. It can be thrown away and re-opened from its URL
    at any time: everything that matters is in the store.
    """

    scheme: ClassVar[str]
    shared_across_processes: ClassVar[bool]
    """True when other processes (and, for a server, other machines) that open the URL see the same
    queues. False only for ``memory://``, which lives inside one process."""
    durable: ClassVar[bool]
    """True when the contents outlive the process that wrote them."""
    unsupported: ClassVar[dict[str, str]] = {}
    """Features of :data:`FEATURES` this store cannot serve, each with what to use instead."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def missing(cls, url: str) -> str | None:
        """Why ``url`` names no store yet, so that opening it would create one (a file that does
        not exist), or None. Commands that only read ask this first and create nothing."""
        return None

    @property
    def location(self) -> str:
        """Where the store is, for people to read (an absolute path for a file; no password)."""
        return shown_url(self.url)

    def warnings(self) -> list[str]:
        """What in the store's setup may lose data, each as a sentence for its operator that
        names the setting to change (empty: nothing). May ask the server: one round trip."""
        return []

    def close(self) -> None:  # noqa: B027 -- optional: stores without connections keep it
        """Let go of connections. The store and its contents stay; other handles are unaffected."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def require(self, feature: str) -> None:
        """Raise :class:`~baozi.errors.NotSupported` when this store cannot serve ``feature``."""
        hint = self.unsupported.get(feature)
        if hint is not None:
            raise NotSupported(FEATURES.get(feature, feature), self.location, hint)

    def check_connection(self, connection: object) -> None:
        """Raise unless :meth:`enqueue_in` can use ``connection``: :class:`NotSupported` when
        this store cannot enqueue in a caller's transaction at all (the default), ValueError
        when ``connection`` is of the wrong kind or reaches another database."""
        raise NotSupported(
            "enqueueing inside a database transaction (connection=)",
            self.location,
            "use a PostgreSQL store (postgresql://...), which enqueues in the caller's own "
            "psycopg 3 transaction",
        )

    def enqueue_in(
        self,
        connection: object,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
    ) -> list[str]:
        """:meth:`enqueue` inside the caller's own transaction on ``connection``: the jobs exist
        if, and only if, that transaction commits (at once on a connection in autocommit
        mode). Checked with :meth:`check_connection` first."""
        self.check_connection(connection)
        raise AssertionError("check_connection() accepted a connection enqueue_in() ignores")

    def consumer(
        self, owner: str, queues: Sequence[str], lease: float, receiver: Receiver
    ) -> Consumer:
        """A consumer of ``queues`` for ``owner`` (see :mod:`baozi.backends.contract.consumer`)."""
        return Consumer(self, owner, queues, lease, receiver)
