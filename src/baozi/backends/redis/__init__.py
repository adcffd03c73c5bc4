"""The Redis store: see :mod:`baozi.backends.redis.store`."""

try:  # here, before any module of the package imports it
    import redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the redis:// store needs the redis client library: pip install 'baozi[redis]'"
    ) from exc

from .store import RedisStore

__all__ = ["RedisStore"]
