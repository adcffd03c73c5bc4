"""The worker loop's settling: every finished job's outcome settled in the store, one call per
queue, with the next jobs taken in the same round trip where the store can."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .._renewer import renewer
from .._runstats import RunStats
from ..backends.base import Consumer, Delivery, Item, TakeFailed
from ..middleware import Middleware, Run
from ._jobs import Done, report
from ._keeper import JobLeases

if TYPE_CHECKING:
    from ..app import App
    from . import Worker

__all__ = ["Settling"]

log = logging.getLogger("baozi.worker")


class Settling:
    """Part of the worker's :class:`~baozi.worker._loop.Session`: what it needs from it."""

    w: Worker
    app: App
    consumer: Consumer
    runstats: RunStats
    done: collections.deque[Done]
    running: dict[str, Run]
    futures: dict[str, Future[Any]]
    stopped: set[str]
    _lock: threading.Lock
    _ended: tuple[Middleware, ...]
    _settled: tuple[Middleware, ...]

    # The Session's own methods (declared here for the type checker; Session defines them).
    _start: Callable[[str, Item], None]
    _leases: Callable[[str], JobLeases]
    _hooks: Callable[..., None]

    def _settle_done(self, fetch: bool, keep: bool = True) -> tuple[int, int]:
        """Settle every finished job, one store call per queue; with ``fetch``, take jobs for
        the free slots in the same round trip where the store can, and start them. Returns how
        many were taken and how many slots were free.

        When the store fails, ``keep`` holds the outcomes (and the leases, which the keeper goes
        on renewing) to settle on a later turn, and raises so the loop backs off; a job that
        finished is then not run again once the store is back. Without ``keep`` (shutting down)
        they are dropped, and their jobs run again when their leases run out."""
        by_queue: dict[str, list[Done]] = {}
        while self.done:
            d = self.done.popleft()
            by_queue.setdefault(d.run.queue, []).append(d)
        taken, wanted = False, 0
        got: list[Delivery] = []
        failed: BaseException | None = None  # a take after a done settle: raised at the end
        try:
            for n, (queue, entries) in enumerate(by_queue.items()):
                free = self._free(entries) if fetch and not taken else 0
                try:
                    held, got_here = self._settle_queue(queue, entries, free)
                except TakeFailed as exc:  # settled: forget them, start what came, back off
                    held, got_here, failed = exc.held, exc.got, exc.__cause__ or exc
                except Exception:
                    if keep:
                        rest = [d for q in list(by_queue)[n:] for d in by_queue[q]]
                        self.done.extendleft(reversed(rest))
                        raise
                    log.exception("settling %d job(s) failed; they will run again", len(entries))
                    held, got_here = -1, []
                if free:
                    taken, wanted, got = True, free, got_here
                self._forget(queue, entries, held)
            if fetch and not taken:
                wanted = self.w.concurrency - len(self.running)
                got = self.consumer.take(wanted)
        finally:  # jobs leased to this worker start, even when a later settle fails
            for queue, item in got:
                self._start(queue, item)
        if failed is not None:
            raise failed
        return len(got), wanted

    def _free(self, entries: list[Done]) -> int:
        """Free slots once ``entries`` are settled."""
        ours = sum(1 for d in entries if d.run.item.id in self.running)
        return self.w.concurrency - len(self.running) + ours

    def _settle_queue(
        self, queue: str, entries: list[Done], free: int
    ) -> tuple[int, list[Delivery]]:
        for d in entries:  # first: a job parked for a slot is readied before the take
            if not d.ended:  # (not again when settling is retried)
                d.ended = True
                self._hooks("job_ended", d.run, only=self._ended)
        outcomes = [d.outcome for d in entries]
        return self.consumer.settle(
            queue, outcomes, self.app.result_ttl, free, failed_ttl=self.app.failed_ttl
        )

    def _forget(self, queue: str, entries: list[Done], held: int) -> None:
        with self._lock:
            cancelled = {d.run.item.id for d in entries if d.run.item.id in self.stopped}
            for d in entries:
                self.running.pop(d.run.item.id, None)
                self.futures.pop(d.run.item.id, None)
            self.stopped -= cancelled
        if 0 <= held < len(entries) - len(cancelled):  # (the store ended the cancelled ones)
            log.warning(
                "%d job(s) of queue %r ended after their lease was lost; their results were "
                "dropped and they run again elsewhere",
                len(entries) - len(cancelled) - held,
                queue,
            )
        renewer().unregister(self._leases(queue), *(d.run.item.id for d in entries))
        if held >= 0:
            for d in entries:
                if d.run.item.id in cancelled:
                    continue  # said when it was stopped; it has no outcome of its own
                report(d)
                run = d.run
                self.runstats.ran(
                    queue, run.item, d.outcome.status, run.started, d.elapsed, d.outcome.error
                )
                if d.outcome.status != "deferred":
                    self._hooks(
                        "after_settle", d.run, d.outcome, d.exc, d.value, only=self._settled
                    )
