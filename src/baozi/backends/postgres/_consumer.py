"""The PostgreSQL store's consumer: a worker's settle and its next reservation in one statement,
so one round trip and one commit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..base import Consumer, Delivery, Outcome, TakeFailed
from ._settle import SETTLE_AND_RESERVE, finish_params

if TYPE_CHECKING:
    from .jobs import PostgresStore

__all__ = ["PostgresConsumer"]


class PostgresConsumer(Consumer):
    store: PostgresStore

    def settle(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        ttl: float,
        then_take: int = 0,
        *,
        failed_ttl: float = math.inf,
    ) -> tuple[int, list[Delivery]]:
        plain = all(o.status in ("succeeded", "failed") for o in outcomes)
        if not outcomes or not plain or then_take <= 0 or self.closed:
            return super().settle(queue, outcomes, ttl, then_take, failed_ttl=failed_ttl)
        s = self.store
        db = s._db
        qid = db.qids.get(queue) or db.find_qid(queue)
        if qid is None:
            return super().settle(queue, outcomes, ttl, then_take, failed_ttl=failed_ttl)
        params = finish_params(self.owner, outcomes, ttl, failed_ttl)
        params.update(qid=qid, n=then_take, lease=self.lease)
        sql = s.sql(SETTLE_AND_RESERVE)
        row = db.run("settle and reserve", lambda c: c.execute(sql, params).fetchone())
        db.signal.notify()
        assert row is not None  # an aggregate: always one row
        settled, _, *columns = row
        rows = list(zip(*columns, strict=True)) if columns[0] is not None else []
        got: list[Delivery] = [(queue, item) for item in s.items_of(rows)]
        settled = int(settled)
        if settled < len(params["ids"]):
            # Jobs others depend on were left (or their leases were lost): they end, and their
            # dependents are released, in a transaction of their own; a take after sees those.
            try:
                settled += s.finish_parents(params)
            except Exception as exc:
                raise TakeFailed(settled, got) from exc
        if len(got) < then_take:  # the first queue came up short: promote, the others, watch
            return settled, self._top_up(settled, got, then_take - len(got), self.queues)
        self._stop_watching()
        return settled, got
