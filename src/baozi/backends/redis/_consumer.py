"""The Redis store's consumer: jobs handed to an idle worker the moment they are pushed, and a
worker's settle and next reservation in one round trip.

A reserve by the owner that leaves it with free slots also enters it, in the same script, as
waiting idle on the queue, with its free slots and this process's hand-off channel. A push to
that queue then leases what is ready to it and publishes it there (see ``handoff`` in the
prelude); this process's hand-off reader gives the jobs to :meth:`RedisConsumer._handed` on
the reader's own thread, which offers them to the receiver: no reservation, and the worker may
start one in that very thread. Everything else -- changes that make jobs
ready (a release, a due time) -- wakes the receiver through the store's change feed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..base import Consumer, Delivery, Outcome, Receiver
from ._decode import read_items
from ._junk import unwrap

if TYPE_CHECKING:
    from .jobs import RedisStore

__all__ = ["RedisConsumer"]


class RedisConsumer(Consumer):
    store: RedisStore

    def __init__(
        self,
        store: RedisStore,
        owner: str,
        queues: Sequence[str],
        lease: float,
        receiver: Receiver,
    ) -> None:
        super().__init__(store, owner, queues, lease, receiver)
        # From here on this owner's reserves make it wait idle for hand-offs (see the docstring).
        store._server.receive(owner, self._handed)

    def _handed(self, queue: str, flat: list[Any], took: Callable[[], None]) -> None:
        """Jobs handed to the owner, on the hand-off reader's thread."""
        items = read_items(flat, self.store._junk(queue))
        if self.closed:
            took()
            rest = items
        else:
            rest = self.receiver.offer(queue, items, took)
        if rest:  # not started: back to their place, no delivery counted
            self.store._server.hand_back(queue, self.owner, [item.id for item in rest])

    def settle(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        then_take: int = 0,
        *,
        failed_ttl: float = math.inf,
    ) -> tuple[int, list[Delivery]]:
        if not outcomes or then_take <= 0 or self.closed or queue != self.queues[0]:
            return super().settle(queue, outcomes, ttl, then_take, failed_ttl=failed_ttl)
        store = self.store
        server = store._server
        settle = store._settle_args(queue, self.owner, outcomes, ttl, failed_ttl)
        reserve = (
            queue,
            self.owner,
            repr(self.lease),
            then_take,
            *server.hand_to(self.owner, queue),
        )

        def both(retried: bool) -> list[Any]:
            return server.pipeline(
                ("EVALSHA", server.shas["settle"], 0, server.prefix, *settle),
                ("EVALSHA", server.shas["reserve"], 0, server.prefix, *reserve),
            )

        held, flat = (unwrap(x, server.where) for x in server.call("settle and reserve", both))
        # A server without the scripts (new, or restarted) refused them: run them by name, which
        # loads them; any other refusal raises there.
        if isinstance(held, Exception):
            held = server.run("settle", *settle)
        if isinstance(flat, Exception):
            flat = server.run("reserve", *reserve)
        got: list[Delivery] = [(queue, item) for item in read_items(flat, store._junk(queue))]
        if len(got) < then_take:  # the first queue came up short: the others, then watch
            return held, self._top_up(held, got, then_take - len(got), self.queues[1:])
        self._stop_watching()
        return held, got

    def close(self) -> None:
        if not self.closed:
            super().close()
            self.store._server.receive(self.owner, None)  # no more hand-offs: off every idle list
