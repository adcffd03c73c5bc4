"""Retries: a job that raised runs again, up to its task's ``retries``, after a backoff.

The wait doubles with each failure from the task's ``retry_backoff`` (times a random 0.5 to 1.5,
so jobs that failed together do not all come back at once); a task that raises
:class:`~baozi.errors.Retry` with a ``delay`` chooses its own. The retry is scheduled in the
store in the same step that ends the run, so it survives any crash.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ..backends.base import Outcome
from ..errors import Retry
from . import Middleware, Run

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ["Retries"]


class Retries(Middleware):
    """Turns a failed run into a retry while the job has retries left."""

    def after_process(
        self, worker: Worker, run: Run, outcome: Outcome, exc: BaseException | None
    ) -> Outcome:
        if outcome.status != "failed" or exc is None or run.item.failures >= run.task.retries:
            return outcome
        if isinstance(exc, Retry) and exc.delay is not None:
            delay = exc.delay
        else:
            delay = run.task.retry_backoff * 2**run.item.failures * random.uniform(0.5, 1.5)
        return outcome._replace(status="retry", retry_in=delay)
