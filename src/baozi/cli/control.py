"""``baozi pause | resume | beat``: control queues and run the scheduler of periodic jobs."""

from __future__ import annotations

import logging
import signal
import threading

import click

from .._time import log_to_stderr
from ..app import App
from ..beat import Beat
from .loading import load_app
from .options import Refused, app_url_option, transport_option, url_option

_app_option = click.option(
    "--app",
    "app_path",
    metavar="MODULE:APP",
    default=None,
    help="An app whose queues (declared with app.queue, or a task's) may be paused before "
    "their first job.",
)


def _known_queue(queue: str, url: str | None, app_path: str | None) -> App:
    """The app to act with, once QUEUE is known to be a queue: one the store holds, or one the
    app names. Else refuse (exit USAGE): a mistyped name makes no queue."""
    app = load_app(app_path, url) if app_path else App(url)
    named = set(app.queues) | {task.queue for task in app.tasks.values()}
    if queue not in named and not app.store.has_queue(queue):
        hint = "" if app_path else "; give --app MODULE:APP to pause a queue its app declares"
        raise Refused(f"no queue {queue!r} in {app.url}: it has never held a job{hint}")
    return app


@click.command()
@click.argument("queue")
@_app_option
@url_option
def pause(queue: str, app_path: str | None, url: str | None) -> None:
    """Stop workers taking jobs from QUEUE (jobs running finish; enqueueing still works)."""
    _known_queue(queue, url, app_path).pause(queue)
    click.echo(f"paused {queue}")


@click.command()
@click.argument("queue")
@_app_option
@url_option
def resume(queue: str, app_path: str | None, url: str | None) -> None:
    """Let workers take jobs from QUEUE again."""
    _known_queue(queue, url, app_path).resume(queue)
    click.echo(f"resumed {queue}")


def start_beat(app: App) -> Beat:
    """Run the app's scheduler in a thread of this process (``baozi worker --beat``)."""
    beat = Beat(app)
    beat.start()
    return beat


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@app_url_option
@transport_option
def beat(app_path: str, quiet: bool, url: str | None, transport: str | None) -> None:
    """Enqueue the periodic jobs of MODULE:APP when they are due, until SIGTERM or Ctrl-C. Several
    may run at once for redundancy: each tick still enqueues exactly one job."""
    log_to_stderr(logging.WARNING if quiet else logging.INFO)
    app = load_app(app_path, url, transport)
    scheduler = Beat(app)
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        scheduler.stop(timeout=0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.run()
