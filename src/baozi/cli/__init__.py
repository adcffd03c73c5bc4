"""The ``baozi`` command: a click group; each command family lives in a module of its own."""

from __future__ import annotations

from importlib import import_module

import click

from .._extras import MissingExtra
from ..errors import StoreError

# Each command and the module that defines it, in the order --help lists them. A command's
# module is imported when the command runs (or --help lists it), so `baozi monitor` starts
# without importing the worker, the web server or rich.
_COMMANDS = {
    "demo": "baozi.cli.demo:demo",
    "worker": "baozi.cli.worker:worker",
    "enqueue": "baozi.cli.jobs:enqueue",
    "status": "baozi.cli.jobs:status",
    "queues": "baozi.cli.jobs:queues_cmd",
    "jobs": "baozi.cli.jobs:jobs_cmd",
    "retry": "baozi.cli.jobs:retry",
    "cancel": "baozi.cli.jobs:cancel",
    "forget": "baozi.cli.jobs:forget",
    "purge": "baozi.cli.jobs:purge",
    "monitor": "baozi.cli.monitor:monitor",
    "pause": "baozi.cli.control:pause",
    "resume": "baozi.cli.control:resume",
    "beat": "baozi.cli.control:beat",
    "workers": "baozi.cli.listings:workers",
    "schedules": "baozi.cli.listings:schedules",
    "serve": "baozi.cli.serve:serve",
}


class _Group(click.Group):
    """Loads each command on first use, and reports a store that fails (unreachable, refusing)
    in one line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        try:
            command = getattr(import_module(module), name)
        except MissingExtra as exc:
            return _needs_extra(cmd_name, str(exc))
        assert isinstance(command, click.Command) and command.name == cmd_name, where
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from exc


def _needs_extra(name: str, reason: str) -> click.Command:
    """A command whose extra is not installed: listed by --help, and saying which extra to
    install when run, whatever its arguments."""

    def refuse() -> None:
        raise click.ClickException(reason)

    return click.Command(
        name,
        callback=refuse,
        help=reason,
        short_help=f"(not installed) {reason.split(': pip')[0]}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


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
