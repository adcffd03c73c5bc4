"""The CLI's side of finding the user's App: library errors become click errors."""

from __future__ import annotations

import os
import sys

import click

from .._loading import load_app as _load
from ..app import App
from ..backends import resolve_url, store_class
from ..errors import AppNotFound
from .options import NOT_FOUND, Refused


def load_app(path: str, url: str | None = None, transport: str | None = None) -> App:
    """The App at ``module:attribute``; with ``url``, using that store instead of its own, and
    with ``transport``, that broker to deliver its jobs (worker processes inherit both)."""
    if url:
        os.environ["BAOZI_URL"] = url
    if transport:
        os.environ["BAOZI_TRANSPORT"] = transport
    try:
        app = _load(path)
    except AppNotFound as exc:
        if exc.__cause__ is not None:  # the module raised while it ran
            raise Refused(str(exc)) from None
        raise click.BadParameter(str(exc)) from None
    if url and app.url != url:
        try:
            app.use_store(url)
        except ValueError as exc:  # a URL its backend cannot read
            raise Refused(str(exc)) from None
    if transport and app.transport != transport:
        app.use_transport(transport)
    return app


def existing_app(url: str | None) -> App:
    """The app on a store that exists already: commands that only read create nothing."""
    try:
        missing = store_class(url).missing(resolve_url(url))
    except ValueError as exc:  # a URL its backend cannot read
        raise Refused(str(exc)) from None
    if missing:
        click.echo(f"no baozi store: {missing} (check --url or BAOZI_URL)", err=True)
        sys.exit(NOT_FOUND)
    return App(url)
