"""The listings a dashboard reads from the Redis store: pages of job records, the oldest ready
job of each queue, the jobs each owner runs."""

from __future__ import annotations

from collections.abc import Sequence

from .._pages import check_page, cursor_of, key_of
from ..base import JobRecord
from ._decode import read_records
from .coord import RedisCoordination

PAGE_BUDGET = 5000
"""How many records one ``records_page`` call examines at most: the jobs script walks the
queues' job indexes and filters as it goes, so a filter few jobs pass gives a short page (even
an empty one) and a cursor to go on from, rather than a script that blocks the server."""


class RedisListing(RedisCoordination):
    """Listings of job records, each read by one script: at one moment."""

    def records_page(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        task: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[JobRecord], str | None]:
        check_page(status, limit)
        below = key_of(cursor)  # an order number: the score of the queues' job indexes
        args = (
            queue if queue is not None else "",
            status or "",
            task if task is not None else "",
            "" if since is None else repr(float(since)),
            "" if until is None else repr(float(until)),
            search if search is not None else "",
            "" if below is None else below,
            limit,
            PAGE_BUDGET,
        )
        if queue == "" or task == "":  # no queue and no job's task has an empty name
            return [], None
        *flat, last = self._server.run("jobs", "page", *args)
        records = [found[1] for found in read_records(flat, self._junk("")) if found]
        return records, None if last is None else cursor_of(int(last))

    def oldest_ready(self, queues: Sequence[str]) -> dict[str, float]:
        names = list(dict.fromkeys(queues))
        if not names:
            return {}
        flat = self._server.run("jobs", "oldest", *names)
        return {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}

    def running_jobs(self, queues: Sequence[str]) -> dict[str, list[str]]:
        if not queues:
            return {}
        flat = self._server.run("queue", "running", *sorted(set(queues)))
        held: dict[str, list[str]] = {}
        for i in range(0, len(flat), 2):
            held.setdefault(flat[i].decode(), []).append(flat[i + 1].decode())
        return held
