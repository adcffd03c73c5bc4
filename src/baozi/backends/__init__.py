"""Opening a store from its URL; each scheme maps to a backend module that is imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from urllib.parse import urlsplit

from .._outage import shown_url
from ..config import load_settings
from ..errors import NotSupported
from .base import Counts, Item, Store

__all__ = [
    "Counts",
    "Item",
    "Store",
    "check_scheme",
    "check_transport",
    "with_transport",
    "interop_queue_class",
    "is_interop",
    "open_store",
    "resolve_url",
    "store_class",
    "SCHEMES",
]

SCHEMES: dict[str, str] = {
    "memory": "baozi.backends.memory:MemoryStore",
    "sqlite": "baozi.backends.sqlite:SQLiteStore",
    "redis": "baozi.backends.redis:RedisStore",
    "rediss": "baozi.backends.redis:RedisStore",
    "postgresql": "baozi.backends.postgres:PostgresStore",
    "postgres": "baozi.backends.postgres:PostgresStore",
}
"""URL scheme -> ``"module:Class"``. A new backend is one module plus one line here."""


INTEROP: dict[str, str] = {
    "amqp": "baozi.amqp.queue:AmqpQueue",
    "amqps": "baozi.amqp.queue:AmqpQueue",
}
"""URL scheme -> the queue class of a broker that is not a store (RabbitMQ): ``baozi.Queue``
opens it; every store-only use of its URL is refused."""


def resolve_url(url: str | None) -> str:
    """``url``, or the configured default (``BAOZI_URL``, else ``sqlite:///baozi.db``)."""
    return url if url else load_settings().url


def check_scheme(url: str) -> str:
    """The backend target (``"module:Class"``) for ``url``'s scheme. Raises ValueError for a
    scheme no backend handles, naming the ones that exist."""
    if not isinstance(url, str):
        raise TypeError(f"a store URL must be a str, not {type(url).__qualname__}")
    scheme = urlsplit(url).scheme.lower()
    if scheme in INTEROP:
        raise NotSupported(
            "being a store",
            shown_url(url),
            "RabbitMQ cannot say how many messages are ahead of one, order by priority, pop "
            "LIFO, cancel a queued message or keep records. To share a FIFO queue with other "
            "AMQP programs, open baozi.Queue(name, url=<this URL>); to have RabbitMQ deliver "
            "jobs, keep them in a store and pass this URL as the transport: "
            "App(url='redis://...', transport=<this URL>), or --transport",
        )
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(
            f"unknown store URL scheme {scheme + '://' if scheme else '(none)'} in {url!r}: "
            f"baozi supports {known} (for example sqlite:///baozi.db or memory://)"
        )
    return target


def is_interop(url: object) -> bool:
    """Whether ``url`` (None: the configured default) names a broker that is not a store."""
    if not url:
        url = resolve_url(None)
    return isinstance(url, str) and urlsplit(url).scheme.lower() in INTEROP


def interop_queue_class(url: str | None) -> type:
    """The queue class of the broker ``url`` names (see :func:`is_interop`); imports its
    driver."""
    target = INTEROP[urlsplit(resolve_url(url)).scheme.lower()]
    module_name, class_name = target.split(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


TRANSPORTS: dict[str, str] = {
    "amqp": "baozi.amqp.transport:TransportStore",
    "amqps": "baozi.amqp.transport:TransportStore",
}
"""URL scheme -> the store wrapper of a broker that delivers jobs (see :func:`with_transport`)."""


def check_transport(url: object) -> str:
    """``url``, checked to name a broker that can deliver jobs. Raises ValueError otherwise."""
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in TRANSPORTS:
        raise ValueError(
            f"a job transport is a RabbitMQ URL (amqp://user:password@host:5672/vhost), not {url!r}"
        )
    return url


def with_transport(store: Store, url: str, delivery_limit: Callable[[str], int]) -> Store:
    """``store``, its jobs delivered by the broker at ``url`` (imports the broker's driver);
    ``delivery_limit(queue)``: how often a job of ``queue`` may be delivered."""
    module_name, class_name = TRANSPORTS[urlsplit(check_transport(url)).scheme.lower()].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    wrapped: Store = cls(store, url, delivery_limit)
    return wrapped


def store_class(url: str | None = None) -> type[Store]:
    """The class of the store at ``url`` (its backend module imported, nothing opened)."""
    module_name, class_name = check_scheme(resolve_url(url)).split(":")
    cls: type[Store] = getattr(importlib.import_module(module_name), class_name)
    return cls


def open_store(url: str | None = None) -> Store:
    """Open a handle on the store at ``url`` (default: see :func:`resolve_url`).

    Raises ValueError for a URL whose scheme no backend handles, naming the ones that exist.
    """
    url = resolve_url(url)
    return store_class(url)(url)
