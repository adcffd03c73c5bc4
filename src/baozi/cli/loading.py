"""The CLI's side of finding the user's App: library errors become click errors."""

from __future__ import annotations

import os

import click

from .._loading import load_app as _load
from ..app import App
from ..errors import AppNotFound
from .options import Refused


def load_app(path: str, url: str | None = None) -> App:
    """The App at ``module:attribute``; with ``url``, using that store instead of its own
    (worker processes inherit it)."""
    if url:
        os.environ["BAOZI_URL"] = url
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
    return app
