"""Options shared by the commands."""

from __future__ import annotations

import click

url_option = click.option(
    "--url",
    envvar="BAOZI_URL",
    default=None,
    show_envvar=True,
    help="Store URL (default sqlite:///baozi.db).",
)

# Exit codes, named.
OK, FAILED, NOT_FOUND, USAGE = 0, 1, 3, 2
