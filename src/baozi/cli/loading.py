"""Finding the user's App from a ``module:attribute`` path, as every worker process must."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from ..app import App
from .options import Refused


def _raised_at(exc: Exception) -> str:
    """Where the exception was raised, as ``" (at shop.py:3)"``, or "" when no file says."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or isinstance(exc, SyntaxError):  # a SyntaxError names its own line
        return ""
    last = frames[-1]
    return f" (at {os.path.relpath(last.filename)}:{last.lineno})"


def load_app(path: str, url: str | None = None) -> App:
    """Import ``module:attribute`` (the working directory is importable) and return that App.

    With ``url``, the app uses that store instead of its own (worker processes inherit it)."""
    if url:
        os.environ["BAOZI_URL"] = url
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"{path!r}: give the app as module:attribute, e.g. tasks:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raised while it ran: one line, not a trace
        raise Refused(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}{_raised_at(exc)}"
        ) from None
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise click.BadParameter(f"{path!r} is {type(app).__name__}, not a baozi.App")
    app.import_path = path
    if url and app.url != url:
        try:
            app.use_store(url)
        except ValueError as exc:  # a URL its backend cannot read
            raise Refused(str(exc)) from None
    return app
