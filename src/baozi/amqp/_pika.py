"""pika, imported once, with an error that names the extra to install when it is missing."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

try:
    import pika
    import pika.exceptions
except ImportError as exc:  # pragma: no cover -- the test environment installs it
    raise ImportError("baozi's RabbitMQ queue needs pika: pip install 'baozi[amqp]'") from exc

__all__ = ["pika", "quiet", "quieted"]


_quiet = threading.local()


class _Handled(logging.Filter):
    """pika logs every failed connection attempt (four ERROR lines each), every broker refusal
    of a declare and every negative publisher confirm. Inside a call of baozi's, which retries,
    adopts or raises with its own words, those lines only repeat what the caller is told: they
    are dropped there, and pika's other users log as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


@contextmanager
def quiet() -> Iterator[None]:
    """Drop pika's log lines about failures this thread's baozi call handles."""
    before = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = before


F = TypeVar("F", bound=Callable[..., Any])


def quieted(method: F) -> F:
    """``method``, run under :func:`quiet`."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with quiet():
            return method(*args, **kwargs)

    return cast(F, run)


for _name in (
    "pika.adapters.blocking_connection",
    "pika.adapters.base_connection",
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.utils.io_services_utils",
    "pika.channel",
    "pika.connection",
):
    logging.getLogger(_name).addFilter(_Handled())
