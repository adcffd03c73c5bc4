"""The Worker: takes jobs off queues as slots free up, runs them in a pool, and settles them.

The worker owns nothing durable. It takes no more jobs than it has free slots, renews the leases
of the jobs it runs, and settles each in the store when it ends. A worker that dies leaves leases
that run out, so its jobs return to their queues and run again (at-least-once). How jobs reach it
is the store's business (its Consumer); what happens around each job is the middleware's.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from queue import SimpleQueue
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._gc import tune as tune_gc
from .._loading import load_app
from .._time import log_to_stderr
from ..backends import store_class
from ..errors import AppNotFound, StoreError
from ..pools import pool_class as _pool_class
from ._loop import Session
from ._supervisor import close_with_parent, supervise

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Worker"]

log = logging.getLogger("baozi.worker")


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0
    ):
        raise ValueError(f"shutdown timeout must be seconds >= 0 or None, not {timeout!r}")


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
        max_memory_per_child: float | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        cls = _pool_class(pool)  # an unknown pool fails here, not in the loop
        limits: dict[str, float | None] = {
            "max_tasks_per_child": max_tasks_per_child,
            "max_memory_per_child": max_memory_per_child,
        }
        for name, limit in limits.items():
            if limit is not None and name not in cls.options:
                raise ValueError(
                    f"{name} applies to pools that recycle their processes "
                    f"(pool='process'), not to pool={pool!r}"
                )
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
        self.max_memory_per_child = max_memory_per_child
        self.shutdown_timeout = shutdown_timeout
        self.pool_options: dict[str, Any] = {k: v for k, v in limits.items() if v is not None}
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.owner = self.id  # the name its leases are held under
        self._closing = threading.Event()
        self._terminating = threading.Event()
        self._stopped = threading.Event()  # run() has returned
        self._thread: threading.Thread | None = None
        self._session: Session | None = None
        self._supervised = False  # a process started by supervise(), which handles Ctrl-C
        self._cutoff: threading.Timer | None = None  # close(timeout=): terminate when it fires

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
        self._wake()
        session = self._session
        if session is not None:
            session.turn_ended()  # what is enqueued from here on is not taken by this worker
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
        self._wake()

    def _wake(self) -> None:
        session = self._session
        if session is not None:
            session.wake()

    @property
    def closing(self) -> bool:
        """Whether the worker was told to stop (it takes no new jobs)."""
        return self._closing.is_set()

    @property
    def abandoned(self) -> int:
        """Threads still stuck in timed-out jobs, which a process should not wait for at exit."""
        session = self._session
        return session.pool.abandoned if session is not None else 0

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
                supervise(self, burst, _child_worker)
            else:
                self._session = Session(self, burst)
                self._run_session(burst)
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

    def _run_session(self, burst: bool) -> None:
        session = self._session
        assert session is not None
        log.info(
            "worker %s: %s pool x %d on %s, queues %s",
            self.id,
            self.pool_kind,
            self.concurrency,
            self.app.store.location,  # no password
            ", ".join(self.queues),
        )
        if self._closing.is_set():
            session.wake()
        session.run()


def _child_worker(
    path: str,
    queues: list[str],
    pool: str,
    concurrency: int,
    burst: bool,
    max_tasks_per_child: int | None,
    max_memory_per_child: float | None,
    log_level: int,
    url: str,
    shutdown_timeout: float | None,
) -> None:
    """A worker process under a supervisor (see :func:`supervise`). One that cannot reach its
    store says so in one line and exits 1; the supervisor starts another."""
    log_to_stderr(log_level)
    try:
        app = load_app(path)
        if app.url != url:  # the parent was pointed at another store (worker --url)
            app.use_store(url)
        worker = Worker(
            app,
            queues,
            pool,
            concurrency,
            max_tasks_per_child=max_tasks_per_child,
            max_memory_per_child=max_memory_per_child,
            shutdown_timeout=shutdown_timeout,
        )
        worker._supervised = True
        close_with_parent(worker)
        tune_gc()
        worker.run(burst)
    except (StoreError, AppNotFound) as exc:
        if isinstance(exc, AppNotFound) and not isinstance(exc.__cause__, StoreError):
            raise
        log.error("worker process %d stops: %s", os.getpid(), exc)
        logging.shutdown()
        os._exit(1)
    if worker.terminated or worker.abandoned:
        # As in the worker command: threads abandoned in timed-out jobs must not hold the exit.
        logging.shutdown()
        os._exit(0)
