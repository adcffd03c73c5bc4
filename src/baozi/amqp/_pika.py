"""pika, imported once, with an error that names the extra to install when it is missing."""

from __future__ import annotations

import logging

try:
    import pika
    import pika.exceptions
except ImportError as exc:  # pragma: no cover -- the test environment installs it
    raise ImportError("baozi's RabbitMQ queue needs pika: pip install 'baozi[amqp]'") from exc

__all__ = ["pika"]


class _RefusedPublishes(logging.Filter):
    """pika logs a WARNING for every negative publisher confirm; baozi turns those into
    ``queue.Full`` (or an error), so the log line only repeats what the caller is told."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Message was Nack'ed")


logging.getLogger("pika.adapters.blocking_connection").addFilter(_RefusedPublishes())
