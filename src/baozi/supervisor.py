"""Several worker processes under one parent: ``Worker(..., processes=M)`` and ``baozi worker -p M``."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from .worker import Worker

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("baozi.worker")


def supervise(worker: Worker, burst: bool) -> None:
    """Run ``worker.processes`` worker processes until the worker is closed or terminated; start
    another when one dies (unless in burst mode)."""
    path = _import_path(worker.app)
    ctx = multiprocessing.get_context("spawn")
    args = (
        path,
        worker.queues,
        worker.pool_kind,
        worker.concurrency,
        burst,
        worker.max_tasks_per_child,
        logging.getLogger("baozi").getEffectiveLevel(),
        worker.app.url,
        worker.shutdown_timeout,
    )
    children = [ctx.Process(target=_child_worker, args=args) for _ in range(worker.processes)]
    for child in children:
        child.start()
    signalled = 0
    while True:
        alive = [c for c in children if c.is_alive()]
        if not alive:
            break
        wanted = 2 if worker._terminating.is_set() else 1 if worker._closing.is_set() else 0
        while signalled < wanted:
            signalled += 1
            for child in alive:  # SIGTERM: close; SIGUSR1: terminate
                stop = signal.SIGUSR1 if signalled == 2 else signal.SIGTERM
                os.kill(child.pid, stop)  # type: ignore[arg-type]
        if not burst and not worker._closing.is_set():  # replace a child that died
            for i, child in enumerate(children):
                if not child.is_alive():
                    log.warning(
                        "worker process %s exited (%s); starting another",
                        child.pid,
                        child.exitcode,
                    )
                    children[i] = ctx.Process(target=_child_worker, args=args)
                    children[i].start()
        multiprocessing.connection.wait([c.sentinel for c in alive], timeout=0.5)


def _import_path(app: App) -> str:
    if app.import_path:
        return app.import_path
    for name, module in list(sys.modules.items()):
        if name == "__main__" or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is app:
                return f"{name}:{attr}"
    raise ValueError(
        "processes > 1 starts fresh processes that import the app: define it at the top level of "
        "an importable module (not __main__), or set app.import_path = 'module:attribute'"
    )


def _close_with_parent(worker: Worker) -> None:
    """Close ``worker`` (as SIGTERM does) as soon as the supervisor dies, however it dies: a
    worker process left on its own would go on taking jobs that no one asked it to take."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # the pipe the supervisor holds closes when it dies
        if not worker._closing.is_set():
            log.warning("worker %s: its supervisor died; closing", worker.id)
            worker.close()

    threading.Thread(target=watch, name="baozi-supervisor-watch", daemon=True).start()


def _child_worker(
    path: str,
    queues: list[str],
    pool: str,
    concurrency: int,
    burst: bool,
    max_tasks_per_child: int | None,
    log_level: int,
    url: str,
    shutdown_timeout: float | None,
) -> None:
    from .cli.loading import load_app

    app = load_app(path)
    if app.url != url:  # the parent was pointed at another store (worker --url)
        app.use_store(url)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = Worker(
        app,
        queues,
        pool,
        concurrency,
        max_tasks_per_child=max_tasks_per_child,
        shutdown_timeout=shutdown_timeout,
    )
    worker._supervised = True
    _close_with_parent(worker)
    worker.run(burst)
    if (
        worker.terminated or worker.abandoned
    ):  # as in the worker command: abandoned threads must not hold the exit
        logging.shutdown()
        os._exit(0)
