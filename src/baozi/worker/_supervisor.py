"""Several worker processes under one parent: ``Worker(..., processes=M)`` and ``baozi worker -p M``."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import App
    from ._api import Worker

log = logging.getLogger("baozi.worker")


def supervise(worker: Worker, burst: bool, target: Callable[..., Any]) -> None:
    """Run ``worker.processes`` worker processes, each running ``target`` with the worker's
    settings, until the worker is closed or terminated; start another when one dies (unless in
    burst mode)."""
    path = _import_path(worker.app)
    ctx = multiprocessing.get_context("spawn")
    args = (
        path,
        worker.queues,
        worker.pool_kind,
        worker.concurrency,
        burst,
        worker.max_tasks_per_child,
        worker.max_memory_per_child,
        logging.getLogger("baozi").getEffectiveLevel(),
        worker.app.url,
        worker.shutdown_timeout,
    )
    children = [ctx.Process(target=target, args=args) for _ in range(worker.processes)]
    for child in children:
        child.start()
    signalled = 0
    while True:
        alive = [c for c in children if c.is_alive()]
        if not alive:
            break
        wanted = 2 if worker.terminated else 1 if worker.closing else 0
        while signalled < wanted:
            signalled += 1
            for child in alive:  # SIGTERM: close; SIGUSR1: terminate
                stop = signal.SIGUSR1 if signalled == 2 else signal.SIGTERM
                os.kill(child.pid, stop)  # type: ignore[arg-type]
        if not burst and not worker.closing:  # replace a child that died
            for i, child in enumerate(children):
                if not child.is_alive():
                    log.warning(
                        "worker process %s exited (%s); starting another",
                        child.pid,
                        child.exitcode,
                    )
                    children[i] = ctx.Process(target=target, args=args)
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


def close_with_parent(worker: Worker) -> None:
    """Close ``worker`` (as SIGTERM does) as soon as the supervisor dies, however it dies: a
    worker process left on its own would go on taking jobs that no one asked it to take."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # the pipe the supervisor holds closes when it dies
        if not worker.closing:
            log.warning("worker %s: its supervisor died; closing", worker.id)
            worker.close()

    threading.Thread(target=watch, name="baozi-supervisor-watch", daemon=True).start()
