"""``baozi worker``: run jobs."""

from __future__ import annotations

import logging
import os
import sys

import click

from .._gc import tune as tune_gc
from .._time import log_to_stderr
from ..app import App
from ..backends import store_class
from ..worker import Worker
from .control import start_beat
from .loading import load_app
from .options import Refused, app_url_option, transport_option


def _require_gevent() -> None:
    try:
        import gevent  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "the gevent pool needs gevent: pip install 'baozi[gevent]'"
        ) from None


def _patched_or_reexec() -> None:
    """Make sure this process runs with the standard library patched by gevent: if it is not,
    start this same command again with BAOZI_GEVENT=1, which patches at the first import."""
    from ..pools.green import gevent_patched

    if gevent_patched():
        return
    _require_gevent()
    if os.environ.get("BAOZI_GEVENT") == "1":
        raise click.ClickException("BAOZI_GEVENT=1 is set, yet gevent did not patch this process")
    os.environ["BAOZI_GEVENT"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "baozi", *sys.argv[1:]])


def _check_processes(app: App, processes: int) -> None:
    """Worker processes must share the store; ``memory://`` lives inside one process."""
    if processes > 1 and not store_class(app.url).shared_across_processes:
        raise Refused(
            f"-p {processes}: the store {app.url} lives inside one process, so other worker "
            f"processes would never see its jobs; use -p 1 (and -c for more slots), or a store "
            f"that processes share (sqlite:///file.db, redis://host/0)"
        )


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["thread", "process", "async", "gevent"]),
    default="thread",
    show_default=True,
    help="Where jobs run.",
)
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=None,
    help="Slots per process (default: thread 8, process one per core, async 100, gevent 1000).",
)
@click.option("-p", "--processes", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("-Q", "--queues", default=None, help="Comma-separated queues (default: the app's).")
@click.option(
    "--burst",
    is_flag=True,
    help="Exit once no job is ready or scheduled, and none is held by a dead worker.",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="On SIGTERM or Ctrl-C, jobs still running after S seconds go back to their queues.",
)
@click.option(
    "--max-tasks-per-child",
    type=int,
    default=None,
    help="Replace a process-pool child after this many jobs.",
)
@click.option(
    "--max-memory-per-child",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MB",
    help="Replace a process-pool child after a job during which its memory passed MB megabytes.",
)
@click.option("--beat", "with_beat", is_flag=True, help="Also run the scheduler of periodic jobs.")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@app_url_option
@transport_option
def worker(
    app_path: str,
    pool: str,
    concurrency: int | None,
    processes: int,
    queues: str | None,
    burst: bool,
    shutdown_timeout: float | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: float | None,
    with_beat: bool,
    quiet: bool,
    url: str | None,
    transport: str | None,
) -> None:
    """Run the jobs of MODULE:APP. SIGTERM or Ctrl-C finishes the jobs in flight and stops; a
    second one stops at once, putting them back in their queues."""
    if pool == "gevent":
        if processes > 1:
            # Only the worker processes run jobs: each patches at its first import of baozi.
            # The supervisor stays unpatched (gevent's child watchers would hide its children's
            # exits from it).
            _require_gevent()
            os.environ["BAOZI_GEVENT"] = "1"
        else:
            _patched_or_reexec()
    log_to_stderr(logging.WARNING if quiet else logging.INFO)
    app = load_app(app_path, url, transport)
    _check_processes(app, processes)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    w = Worker(
        app,
        names,
        pool,
        concurrency,
        processes,
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child=max_memory_per_child,
        shutdown_timeout=shutdown_timeout,
    )
    scheduler = start_beat(app) if with_beat else None
    tune_gc()
    w.run(burst)
    if scheduler is not None:
        scheduler.stop()
    if w.terminated or w.abandoned:
        # Threads still running abandoned jobs cannot be stopped, and the interpreter would wait
        # for them at exit; their jobs are already back in their queues, so leave now.
        logging.shutdown()
        os._exit(0)
