"""Worker: takes jobs off queues as slots free up, runs them in a pool, and settles them.

The loop owns nothing durable. It reserves no more jobs than it has free slots, renews the leases
of the jobs it runs, and settles each in the store when it ends. A worker that dies leaves leases
that run out, so its jobs return to their queues and run again (at-least-once).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import SimpleQueue
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

from ._outage import Outage, outage
from .backends import store_class
from .backends.base import Item, Outcome, WorkerInfo
from .errors import Retry, StoreError, UnknownTask
from .jobs import Job
from .pools import Call, Pool, make_pool
from .pools import pool_class as _pool_class
from .pools.process import ChildError

if TYPE_CHECKING:
    from .app import App, Task

__all__ = ["Worker"]

log = logging.getLogger("baozi.worker")


def _store_failed(exc: Exception, message: str, *args: object) -> None:
    """Log a failed store call: one line for a store error (unreachable, or what it refused: the
    message says which), else the whole traceback."""
    if isinstance(exc, StoreError):
        log.warning(message + ": %s", *args, exc)
    else:
        log.exception(message, *args)


@dataclass(slots=True)
class _Running:
    queue: str
    item: Item
    task: Task[Any, Any]
    started: float
    slots: tuple[str, ...] = ()  # concurrency and lock slots the job holds while it runs


class _Wait(NamedTuple):
    """A job that may not run yet: try again in ``delay`` seconds, or when ``slot`` frees."""

    delay: float
    slot: str | None
    limit: int


def _holder(item: Item) -> str:
    """Who holds a job's slots: the job, in this delivery of it (a second delivery of a job whose
    lease ran out must not count as the holder of the first's slots)."""
    return f"{item.id}:{item.deliveries}"


@dataclass(slots=True)
class _Done:
    run: _Running
    outcome: Outcome
    exc: BaseException | None
    value: Any
    elapsed: float


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0
    ):
        raise ValueError(f"shutdown timeout must be seconds >= 0 or None, not {timeout!r}")


def _error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, ChildError):
        return {"type": exc.exc_type, "message": str(exc), "traceback": exc.tb}
    tb = getattr(exc, "__baozi_traceback__", None) or "".join(  # a child process's own traceback
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tb}


class Worker:
    """Runs jobs from ``queues`` (default: every queue the app's tasks name) in a pool of
    ``concurrency`` slots -- "thread" (8), "process" (one per core) or "async" (100) -- in each of
    ``processes`` worker processes. ``shutdown_timeout`` bounds a warm stop (see :meth:`close`)."""

    def __init__(
        self,
        app: App,
        queues: list[str] | None = None,
        pool: str = "thread",
        concurrency: int | None = None,
        processes: int = 1,
        *,
        max_tasks_per_child: int | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        cls = _pool_class(pool)  # an unknown pool fails here, not in the loop
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a positive int, not {processes!r}")
        if processes > 1 and not store_class(app.url).shared_across_processes:
            raise ValueError(
                f"processes={processes}: the store {app.url} lives inside one process, so other "
                f"worker processes would never see its jobs; use one process (and more "
                f"concurrency), or a store that processes share (sqlite:///file.db, redis://...)"
            )
        _check_timeout(shutdown_timeout)
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ValueError(f"concurrency must be a positive int or None, not {concurrency!r}")
        self.app = app
        self.queues = (
            list(queues)
            if queues
            else sorted({t.queue for t in app.tasks.values()} | set(app.queues) or {"default"})
        )
        self.pool_kind = pool
        self.concurrency = concurrency or cls.default_concurrency
        self.processes = processes
        self.max_tasks_per_child = max_tasks_per_child
        self.shutdown_timeout = shutdown_timeout
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.owner = self.id  # the name its leases are held under
        self._running: dict[str, _Running] = {}
        self._done: collections.deque[_Done] = collections.deque()  # finished, not yet settled
        self._callbacks = ThreadPoolExecutor(1, thread_name_prefix="baozi-callback")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._unlisten: Callable[[], None] | None = None  # while hungry: store changes wake us
        # Reserving and starting jobs is one thread's at a time: the loop's, or -- while hungry,
        # on a store whose change callbacks run on a thread of their own -- that thread's, which
        # then reserves as soon as a change arrives, a thread hop before the loop could.
        self._fetching = threading.Lock()
        self._handoff = False  # the change callback may reserve
        self._covered = False  # a reserve has run since the last change
        self._receiving = False  # jobs may be handed to it (see Store.hand_off)
        self._stopping = False  # the loop has ended
        self._timed_out = False  # the loop's last wait ended by its timeout
        self._closing = threading.Event()
        self._terminating = threading.Event()
        self._stopped = threading.Event()  # run() has returned
        self._halt = threading.Event()  # the loop is done: the helper threads end
        self._thread: threading.Thread | None = None
        self._pool: Pool | None = None
        self._keeper = threading.Thread()
        self._supervised = False  # a process started by supervise(), which handles Ctrl-C
        self._cutoff: threading.Timer | None = None  # close(timeout=): terminate when it fires
        self._quiet_since: float | None = None  # burst: when it first found only leased jobs

    # -- control ------------------------------------------------------------------------------

    def start(self, burst: bool = False) -> None:
        """Run in a background thread; ``close()``/``terminate()`` stop it, ``join()`` waits."""
        self._thread = threading.Thread(
            target=self.run, args=(burst,), name="baozi-worker", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Warm stop: take no more jobs, finish every job in flight, then stop. With ``timeout``
        (default: the worker's ``shutdown_timeout``), the jobs still running that many seconds
        later go back to their places in their queues, as :meth:`terminate` does."""
        _check_timeout(timeout)
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._closing.set()
        self._wake.set()
        if timeout is not None and self._cutoff is None and not self._stopped.is_set():
            self._cutoff = threading.Timer(timeout, self._time_up)
            self._cutoff.daemon = True
            self._cutoff.start()

    def _time_up(self) -> None:
        if not self._stopped.is_set() and not self._terminating.is_set():
            log.warning("worker %s: shutdown timeout: jobs still running go back", self.id)
            self.terminate()

    def terminate(self) -> None:
        """Cold stop: stop now; every job in flight goes back to its place in its queue."""
        self._terminating.set()
        self._closing.set()
        self._wake.set()

    @property
    def abandoned(self) -> int:
        """Threads still stuck in timed-out jobs, which a process should not wait for at exit."""
        return self._pool.abandoned if self._pool is not None else 0

    @property
    def terminated(self) -> bool:
        """Whether the worker was stopped with terminate() (or a second signal)."""
        return self._terminating.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to stop; return whether it did."""
        return self._stopped.wait(timeout)

    def run(self, burst: bool = False) -> None:
        """Run until closed or terminated (SIGTERM or SIGINT: close; a second one: terminate).
        With ``burst``, stop as soon as no job is ready, scheduled or running."""
        restore = self._install_signals()
        try:
            if self.processes > 1:
                from .supervisor import supervise

                supervise(self, burst)
            else:
                self._run(burst)
        finally:
            restore()
            self._stopped.set()
            if self._cutoff is not None:
                self._cutoff.cancel()

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        # A handler runs between two bytecodes of the main thread, which may hold the lock of one
        # of the worker's events just then -- or be in the handler of the signal before (the
        # supervisor sends SIGTERM then SIGUSR1 to terminate): setting an event right there would
        # wait on that lock forever. So the handler only queues the signal (SimpleQueue.put is
        # safe in a signal handler), and a thread of its own acts on it.
        signals: SimpleQueue[int | None] = SimpleQueue()

        def handler(signum: int, frame: FrameType | None) -> None:
            signals.put(signum)

        def act() -> None:
            while (signum := signals.get()) is not None:
                self._on_signal(signum)

        threading.Thread(target=act, name="baozi-signals", daemon=True).start()
        # A worker process under a supervisor leaves Ctrl-C (sent to the whole process group) to
        # its parent, which tells it what to do: SIGTERM to close, SIGUSR1 to terminate.
        handled = [signal.SIGTERM, signal.SIGUSR1]
        old = {s: signal.signal(s, handler) for s in handled}
        old[signal.SIGINT] = signal.signal(
            signal.SIGINT, signal.SIG_IGN if self._supervised else handler
        )

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)
            signals.put(None)

        return restore

    def _on_signal(self, signum: int) -> None:
        if self._closing.is_set() or signum == signal.SIGUSR1:
            log.info("terminating: jobs in flight go back to their queues")
            self.terminate()
        else:
            log.info("closing: finishing the jobs in flight (signal again to stop now)")
            self.close()

    # -- the loop -----------------------------------------------------------------------------

    def _run(self, burst: bool) -> None:
        self._pool = make_pool(self.pool_kind, self.concurrency, **self._pool_options())
        keeper = self._keeper = threading.Thread(
            target=self._keep, name="baozi-worker-keeper", daemon=True
        )
        keeper.start()
        log.info(
            "worker %s: %s pool x %d on %s, queues %s",
            self.id,
            self.pool_kind,
            self.concurrency,
            self.app.store.location,  # no password
            ", ".join(self.queues),
        )
        # Where the store can, jobs go straight to this worker while it waits idle (not in a
        # burst, which ends as soon as nothing is ready).
        receiving = not burst and self.app.store.hand_off(self.owner, self._handed)
        self._receiving = receiving
        backoff = 0.0
        try:
            while not self._terminating.is_set():
                self._wake.clear()
                try:
                    if self._step(burst):
                        break
                    if backoff:  # this step called the store again, and it answered
                        self._outage.ok(f"worker {self.id}, taking jobs")
                    backoff = 0.0
                except Exception as exc:  # the store failing: keep the jobs in flight, try later
                    backoff = min(max(backoff * 2, 0.1), 5.0)
                    self._outage.failed(exc, f"worker {self.id}, taking jobs")
                    self._wake.wait(backoff)
        finally:
            with self._fetching:  # a change callback or a hand-off that is starting ends first
                self._listen(False)
                self._stopping = True
            self._stop_receiving()
            self._shutdown()
            for who in ("taking jobs", "renewing leases"):
                self._outage.withdraw(f"worker {self.id}, {who}")

    @property
    def _outage(self) -> Outage:
        """The store's health as this process logs it: once when it fails, once when it is back."""
        return outage(self.app.url)

    def _stop_receiving(self) -> None:
        """No more jobs handed to this worker (once it closes: it takes no new jobs)."""
        if self._receiving:
            self._receiving = False
            try:
                self.app.store.hand_off(self.owner, None)
            except Exception as exc:  # its entries run out; what is handed goes back
                _store_failed(exc, "worker %s: ending hand-offs failed", self.id)

    def _handed(self, queue: str, items: list[Item], took: Callable[[], None]) -> None:
        """Jobs the store handed to this worker, already leased to it, on the store's thread:
        started here, or given back unstarted when the worker is stopping."""
        here: tuple[_Running, Call] | None = None
        with self._fetching:
            took()  # counted as this worker's from here on (reserves hold this lock too)
            if not (self._closing.is_set() or self._stopping):
                for item in items:
                    if here is None:
                        # The first runs right in this thread (which woke for it), after the lock,
                        # on a pool that can run calls in the caller's thread.
                        try:
                            here = self._start_one(queue, item)
                        except Exception:
                            log.exception("worker %s: could not start job %s", self.id, item.id)
                    else:
                        self._start(queue, item)
                items = []
        if here is not None:
            self._launch(*here, here=True)
        if not items:
            return
        try:
            self.app.store.hand_back(queue, [item.id for item in items], self.owner)
        except Exception as exc:  # their leases run out instead
            _store_failed(exc, "worker %s: giving back handed jobs failed", self.id)

    def _listen(self, on: bool) -> None:
        """Have store changes wake the loop (while it is hungry), or stop that."""
        if on and self._unlisten is None:
            store = self.app.store
            self._handoff = store.changes_on_own_thread
            self._unlisten = store.on_change(
                self._changed if store.changes_on_own_thread else self._wake.set
            )
        elif not on and self._unlisten is not None:
            self._handoff = False
            self._unlisten()
            self._unlisten = None

    def _changed(self) -> None:
        """A store change while hungry, on the store's listener thread: reserve and start jobs
        here and now. The loop need not reserve again for this change; it is woken to look at
        the change (a delayed job may be due sooner than it was going to wake) -- unless this
        started jobs, whose ends wake it soon enough, and it would only contend with them."""
        if self._fetching.acquire(blocking=False):
            try:
                if self._handoff and not self._closing.is_set():
                    self._covered = True
                    try:
                        if self._fetch()[0]:
                            return
                    except Exception:  # noqa: BLE001 -- the loop reserves, and reports
                        self._covered = False
            finally:
                self._fetching.release()
        else:
            self._covered = False  # the loop is reserving: it must look again for this change
        self._wake.set()

    def _step(self, burst: bool) -> bool:
        """One turn of the loop: settle, fetch, or wait. Returns True when the worker should stop."""
        with self._fetching:
            return self._turn(burst)

    def _turn(self, burst: bool) -> bool:
        closing = self._closing.is_set()
        if closing and self._receiving:
            self._stop_receiving()
        # Woken by a change that the change callback already reserved for: no need to again.
        covered = self._covered and not self._timed_out
        self._covered = self._timed_out = False
        turn = self._settle_done(fetch=not closing)
        hungry = False  # free slots and nothing to fill them: new jobs must wake the loop
        if closing:
            if not self._running:
                return True
        else:
            if covered and turn is None:
                got, wanted = 0, self.concurrency - len(self._running)
            else:
                got, wanted = self._fetch(turn)
            if got and got == wanted:
                self._listen(False)  # busy: its own jobs finishing wake the loop
                return False  # every free slot filled: there may be more
            if not got and burst and not self._running:
                if self._drained():
                    return True
            else:
                self._quiet_since = None  # it has work: leases are judged afresh when done
            if got < wanted:
                # Hungry: store changes must wake the loop. When it starts listening, it looks
                # once more, so that nothing added since the fetch above slips by. A busy worker
                # does not listen, so a store that pushes changes (Redis) sends it none.
                if self._unlisten is None:
                    self._listen(True)
                    if self._fetch()[0]:
                        return False
                hungry = True
            else:
                self._listen(False)
        # Only a hungry loop cares when a delayed job or an expired lease comes due; a busy one
        # is woken by its own jobs finishing. (The wait is outside the lock: the change callback
        # may reserve meanwhile.)
        self._fetching.release()
        try:
            self._timed_out = not self._wake.wait(self._idle_wait() if hungry else 5.0)
        finally:
            self._fetching.acquire()
        return False

    def _pool_options(self) -> dict[str, Any]:
        if self.pool_kind == "process" and self.max_tasks_per_child:
            return {"max_tasks_per_child": self.max_tasks_per_child}
        return {}

    def _fetch(self, turn: tuple[int, int] | None = None) -> tuple[int, int]:
        """Reserve as many jobs as there are free slots and start them; return how many were
        started and how many slots were free. ``turn`` is what settling already reserved (and
        started) from the first queue in the same round trip: how many it asked for and got."""
        queues = self.queues
        if turn is not None:
            asked, got = turn
            if got == asked or len(queues) == 1:  # filled, or the only queue had no more
                return got, asked
            wanted = self.concurrency - len(self._running) + got
            queues = queues[1:]
        else:
            wanted = self.concurrency - len(self._running)
            got = 0
        for queue in queues:
            free = self.concurrency - len(self._running)
            if free <= 0:
                break
            items = self.app.store.reserve(queue, self.owner, self.app.lease, free)
            for item in items:
                self._start(queue, item)
            got += len(items)
        return got, wanted

    def _drained(self) -> bool:
        """For --burst: whether its queues hold nothing ready or scheduled, and no job is leased
        to a worker that may have died.

        A live worker renews its leases every third of a lease, so a lease that ends more than a
        lease after this worker began to look (``_quiet_since``) was renewed since: its holder is
        alive, and the job is left to it. Any other lease is waited for: renewed (the holder
        lives), or run out, and then its job is ready and this worker runs it.
        """
        store = self.app.store
        if self._quiet_since is None:
            self._quiet_since = time.time()
        renewed_after = self._quiet_since + self.app.lease
        for queue in self.queues:
            if store.queue_options(queue).get("paused"):
                continue  # nothing will come out of it: for --burst it is as good as empty
            counts = store.counts(queue)
            if counts.ready or counts.scheduled:
                self._quiet_since = None
                return False
            if counts.leased:
                due = store.next_due(queue)
                if due is not None and due <= renewed_after:
                    return False
        return True

    def _idle_wait(self) -> float:
        """Sleep until a store change wakes us, or until the next delayed job or lease is due."""
        # A burst waiting on other workers' leases looks again soon after they are due a renewal.
        wait = 5.0 if self._quiet_since is None else self.app.lease / 6
        now = time.time()
        for queue in self.queues:
            due = self.app.store.next_due(queue)
            if due is not None and due > now:
                wait = min(wait, due - now + 0.001)
        return wait

    # -- one job ------------------------------------------------------------------------------

    def _start(self, queue: str, item: Item) -> None:
        """Run a reserved job; a failure to even start it is logged, never raised."""
        try:
            ready = self._start_one(queue, item)
            if ready is not None:
                self._launch(*ready)
        except Exception:  # its lease runs out and it runs again, here or elsewhere
            log.exception("worker %s: could not start job %s", self.id, item.id)

    def _launch(self, run: _Running, call: Call, here: bool = False) -> None:
        """Hand a job's call to the pool -- or, with ``here``, run it in this thread."""
        assert self._pool is not None
        try:
            if here:
                self._pool.run_here(call, lambda f: self._finished(run, f))
                return
            future = self._pool.submit(call)
        except Exception as exc:  # the pool is closed: the job's outcome is that error
            future = Future()
            future.set_exception(exc)
        future.add_done_callback(lambda f: self._finished(run, f))

    def _start_one(self, queue: str, item: Item) -> tuple[_Running, Call] | None:
        """Take a reserved job in: settle it at once when it cannot run, send it back when it
        must wait, else count it as running and return what :meth:`_launch` runs."""
        if item.id in self._running:
            # Its lease ran out while it ran here (renewals failed) and this worker reserved it
            # again: that renewed the lease. It is not started a second time.
            log.warning("job %s: lease renewed by reserving it again; still running", item.id)
            return None
        app = self.app
        task = app.resolve(item.task or "")
        limit = task.max_deliveries if task is not None else 5
        # Deliveries that ended in neither a result nor an exception: its worker died.
        deaths = item.deliveries - 1 - item.failures
        if deaths >= limit:
            self._settle_failed(
                queue,
                item,
                "WorkerLost",
                (
                    f"the job's worker died on each of its last {deaths} deliveries "
                    f"(max_deliveries={limit}); it is not run again"
                ),
            )
            return None
        if task is None:
            self._settle_failed(
                queue,
                item,
                UnknownTask.__name__,
                (
                    f"no task named {item.task!r} is registered in this worker's app "
                    f"({app.import_path or app!r}); register it or check the name"
                ),
            )
            return None
        try:
            args, kwargs = app.codec.loads(item.payload)
        except Exception as exc:
            self._settle_failed(
                queue, item, type(exc).__name__, f"cannot decode the job's arguments: {exc}"
            )
            return None
        slots: tuple[str, ...] = ()
        if task.limited:
            try:
                key = task.lock_key(args, kwargs) if task.lock is not None else None
            except Exception as exc:  # noqa: BLE001 -- whatever formatting the arguments raised
                self._settle_failed(
                    queue,
                    item,
                    type(exc).__name__,
                    f"cannot make the lock key {task.lock!r} from the job's arguments: {exc}",
                )
                return None
            try:
                admitted = self._admit(task, item, key)
            except Exception as exc:  # the store failed: the job goes back, nothing counted
                _store_failed(exc, "job %s: checking its task's limits failed", item.id)
                admitted = _Wait(1.0, None, 0)
            if isinstance(admitted, _Wait):
                self._defer(queue, item, task, admitted)
                return None
            slots = admitted
        run = _Running(queue, item, task, time.monotonic(), slots)
        call = Call(
            task.fn, tuple(args), kwargs, task.timeout, item.id, self.owner, app.url, app.codec.name
        )
        with self._lock:
            self._running[item.id] = run
        log.info(
            "job %s %s started (queue %s, attempt %d)", item.id, task.name, queue, item.deliveries
        )
        return run, call

    def _admit(
        self, task: Task[Any, Any], item: Item, lock_key: str | None
    ) -> tuple[str, ...] | _Wait:
        """Take the slots a limited task's job needs (its lock, then a concurrency slot), then its
        turn under the rate limit. Returns the slots held, or, when the job must wait, how long
        and for which slot (holding nothing)."""
        store, lease = self.app.store, self.app.lease
        holder = _holder(item)
        wanted: list[tuple[str, int]] = []
        if lock_key is not None:
            wanted.append((f"lock:{lock_key}", 1))
        if task.concurrency:
            wanted.append((f"task:{task.name}", task.concurrency))
        held: list[str] = []
        try:
            for slot, limit in wanted:
                wait = store.acquire_slot(slot, holder, limit, lease, claim=item.id)
                if wait is not None:
                    # Parked until a holder releases it; at most until the first holder's time
                    # runs out (it may have died).
                    return self._unwind(held, item, _Wait(wait + 0.05, slot, limit))
                held.append(slot)
            if task.rate_interval:
                # Booked for its turn: it comes back then and runs without asking again.
                wait = store.rate_acquire(f"rate:{task.name}", task.rate_interval, ticket=item.id)
                if wait > 0:
                    return self._unwind(held, item, _Wait(wait, None, 0))
        except BaseException:
            self._unwind(held, item, None)
            raise
        return tuple(held)

    def _unwind(self, held: list[str], item: Item, wait: _Wait | None) -> _Wait:
        for slot in held:
            try:
                self.app.store.release_slot(slot, _holder(item))
            except Exception as exc:  # it frees itself when its time runs out
                _store_failed(exc, "job %s: releasing %s failed", item.id, slot)
        return wait if wait is not None else _Wait(1.0, None, 0)

    def _defer(self, queue: str, item: Item, task: Task[Any, Any], wait: _Wait) -> None:
        """Send a job that may not run yet back to its place: until its rate-limit turn, or until
        the slot it waits for is released."""
        run = _Running(queue, item, task, time.monotonic())
        outcome = Outcome(
            item.id, "deferred", retry_in=wait.delay, slot=wait.slot, slot_limit=wait.limit
        )
        self._done.append(_Done(run, outcome, None, None, 0.0))
        self._wake.set()

    def _settle_failed(self, queue: str, item: Item, exc_type: str, message: str) -> None:
        error = json.dumps({"type": exc_type, "message": message, "traceback": ""})
        self.app.store.settle(
            queue, self.owner, [Outcome(item.id, "failed", error=error)], self.app.result_ttl
        )
        log.info(
            "job %s %s failed (queue %s): %s: %s", item.id, item.task, queue, exc_type, message
        )

    def _finished(self, run: _Running, future: Future[Any]) -> None:
        """In the pool's thread: decide the outcome, and leave it for the loop to settle."""
        if self._terminating.is_set():
            return  # terminate() already put the job back
        item, task = run.item, run.task
        try:
            value = future.result()
            exc: BaseException | None = None
            payload = self.app.codec.dumps(value)
        except CancelledError as e:
            if self._terminating.is_set():
                return  # the pool cancelled it on terminate(): the job is back in its queue
            exc, payload, value = e, None, None
        except BaseException as e:  # noqa: BLE001 -- a job's exception, or an unstorable result
            exc, payload, value = e, None, None
        if exc is None:
            outcome = Outcome(item.id, "succeeded", result=payload)
        elif item.failures < task.retries:
            delay = (
                exc.delay
                if isinstance(exc, Retry) and exc.delay is not None
                else (task.retry_backoff * 2**item.failures * random.uniform(0.5, 1.5))
            )
            outcome = Outcome(item.id, "retry", error=json.dumps(_error(exc)), retry_in=delay)
        else:
            outcome = Outcome(item.id, "failed", error=json.dumps(_error(exc)))
        self._done.append(_Done(run, outcome, exc, value, time.monotonic() - run.started))
        if not self._wake.is_set():  # (set already: the loop has yet to look, and sees this)
            self._wake.set()

    def _settle_done(self, keep: bool = True, fetch: bool = False) -> tuple[int, int] | None:
        """Settle every finished job in one store call per queue.

        With ``fetch``, the call for the first queue also reserves jobs for the slots this frees
        and the ones already free (one round trip for a worker's whole turn); then returns how
        many it asked for and how many it got and started, for :meth:`_fetch`. Else returns None.

        When the store fails, ``keep`` holds the outcomes (and the leases, which the keeper goes on
        renewing) to settle on a later turn, and raises so the loop backs off; a job that finished
        is then not run again once the store is back. Without ``keep`` (shutting down) they are
        dropped, and their jobs run again when their leases run out.
        """
        done: list[_Done] = []
        while self._done:
            done.append(self._done.popleft())
        by_queue: dict[str, list[_Done]] = {}
        for d in done:
            by_queue.setdefault(d.run.queue, []).append(d)
        store, turn = self.app.store, None
        lead = self.queues[0] if fetch else None
        for n, (queue, entries) in enumerate(by_queue.items()):
            outcomes = [d.outcome for d in entries]
            # Their slots first: a job parked for one is readied now, so the reservation below
            # takes it ahead of any newer job of its task.
            self._free_slots(entries)
            try:
                if queue == lead:
                    ran = sum(1 for d in entries if d.run.item.id in self._running)
                    free = self.concurrency - len(self._running) + ran
                    held, items = store.settle_and_reserve(
                        queue, self.owner, outcomes, self.app.result_ttl, self.app.lease, free
                    )
                    turn = (free, len(items))
                else:
                    held = store.settle(queue, self.owner, outcomes, self.app.result_ttl)
            except Exception:
                if keep:
                    unsettled = [d for q in list(by_queue)[n:] for d in by_queue[q]]
                    self._done.extendleft(reversed(unsettled))
                    raise
                log.exception("settling %d job(s) failed; they will run again", len(entries))
                held = -1
            if 0 <= held < len(entries):
                log.warning(
                    "%d job(s) of queue %r ended after their lease was lost; their results were "
                    "dropped and they run again elsewhere",
                    len(entries) - held,
                    queue,
                )
            with self._lock:
                for d in entries:
                    self._running.pop(d.run.item.id, None)
            if queue == lead:  # start what came back only now, with the freed slots free
                for item in items:
                    self._start(queue, item)
            if held >= 0:
                for d in entries:
                    self._report(d)
        return turn

    def _free_slots(self, entries: list[_Done]) -> None:
        """Give back the concurrency and lock slots of jobs that ended (a failure is logged: the
        slots free themselves when their time runs out)."""
        for d in entries:
            slots, d.run.slots = d.run.slots, ()  # released once, even if settling is retried
            for slot in slots:
                try:
                    self.app.store.release_slot(slot, _holder(d.run.item))
                except Exception as exc:
                    _store_failed(exc, "job %s: releasing %s failed", d.run.item.id, slot)

    def _report(self, done: _Done) -> None:
        run, outcome, exc = done.run, done.outcome, done.exc
        item, task = run.item, run.task
        if outcome.status == "deferred":
            log.debug("job %s %s held back for %.3fs", item.id, task.name, outcome.retry_in)
            return
        if outcome.status == "succeeded":
            log.info(
                "job %s %s succeeded in %.3fs (queue %s)",
                item.id,
                task.name,
                done.elapsed,
                run.queue,
            )
            callback, arg = task.on_success, done.value
        elif outcome.status == "retry":
            log.info(
                "job %s %s raised %r in %.3fs; retrying in %.1fs (queue %s)",
                item.id,
                task.name,
                exc,
                done.elapsed,
                outcome.retry_in,
                run.queue,
            )
            return
        else:
            log.info(
                "job %s %s failed in %.3fs: %r (queue %s)",
                item.id,
                task.name,
                done.elapsed,
                exc,
                run.queue,
            )
            callback, arg = task.on_failure, exc
        if callback is not None:
            self._callbacks.submit(
                self._call_back, callback, Job(self.app, item.id), arg, outcome.status
            )

    @staticmethod
    def _call_back(callback: Any, job: Job, arg: Any, status: str) -> None:
        try:
            callback(job, arg)
        except Exception:
            log.exception("the %s callback of job %s raised", status, job.id)

    # -- leases, heartbeats, shutdown ---------------------------------------------------------

    def _keep(self) -> None:
        store, interval, last_purge = self.app.store, self.app.lease / 3, 0.0
        started = time.time()
        try:
            store.heartbeat(self._info(started), ttl=self.app.lease)  # seen from the start
        except Exception as exc:
            self._outage.failed(exc, f"worker {self.id}, renewing leases")
        while not self._halt.wait(interval):
            with self._lock:
                by_queue: dict[str, list[str]] = {}
                by_slot: dict[str, list[str]] = {}
                for job_id, run in self._running.items():
                    by_queue.setdefault(run.queue, []).append(job_id)
                    for slot in run.slots:
                        by_slot.setdefault(slot, []).append(_holder(run.item))
            try:
                for queue, ids in by_queue.items():
                    store.extend(queue, ids, self.owner, self.app.lease)
                for slot, holders in by_slot.items():
                    kept = store.renew_slots(slot, holders, self.app.lease)
                    if kept < len(holders):
                        log.warning(
                            "worker %s: %d running job(s) lost their hold on %s (its time ran "
                            "out while the store could not be reached)",
                            self.id,
                            len(holders) - kept,
                            slot,
                        )
                store.heartbeat(self._info(started), ttl=self.app.lease)
                if time.time() - last_purge > min(60.0, self.app.result_ttl):
                    last_purge = time.time()
                    store.purge_expired()
                self._outage.ok(f"worker {self.id}, renewing leases")
            except Exception as exc:  # the store may be back next round; leases have slack
                self._outage.failed(exc, f"worker {self.id}, renewing leases")

    def _info(self, started: float) -> WorkerInfo:
        return WorkerInfo(
            self.id,
            socket.gethostname(),
            os.getpid(),
            self.pool_kind,
            self.concurrency,
            tuple(self.queues),
            len(self._running),
            started,
        )

    def _shutdown(self) -> None:
        pool, store = self._pool, self.app.store
        assert pool is not None
        if self._terminating.is_set():
            pool.terminate()
            self._settle_done(keep=False)  # finished before the stop: settle, do not run again
            with self._lock:
                running, self._running = self._running, {}
            by_queue: dict[str, list[str]] = {}
            for job_id, run in running.items():
                by_queue.setdefault(run.queue, []).append(job_id)
            try:
                for queue, ids in by_queue.items():
                    store.release(queue, ids, self.owner)
            except Exception as exc:  # their leases run out instead
                _store_failed(exc, "worker %s: putting its jobs back failed", self.id)
            ended = [_Done(r, Outcome(i, "deferred"), None, None, 0.0) for i, r in running.items()]
            self._free_slots(ended)
            if running:
                log.warning(
                    "worker %s terminated: %d job(s) went back to their queues",
                    self.id,
                    len(running),
                )
        else:
            pool.close()
            self._settle_done(keep=False)
        self._callbacks.shutdown(wait=True)
        self._halt.set()
        self._keeper.join()  # so no heartbeat lands after the worker is forgotten
        store.forget_worker(self.id)
        log.info("worker %s stopped", self.id)
