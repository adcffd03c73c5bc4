"""RabbitMQ beside the stores, not as one.

RabbitMQ cannot say how many messages are ahead of one, order by arbitrary priorities, pop LIFO,
cancel a queued message or keep records, so it does not take the store contract. What it does
well is carry messages between programs: :class:`AmqpQueue` is ``baozi.Queue(name,
url="amqp://...")``, a FIFO queue over a durable quorum queue that plain AMQP programs can share.

Needs pika: ``pip install 'baozi[amqp]'``.
"""

from __future__ import annotations

SCHEMES = ("amqp", "amqps")
"""URL schemes that name a RabbitMQ broker."""

__all__ = ["SCHEMES"]
