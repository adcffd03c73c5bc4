"""The Redis store: see :mod:`baozi.backends.redis.store`."""

from .store import RedisStore

__all__ = ["RedisStore"]
