"""An app for the worker processes that the middleware tests start: its middleware keeps what
each run's ``meta`` was, and which process ran it, in the store (the Dict "seen")."""

from __future__ import annotations

import os

import baozi
from baozi.middleware import Middleware, Run

from . import jobtasks


class NoteMeta(Middleware):
    """Keeps ``{"meta": run.meta, "pid": ...}`` under the job's id, before the job runs."""

    def before_process(self, worker: baozi.Worker, run: Run) -> None:
        worker.app.dict("seen")[run.item.id] = {"meta": run.meta, "pid": os.getpid()}
        return None


# The worker processes switch to the store the test's worker runs on.
app = baozi.App("memory://mwapp", middleware=[NoteMeta()])
note = app.task(name="note")(jobtasks.note)
