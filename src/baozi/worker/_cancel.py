"""The worker's cancel watch: while it runs jobs, it asks the store twice a second which of them
were cancelled, and stops their code in the pool.

A cancel marks the job cancelled in the store at once and ends its lease (see
:meth:`~baozi.backends.base.JobStore.cancel`), wherever the worker runs; this watch is how the
worker holding it learns, with one :meth:`~baozi.backends.base.JobStore.statuses` call for all
its running jobs, and only while it has any.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .._outage import outage

__all__ = ["CancelWatch"]

INTERVAL = 0.5
"""Seconds between looks: how long, at most, a cancelled job runs on before it is stopped."""


class CancelWatch:
    def __init__(
        self,
        url: str,
        statuses: Callable[[list[str]], dict[str, str]],
        running: Callable[[], list[str]],
        stop: Callable[[str], bool],
        who: str,
    ) -> None:
        self._url = url
        self._statuses = statuses
        self._running = running
        self._stop = stop
        self._what = f"{who}, watching for cancelled jobs"
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="baozi-cancel-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        health = outage(self._url)
        while not self._halt.wait(INTERVAL):
            ids = self._running()
            if not ids:
                continue
            try:
                found = self._statuses(ids)
            except Exception as exc:  # the keeper and the loop say the same; said once
                health.failed(exc, self._what)
                continue
            health.ok(self._what)
            for job_id, status in found.items():
                if status == "cancelled":
                    self._stop(job_id)
