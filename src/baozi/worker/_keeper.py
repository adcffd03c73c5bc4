"""The worker's keeper: while a worker runs, it beats the worker's heart, reports its tasks' run
times (for the estimates, see :mod:`baozi._eta`), calls the middleware's ``renew`` hook and
purges expired records. (Its jobs' leases, and the slots they hold, are renewed
by the process's Renewer, see :mod:`baozi._renewer`.)"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._eta import RunTimes
from .._outage import outage
from .._renewer import Leases
from ..backends.base import WorkerInfo
from ..middleware import Middleware, Run

if TYPE_CHECKING:
    from . import Worker

__all__ = ["JobLeases", "LeaseKeeper"]

log = logging.getLogger("baozi.worker")


@dataclass(frozen=True)
class JobLeases(Leases):
    """The leases of a worker's running jobs of one queue, renewed by the process's Renewer;
    a failure is the store's outage, logged once."""

    worker_id: str = ""

    def failed(self, exc: Exception, count: int) -> None:
        outage(self.store.url).failed(exc, f"worker {self.worker_id}, renewing leases")

    def lost(self, count: int) -> None:
        log.warning(
            "worker %s: %d running job(s) of queue %r lost their lease (it ran out while the "
            "store could not be reached); they may run again elsewhere",
            self.worker_id,
            count,
            self.queue,
        )


class LeaseKeeper:
    """Every third of a lease: the middleware's ``renew``, a heartbeat, the run times, now and
    then a purge; and the run times at once when :meth:`nudge` says a task has its first."""

    def __init__(
        self,
        worker: Worker,
        running: Callable[[], list[Run]],
        middleware: tuple[Middleware, ...],
        run_times: RunTimes | None = None,
    ) -> None:
        self._worker = worker
        self._running = running  # a snapshot of the runs, taken under the worker's lock
        self._middleware = middleware
        self._run_times = run_times or RunTimes()
        self._halt = threading.Event()
        self._wake = threading.Event()  # set by stop() and nudge()
        self._started = time.time()
        self._thread = threading.Thread(target=self._keep, name="baozi-worker-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, and wait: no heartbeat lands after the worker is forgotten."""
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        try:  # what the last runs taught, for the estimates (a burst's runs, say)
            self._run_times.report(self._worker.app.store)
        except Exception as exc:
            outage(self._worker.app.url).failed(exc, f"worker {self._worker.id}, run times")

    def _keep(self) -> None:
        worker = self._worker
        app, what = worker.app, f"worker {worker.id}, heartbeat"
        health = outage(app.url)
        try:
            app.store.heartbeat(self._info(), ttl=app.lease)  # seen from the start
        except Exception as exc:
            health.failed(exc, what)
        last_purge, next_beat = 0.0, time.monotonic() + app.lease / 3
        while True:
            self._wake.wait(max(0.0, next_beat - time.monotonic()))
            self._wake.clear()
            if self._halt.is_set():
                return
            if time.monotonic() < next_beat:  # nudged: a task's first run time is news
                try:
                    self._run_times.report(app.store)
                except Exception as exc:
                    health.failed(exc, what)
                continue
            next_beat = time.monotonic() + app.lease / 3
            runs = self._running()
            try:
                self._renew(runs)
                app.store.heartbeat(self._info(len(runs)), ttl=app.lease)
                self._run_times.report(app.store)
                if time.time() - last_purge > min(60.0, app.result_ttl):
                    last_purge = time.time()
                    app.store.purge_expired()
                health.ok(what)
            except Exception as exc:  # the store may be back next round; leases have slack
                health.failed(exc, what)

    def nudge(self) -> None:
        """Report the run times now, not at the next beat."""
        self._wake.set()

    def _renew(self, runs: list[Run]) -> None:
        for m in self._middleware:
            m.renew(self._worker, runs)

    def _info(self, busy: int = 0) -> WorkerInfo:
        worker = self._worker
        return WorkerInfo(
            worker.id,
            socket.gethostname(),
            os.getpid(),
            worker.pool_kind,
            worker.concurrency,
            tuple(worker.queues),
            busy,
            self._started,
        )
