"""A base for stores whose push and enqueue are both one insert of rows."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from .base import Item, NewJob, Priority, Store

Row = tuple[Priority, bytes, str | None]
"""(priority, payload, task): a task name makes the row a job that keeps a record."""


def item_number(item_id: object) -> int | None:
    """The row id behind an item id, when the id is one this store could have issued: written
    as it writes them ("10", not "1_0", "+10", " 10" or other scripts' digits, which int() reads
    as 10 too), within 64-bit integers (SQLite's, and PostgreSQL's bigint)."""
    if not (isinstance(item_id, str) and 0 < len(item_id) <= 19):
        return None
    if not (item_id.isascii() and item_id.isdigit()):
        return None
    num = int(item_id)
    return num if 0 < num < 2**63 and str(num) == item_id else None


def in_order(items: list[Item], ids: Sequence[str]) -> list[Item]:
    """``items`` in the order in which their ids first stand in ``ids`` (all of them do)."""
    place: dict[str, int] = {}
    for k, item_id in enumerate(ids):
        place.setdefault(item_id, k)
    return sorted(items, key=lambda item: place[item.id])


def options_of(raw: str | bytes | None) -> tuple[dict[str, Any], str | None]:
    """A queue's options from their JSON text, and why they are junk (None when they are not)."""
    try:
        options = json.loads(raw or "")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return {}, f"options are no JSON: {exc}"
    if not isinstance(options, dict):
        return {}, f"options are a JSON {type(options).__name__}, not an object"
    return options, None


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

    def _enqueue_rows(
        self, queue: str, jobs: Sequence[NewJob], front: bool, delay: float, maxsize: int
    ) -> list[str]:
        """:meth:`enqueue` of plain jobs (no unique key, no dependencies, no marks): their rows,
        added as :meth:`push` adds items. Each store's ``enqueue`` takes this path for them."""
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
