"""Options shared by the commands, the exit codes, and the one-line refusal."""

from __future__ import annotations

import click

from ..backends import check_scheme, check_transport

# Exit codes, named.
OK, FAILED, NOT_FOUND, USAGE = 0, 1, 3, 2


class Refused(click.ClickException):
    """A command line or setting that cannot work: one line on stderr, exit code USAGE."""

    exit_code = USAGE


def _known_scheme(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
    """Refuse a store URL whose scheme no backend handles, listing those that exist."""
    if url:
        try:
            check_scheme(url)
        except ValueError as exc:
            raise Refused(str(exc)) from None
    return url


url_option = click.option(
    "--url",
    envvar="BAOZI_URL",
    default=None,
    show_envvar=True,
    callback=_known_scheme,
    help="Store URL (default sqlite:///baozi.db).",
)

app_url_option = click.option(
    "--url",
    default=None,
    callback=_known_scheme,
    help="Store URL to use instead of the app's own (which defaults to BAOZI_URL, then sqlite:///baozi.db).",
)


def _known_transport(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
    if url:
        try:
            check_transport(url)
        except ValueError as exc:
            raise Refused(str(exc)) from None
    return url


transport_option = click.option(
    "--transport",
    envvar="BAOZI_TRANSPORT",
    default=None,
    show_envvar=True,
    callback=_known_transport,
    help="RabbitMQ URL (amqp://...) that delivers the jobs; the store keeps their records.",
)
