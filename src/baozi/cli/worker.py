"""``baozi worker``: run jobs."""

from __future__ import annotations

import logging
import os

import click

from ..worker import Worker
from .loading import load_app
from .options import app_url_option


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["thread", "process", "async"]),
    default="thread",
    show_default=True,
    help="Where jobs run.",
)
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=None,
    help="Slots per process (default: thread 8, process one per core, async 100).",
)
@click.option("-p", "--processes", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("-Q", "--queues", default=None, help="Comma-separated queues (default: the app's).")
@click.option("--burst", is_flag=True, help="Exit once no job is ready, scheduled or running.")
@click.option(
    "--max-tasks-per-child",
    type=int,
    default=None,
    help="Replace a process-pool child after this many jobs.",
)
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@app_url_option
def worker(
    app_path: str,
    pool: str,
    concurrency: int | None,
    processes: int,
    queues: str | None,
    burst: bool,
    max_tasks_per_child: int | None,
    quiet: bool,
    url: str | None,
) -> None:
    """Run the jobs of MODULE:APP. SIGTERM or Ctrl-C finishes the jobs in flight and stops; a
    second one stops at once, putting them back in their queues."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = load_app(app_path, url)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    w = Worker(app, names, pool, concurrency, processes, max_tasks_per_child=max_tasks_per_child)
    w.run(burst)
    if w.terminated or w.abandoned:
        # Threads still running abandoned jobs cannot be stopped, and the interpreter would wait
        # for them at exit; their jobs are already back in their queues, so leave now.
        logging.shutdown()
        os._exit(0)
