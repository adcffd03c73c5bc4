"""Callbacks: a task's ``on_success(job, result)`` and ``on_failure(job, exc)``, called once its
outcome is settled, one at a time on a thread of the worker's own, so a slow or failing callback
holds up neither the worker nor the job's slot."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..backends.base import Outcome
from ..jobs import Job
from . import Middleware, Run

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ["Callbacks"]

log = logging.getLogger("baozi.worker")


class Callbacks(Middleware):
    """Calls ``on_success``/``on_failure``; a callback that raises is logged."""

    def __init__(self) -> None:
        self._threads: dict[int, ThreadPoolExecutor] = {}  # per worker, by id()

    def worker_start(self, worker: Worker) -> None:
        self._threads[id(worker)] = ThreadPoolExecutor(1, thread_name_prefix="baozi-callback")

    def worker_stop(self, worker: Worker) -> None:
        threads = self._threads.pop(id(worker), None)
        if threads is not None:
            threads.shutdown(wait=True)

    def after_settle(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None, value: Any
    ) -> None:
        if outcome.status == "succeeded":
            callback, arg = run.task.on_success, value
        elif outcome.status == "failed":
            callback, arg = run.task.on_failure, exc
        else:
            return
        threads = self._threads.get(id(worker))
        if callback is not None and threads is not None:
            job = Job(worker.app, run.item.id)
            threads.submit(self._call, callback, job, arg, outcome.status)

    @staticmethod
    def _call(callback: Any, job: Job, arg: Any, status: str) -> None:
        try:
            callback(job, arg)
        except Exception:
            log.exception("the %s callback of job %s raised", status, job.id)
