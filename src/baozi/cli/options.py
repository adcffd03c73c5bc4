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

app_url_option = click.option(
    "--url",
    default=None,
    help="Store URL to use instead of the app's own (which defaults to BAOZI_URL, then sqlite:///baozi.db).",
)

# Exit codes, named.
OK, FAILED, NOT_FOUND, USAGE = 0, 1, 3, 2
