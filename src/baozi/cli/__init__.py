"""The ``baozi`` command: a click group; each command family lives in a module of its own."""

from __future__ import annotations

import click

from .. import __version__
from .demo import demo

URL_OPTION = click.option(
    "--url",
    envvar="BAOZI_URL",
    default=None,
    help="Store URL (env BAOZI_URL; default sqlite:///baozi.db).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="baozi")
def main() -> None:
    """baozi: durable queues shared by threads, processes and machines."""


main.add_command(demo)
