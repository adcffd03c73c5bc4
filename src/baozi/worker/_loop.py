"""The worker's loop, written once over the store's Consumer: settle what finished, take jobs for
the free slots, start them in the pool, wait.

A turn holds the session's lock; so does a hand-off (:meth:`Session.offer`), which may come on a
consumer's thread while the loop waits. The loop waits outside the lock, on an event that a job
ending, the consumer (:meth:`Session.wake`) or a stop sets. It reserves no more jobs than it has
free slots, and settles each finished job's outcome in the store -- retries scheduled, results
kept -- in the same step that ends its lease.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .._eta import RunTimes
from .._meta import FEED
from .._outage import Outage, log_failure, outage
from .._renewer import renewer
from .._runstats import RunStats
from ..backends.base import Item, Outcome
from ..errors import StoreError
from ..middleware import Hold, Middleware, Run, overrides
from ..pools import Call, Pool, make_pool
from ._burst import Burst
from ._cancel import CancelWatch
from ._jobs import Done, Refused, decode_call, error_text, fed_args, outcome_of, vetted
from ._keeper import JobLeases, LeaseKeeper
from ._settling import Settling

if TYPE_CHECKING:
    from . import Worker

__all__ = ["Session"]

log = logging.getLogger("baozi.worker")


class Session(Settling):
    """One run of a worker: its pool, its consumer, the jobs in flight. The consumer's
    :class:`~baozi.backends.base.Receiver`."""

    def __init__(self, worker: Worker, burst: bool) -> None:
        self.w = worker
        self.app = app = worker.app
        self.burst = burst
        self.pool: Pool = make_pool(worker.pool_kind, worker.concurrency, **worker.pool_options)
        mw: tuple[Middleware, ...] = tuple(app.middleware)
        self._before = overrides(mw, "before_process")
        self._after = overrides(mw, "after_process")
        self._ended = overrides(mw, "job_ended")
        self._settled = overrides(mw, "after_settle")
        self._held = overrides(mw, "on_hold")
        self.middleware = mw
        self.running: dict[str, Run] = {}
        self.futures: dict[str, Future[Any]] = {}  # of the running jobs, to cancel them
        self.stopped: set[str] = set()  # running jobs stopped as cancelled, not yet settled
        self.done: collections.deque[Done] = collections.deque()  # finished, not yet settled
        self._lock = threading.Lock()  # guards running (the keeper reads it)
        self._turn = threading.Lock()  # a turn, or a hand-off
        self.thread: threading.Thread | None = None  # the one running the loop, once it runs
        self._event = threading.Event()
        self._stopping = False
        self._burst = Burst(self.app, worker.queues, worker.id)
        self._groups: dict[str, JobLeases] = {}
        self.run_times = RunTimes()
        self.keeper = LeaseKeeper(worker, self._runs, overrides(mw, "renew"), self.run_times)
        self.cancels = CancelWatch(
            app.url, app.store.statuses, self.running_ids, self.stop, f"worker {worker.id}"
        )
        self.consumer = app.store.consumer(worker.owner, worker.queues, app.lease, self)
        self.runstats = RunStats(app.store, worker.id)  # the runs it settles, counted

    def _runs(self) -> list[Run]:
        with self._lock:
            return list(self.running.values())

    @property
    def _outage(self) -> Outage:
        return outage(self.app.url)

    # -- the consumer's receiver ----------------------------------------------------------------

    def wake(self) -> None:
        self._event.set()

    def offer(self, queue: str, items: list[Item], took: Any) -> list[Item]:
        """Jobs handed to the worker, on the consumer's thread: the first runs right here (on a
        pool that can run calls in the caller's thread: no thread woken between the push and
        the job's start), the others in the pool."""
        here: tuple[Run, Call] | None = None
        with self._turn:
            took()  # counted as this worker's from here on (takes hold this lock too)
            if self.w.closing or self._stopping:
                return items
            for item in items:
                if here is None:
                    here = self._start_safely(queue, item)
                else:
                    self._start(queue, item)
        if here is not None:
            self._launch(*here, here=True)
        return []

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        self.thread = threading.current_thread()
        self._hooks("worker_start")
        self.keeper.start()
        self.cancels.start()
        self.runstats.start()
        backoff = 0.0
        what = f"worker {self.w.id}, taking jobs"
        try:
            while not self.w.terminated:
                self._event.clear()
                try:
                    with self._turn:
                        wait = self._step()
                    if wait is None:
                        break
                    if backoff:  # this turn called the store again, and it answered
                        self._outage.ok(what)
                    backoff = 0.0
                except Exception as exc:  # the store failing: keep the jobs in flight, try later
                    backoff = min(max(backoff * 2, 0.1), 5.0)
                    self._outage.failed(exc, what)
                    wait = backoff
                if wait:
                    self._event.wait(wait)
        finally:
            with self._turn:  # a hand-off that is starting ends first
                self._stopping = True
            self._close_consumer()
            self._shutdown()
            for who in ("taking jobs", "renewing leases", "watching for cancelled jobs"):
                self._outage.withdraw(f"worker {self.w.id}, {who}")

    def _step(self) -> float | None:
        """One turn: settle, take, start. Returns how long to wait for the next, or None to stop."""
        if self.w.closing:
            self._close_consumer()
            self._settle_done(fetch=False)
            return None if not self.running else 5.0
        got, wanted = self._settle_done(fetch=True)
        if got and got == wanted:
            return 0.0  # every free slot filled: there may be more
        if not got and self.burst and not self.running:
            if self._burst.drained():
                return None
        elif got or self.running:
            self._burst.busy()
        # Hungry: the consumer wakes it for new jobs; it looks again when a delayed job or an
        # expired lease comes due. Busy: its own jobs ending wake it.
        return self._idle_wait() if got < wanted else 5.0

    def turn_ended(self, timeout: float = 5.0) -> None:
        """Wait, up to ``timeout``, for a turn already under way to end (called by ``close`` from
        another thread): a turn that began before the worker was closing may be taking jobs,
        and a job enqueued once ``close`` has returned must not be taken. Every later turn sees
        the worker closing first and takes nothing."""
        if self.thread is None or self.thread is threading.current_thread():
            return  # not running yet, or asked from the loop itself (a signal handler in it)
        if self._turn.acquire(timeout=timeout):
            self._turn.release()

    def _close_consumer(self) -> None:
        try:
            self.consumer.close()  # no more hand-offs: it takes no new jobs
        except Exception as exc:  # its entries run out; what is handed goes back
            log_failure(log, exc, "worker %s: ending hand-offs failed", self.w.id)

    def _idle_wait(self) -> float:
        """Until the consumer wakes it, or the next delayed job or lease is due."""
        # A burst waiting on other workers' leases looks again soon after they are due a renewal.
        wait = self._burst.wait()
        due = self.consumer.next_due()
        now = time.time()
        if due is not None and due > now:
            wait = min(wait, due - now + 0.001)
        return wait

    # -- one job --------------------------------------------------------------------------------

    def _start(self, queue: str, item: Item) -> None:
        """Run a taken job; a failure to even start it is logged, never raised."""
        ready = self._start_safely(queue, item)
        if ready is not None:
            self._launch(*ready)

    def _start_safely(self, queue: str, item: Item) -> tuple[Run, Call] | None:
        try:
            return self._start_one(queue, item)
        except Exception:  # its lease runs out and it runs again, here or elsewhere
            log.exception("worker %s: could not start job %s", self.w.id, item.id)
            return None

    def _launch(self, run: Run, call: Call, here: bool = False) -> None:
        """Hand a job's call to the pool -- or, with ``here``, run it in this thread."""
        try:
            if here:
                self.pool.run_here(
                    call, lambda f: self._finished(run, f), lambda f: self._track(run, f)
                )
                return
            future = self.pool.submit(call)
            self._track(run, future)
        except Exception as exc:  # the pool is closed: the job's outcome is that error
            future = Future()
            future.set_exception(exc)
        future.add_done_callback(lambda f: self._finished(run, f))

    def _track(self, run: Run, future: Future[Any]) -> None:
        with self._lock:
            if run.item.id in self.running:
                self.futures[run.item.id] = future

    def stop(self, job_id: str) -> bool:
        """Stop a running job's code (it was cancelled in the store); False if it is not
        running here any more."""
        with self._lock:
            future = self.futures.get(job_id)
        if future is None:
            return False
        with self._lock:
            self.stopped.add(job_id)
        if not self.pool.cancel(future):  # it has just finished
            with self._lock:
                self.stopped.discard(job_id)
            return False
        log.info("job %s: cancelled while running; its code was stopped", job_id)
        return True

    def running_ids(self) -> list[str]:
        with self._lock:
            return list(self.futures)

    def _start_one(self, queue: str, item: Item) -> tuple[Run, Call] | None:
        """Take a job in: settle it at once when it cannot run, send it back when a middleware
        holds it, else count it as running and return what :meth:`_launch` runs."""
        if item.id in self.running:
            # Its lease ran out while it ran here (renewals failed) and this worker reserved it
            # again: that renewed the lease. It is not started a second time.
            log.warning("job %s: lease renewed by reserving it again; still running", item.id)
            return None
        app = self.app
        try:
            task = vetted(app, item)
            args, kwargs, meta = decode_call(app, item)
            run = Run(queue, item, task, args, kwargs, meta, time.monotonic())
            hold = self._admit(run)
        except Refused as refused:
            self._settle_failed(queue, item, refused.exc_type, str(refused))
            return None
        if hold is not None:
            self._hold(run, hold)
            return None
        with self._lock:
            self.running[item.id] = run
        renewer().register(self._leases(queue), item.id)  # renewed while it runs
        feed = meta.get(FEED)
        if feed in ("one", "list"):  # read under the renewed lease: a chord's may take a while
            try:
                args = run.args = fed_args(app, item, args, feed)
            except Refused as refused:
                renewer().unregister(self._leases(queue), item.id)
                with self._lock:
                    self.running.pop(item.id, None)
                self._hooks("job_ended", run, only=self._before)  # what admission took
                self._settle_failed(queue, item, refused.exc_type, str(refused))
                return None
        call = Call(
            task.fn, args, kwargs, task.timeout, item.id, self.w.owner, app.url, app.codec.name
        )
        log.info(
            "job %s %s started (queue %s, attempt %d)", item.id, task.name, queue, item.deliveries
        )
        return run, call

    def _leases(self, queue: str) -> JobLeases:
        """The Renewer's group for this worker's jobs of ``queue`` (made once: it is hashed on
        every job's start and end)."""
        group = self._groups.get(queue)
        if group is None:
            group = self._groups[queue] = JobLeases(
                self.app.store, queue, self.w.owner, self.app.lease, self.w.id
            )
        return group

    def _admit(self, run: Run) -> Hold | None:
        """The middleware's say on whether the job runs now (see :class:`Hold`)."""
        for i, m in enumerate(self._before):
            try:
                hold = m.before_process(self.w, run)
            except Exception as exc:
                self._hooks("job_ended", run, only=self._before[:i])  # what the others took
                if isinstance(exc, StoreError):  # the store failed: back in a second
                    log_failure(log, exc, "job %s: checking whether it may run failed", run.item.id)
                    return Hold(1.0)
                raise Refused(type(exc).__name__, str(exc)) from exc
            if hold is not None:
                self._hooks("job_ended", run, only=self._before[:i])
                return hold
        return None

    def _hold(self, run: Run, hold: Hold) -> None:
        """Send a job that may not run yet back to its place: until ``hold`` says."""
        outcome = Outcome(
            run.item.id, "deferred", retry_in=hold.delay, slot=hold.slot, slot_limit=hold.limit
        )
        self._hooks("on_hold", run, hold, only=self._held)
        # ended: _admit released what the middleware took; those that held it took nothing.
        self.done.append(Done(run, outcome, None, None, 0.0, ended=True))
        self._event.set()

    def _settle_failed(self, queue: str, item: Item, exc_type: str, message: str) -> None:
        outcome = Outcome(item.id, "failed", error=error_text(exc_type, message))
        self.consumer.settle(queue, [outcome], self.app.result_ttl, failed_ttl=self.app.failed_ttl)
        self.runstats.ran(queue, item, "failed", time.monotonic(), None, outcome.error)
        log.info(
            "job %s %s failed (queue %s): %s: %s", item.id, item.task, queue, exc_type, message
        )

    def _finished(self, run: Run, future: Future[Any]) -> None:
        """In the pool's thread: decide the outcome, and leave it for the loop to settle."""
        if self.w.terminated:
            return  # terminate() already put the job back (the pool may have cancelled it)
        done = outcome_of(self.app, run, future)
        done.elapsed = time.monotonic() - run.started
        if done.outcome.status == "succeeded" and run.item.task is not None:
            if self.run_times.add(run.item.task, done.elapsed):
                self.keeper.nudge()  # the estimates know nothing of this task until reported
        for m in self._after:
            try:
                done.outcome = m.after_process(self.w, run, done.outcome, done.exc)
            except Exception:
                log.exception("middleware %s failed after job %s", type(m).__name__, run.item.id)
        self.done.append(done)
        if not self._event.is_set():  # (set already: the loop has yet to look, and sees this)
            self._event.set()

    def _hooks(self, hook: str, *args: Any, only: tuple[Middleware, ...] | None = None) -> None:
        """Call one hook of the middleware (or of ``only``); a hook that raises is logged."""
        for m in self.middleware if only is None else only:
            try:
                getattr(m, hook)(self.w, *args)
            except Exception:
                log.exception("middleware %s: %s failed", type(m).__name__, hook)

    # -- the end --------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.w.terminated:
            self.pool.terminate()
            self._settle_done(fetch=False, keep=False)  # finished before the stop: settle them
            with self._lock:
                running, self.running = self.running, {}
            by_queue: dict[str, list[str]] = {}
            for job_id, run in running.items():
                by_queue.setdefault(run.queue, []).append(job_id)
            for queue, ids in by_queue.items():
                renewer().unregister(self._leases(queue), *ids)
            try:
                for queue, ids in by_queue.items():
                    self.consumer.release(queue, ids)
            except Exception as exc:  # their leases run out instead
                log_failure(log, exc, "worker %s: putting its jobs back failed", self.w.id)
            for run in running.values():
                self._hooks("job_ended", run, only=self._ended)
            if running:
                log.warning(
                    "worker %s terminated: %d job(s) went back to their queues",
                    self.w.id,
                    len(running),
                )
        else:
            self.pool.close()
            self._settle_done(fetch=False, keep=False)
        self._hooks("worker_stop")
        self.runstats.close()  # what it counted goes to the store, before it is forgotten
        self.cancels.stop()
        self.keeper.stop()  # so no heartbeat lands after the worker is forgotten
        try:
            self.app.store.forget_worker(self.w.id)
        except Exception as exc:
            log_failure(log, exc, "worker %s: forgetting it failed", self.w.id)
        log.info("worker %s stopped", self.w.id)
