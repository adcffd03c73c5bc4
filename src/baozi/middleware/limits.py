"""The task limits: a lock per argument template, at most N jobs of a task at once across every
worker, and a rate limit -- each held in the store, so they hold across processes and machines.

Before a limited task's job runs it takes its lock, then a concurrency slot, then its turn under
the rate limit; when one is not to be had, the job is held back (see :class:`Hold`): until the
slot it waits for is released, or until its turn. The slots are renewed while the job runs (by
the process's Renewer) and released when it ends; a worker that dies lets them run out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._outage import log_failure
from .._renewer import Slots, renewer
from . import Hold, Middleware, Run

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ["Limits"]

log = logging.getLogger("baozi.worker")

_SLOTS = "limits"  # the run's state key: the slots it holds


def _holder(run: Run) -> str:
    """Who holds a job's slots: the job, in this delivery of it (a second delivery of a job whose
    lease ran out must not count as the holder of the first's slots)."""
    return f"{run.item.id}:{run.item.deliveries}"


class Limits(Middleware):
    """A task's ``lock``, ``concurrency`` and ``rate_limit`` (see :meth:`App.task`)."""

    def before_process(self, worker: Worker, run: Run) -> Hold | None:
        task = run.task
        if not task.limited:
            return None
        try:
            key = task.lock_key(run.args, run.kwargs) if task.lock is not None else None
        except Exception as exc:  # noqa: BLE001 -- whatever formatting the arguments raised
            raise ValueError(
                f"cannot make the lock key {task.lock!r} from the job's arguments: {exc}"
            ) from exc
        store, lease, holder = worker.app.store, worker.app.lease, _holder(run)
        wanted: list[tuple[str, int]] = []
        if key is not None:
            wanted.append((f"lock:{key}", 1))
        if task.concurrency:
            wanted.append((f"task:{task.name}", task.concurrency))
        held: list[str] = []
        try:
            for slot, limit in wanted:
                wait = store.acquire_slot(slot, holder, limit, lease, claim=run.item.id)
                if wait is not None:
                    # Parked until a holder releases it; at most until the first holder's time
                    # runs out (it may have died).
                    return self._unwind(worker, held, run, Hold(wait + 0.05, slot, limit))
                held.append(slot)
            if task.rate_interval:
                # Booked for its turn: it comes back then and runs without asking again.
                wait = store.rate_acquire(
                    f"rate:{task.name}", task.rate_interval, ticket=run.item.id
                )
                if wait > 0:
                    return self._unwind(worker, held, run, Hold(wait))
        except BaseException:
            self._unwind(worker, held, run, None)
            raise
        run.state[_SLOTS] = tuple(held)
        for slot in held:  # renewed while the job runs
            renewer().register(Slots(store, slot, lease), _holder(run))
        return None

    def _unwind(self, worker: Worker, held: list[str], run: Run, hold: Hold | None) -> Hold:
        self._release(worker, run, held)
        return hold if hold is not None else Hold(1.0)

    def job_ended(self, worker: Worker, run: Run) -> None:
        # Released once, even if settling is retried; first, so a job parked for one of them
        # is readied before the worker's next reservation.
        self._release(worker, run, run.state.pop(_SLOTS, ()))

    @staticmethod
    def _release(worker: Worker, run: Run, slots: Sequence[str]) -> None:
        for slot in slots:
            renewer().unregister(Slots(worker.app.store, slot, worker.app.lease), _holder(run))
            try:
                worker.app.store.release_slot(slot, _holder(run))
            except Exception as exc:  # it frees itself when its time runs out
                log_failure(log, exc, "job %s: releasing %s failed", run.item.id, slot)
