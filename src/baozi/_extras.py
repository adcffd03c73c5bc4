"""The optional parts of baozi and the extra that installs each.

``pip install baozi`` brings the queues, tasks, workers and the command line. The HTTP service
(``baozi serve``, :mod:`baozi.web`) comes with ``baozi[web]``, and the URL monitor's HTTP client
with ``baozi[monitor]``. Code that needs a part calls :func:`need` first, so that a missing one
is named at the call with the command that installs it, not reported as a bare ImportError from
deep inside.
"""

from __future__ import annotations

from importlib.util import find_spec

__all__ = ["EXTRAS", "MissingExtra", "need"]

EXTRAS = {
    "web": ("starlette", "uvicorn", "httptools", "prometheus_client"),
    "monitor": ("aiohttp",),
}
"""The modules each extra installs (by import name), which :func:`need` checks."""


class MissingExtra(ImportError):
    """A part of baozi whose extra is not installed; the message says which to install."""


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def need(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` naming ``what`` (a command or module) and the extra to
    install when a module of ``extra`` is missing."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{what} needs baozi's {extra!r} extra ({', '.join(absent)} not installed): "
            f"pip install 'baozi[{extra}]'"
        )
