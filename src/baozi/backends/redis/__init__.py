"""The Redis store: see :mod:`baozi.backends.redis.store` (with its queue part; the job part is
in :mod:`.jobs`, the coordination part in :mod:`.coord`)."""

try:  # here, before any module of the package imports it
    import redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the redis:// store needs the redis client library: pip install 'baozi[redis]'"
    ) from exc

from .jobs import RedisStore

__all__ = ["RedisStore"]
