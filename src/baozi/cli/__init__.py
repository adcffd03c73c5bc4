"""The ``baozi`` command: a click group; each command family lives in a module of its own."""

from __future__ import annotations

import click

from ..errors import StoreError
from .control import beat, pause, resume
from .demo import demo
from .jobs import cancel, enqueue, forget, jobs_cmd, purge, queues_cmd, retry, status
from .listings import schedules, workers
from .monitor import monitor
from .serve import serve
from .worker import worker


class _Group(click.Group):
    """Reports a store that fails (unreachable, refusing) in one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # Read only when asked for (see baozi.__version__): other commands start without it.
    if value and not ctx.resilient_parsing:
        from .. import __version__

        click.echo(f"baozi, version {__version__}")
        ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def main() -> None:
    """baozi: durable queues shared by threads, processes and machines."""


for command in (
    demo,
    worker,
    enqueue,
    status,
    queues_cmd,
    jobs_cmd,
    retry,
    cancel,
    forget,
    purge,
    monitor,
):
    main.add_command(command)
for command in (pause, resume, beat, workers, schedules):
    main.add_command(command)
main.add_command(serve)
