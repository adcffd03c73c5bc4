"""A base for stores whose push and enqueue are both one insert of rows."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from .base import NewJob, Priority, Store

Row = tuple[Priority, bytes, str | None]
"""(priority, payload, task): a task name makes the row a job that keeps a record."""


class RowStore(Store):
    """Implements :meth:`Store.push` and :meth:`Store.enqueue` on one ``_add`` of rows."""

    def push(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priorities: Sequence[Priority] | Priority = 0,
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
        maxlen: int | None = None,
    ) -> list[str]:
        n = len(payloads)
        prios = [priorities] * n if isinstance(priorities, (int, float)) else priorities
        rows = [(p, b, None) for p, b in zip(prios, payloads, strict=True)]
        return self._add(queue, rows, front, delay, maxsize, maxlen)

    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        front: bool = False,
        delay: float = 0.0,
        maxsize: int = 0,
    ) -> list[str]:
        rows = [(j.priority, j.payload, j.task) for j in jobs]
        return self._add(queue, rows, front, delay, maxsize, None)

    @abstractmethod
    def _add(
        self,
        queue: str,
        rows: Sequence[Row],
        front: bool,
        delay: float,
        maxsize: int,
        maxlen: int | None,
    ) -> list[str]:
        """Insert the rows, all or none, with the semantics of :meth:`Store.push`."""
