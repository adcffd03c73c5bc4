"""Finding an App from its ``module:attribute`` path, as the CLI and every worker process must."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

from .app import App
from .errors import AppNotFound

__all__ = ["load_app", "load_object"]


def _raised_at(exc: Exception) -> str:
    """Where the exception was raised, as ``" (at shop.py:3)"``, or "" when no file says."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or isinstance(exc, SyntaxError):  # a SyntaxError names its own line
        return ""
    last = frames[-1]
    return f" (at {os.path.relpath(last.filename)}:{last.lineno})"


def load_app(path: str) -> App:
    """Import ``module:attribute`` (the working directory is importable) and return that App.

    Raises AppNotFound for a path of another shape, an attribute that is no App, or a module
    that raised while it was imported (then that exception is the ``__cause__``)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise AppNotFound(f"{path!r}: give the app as module:attribute, e.g. tasks:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raised while it ran: one line, not a trace
        raise AppNotFound(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}{_raised_at(exc)}"
        ) from exc
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise AppNotFound(f"{path!r} is {type(app).__name__}, not a baozi.App")
    app.import_path = path
    return app


def load_object(path: str) -> object:
    """The object at ``module:attribute`` named in code or on the command line (never a name
    read from a store); ImportError or AttributeError when there is none."""
    module_name, _, attr = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module_name), attr)
