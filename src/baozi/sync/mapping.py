"""Dict: a ``multiprocessing.Manager().dict()`` kept in a store, across processes and restarts."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..backends import resolve_url
from ..serialize import get_serializer
from ._common import Opened, Owner, check_sync_name

__all__ = ["Dict"]

_CODEC = get_serializer("json")


def _key(key: object) -> str:
    if key is None or isinstance(key, (str, int, float, bool)):
        return json.dumps(key)
    raise TypeError(
        f"baozi.Dict keys are str, int, float, bool or None, not {type(key).__name__} ({key!r})"
    )


class Dict(MutableMapping[Any, Any]):
    """A dict shared by every process and machine on the store, kept across restarts -- the
    durable ``multiprocessing.Manager().dict()``.

    Each operation is atomic in the store; :meth:`incr` and :meth:`setdefault` read and write in
    one step, so concurrent callers never lose an update. Keys are str, int, float, bool or None;
    values anything the safe JSON serializer takes. ``keys()``, ``values()`` and ``items()`` are
    lists read at one moment, as a manager's dict returns. ``app.dict(name)`` makes one on the
    app's store; ``Dict(name, url=...)`` on any store."""

    def __init__(self, name: str, *, url: str | None = None, _owner: Owner | None = None) -> None:
        self.name = check_sync_name("Dict", name)
        # Its own handle, not the one shared by the other primitives: close() lets it go.
        self._owner: Owner = _owner if _owner is not None else Opened(resolve_url(url))
        self._ns = f"dict:{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def __getitem__(self, key: Any) -> Any:
        raw = self._owner.store.kv_get(self._ns, _key(key))
        if raw is None:
            raise KeyError(key)
        return _CODEC.loads(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        k = _key(key)
        self._owner.store.kv_set(self._ns, k, _CODEC.dumps(value))

    def __delitem__(self, key: Any) -> None:
        if self._owner.store.kv_delete(self._ns, _key(key)) is None:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            k = _key(key)
        except TypeError:
            return False
        return self._owner.store.kv_get(self._ns, k) is not None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._owner.store.kv_items(self._ns))

    def keys(self) -> list[Any]:  # type: ignore[override]
        return [json.loads(k) for k in self._owner.store.kv_items(self._ns)]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [_CODEC.loads(v) for v in self._owner.store.kv_items(self._ns).values()]

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [
            (json.loads(k), _CODEC.loads(v))
            for k, v in self._owner.store.kv_items(self._ns).items()
        ]

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._owner.store.kv_get(self._ns, _key(key))
        return default if raw is None else _CODEC.loads(raw)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``, storing ``default`` first if there is none -- in one step."""
        k = _key(key)
        return _CODEC.loads(self._owner.store.kv_setdefault(self._ns, k, _CODEC.dumps(default)))

    _MISSING = object()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        raw = self._owner.store.kv_delete(self._ns, _key(key))
        if raw is None:
            if default is Dict._MISSING:
                raise KeyError(key)
            return default
        return _CODEC.loads(raw)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some (key, value) pair, atomically; KeyError when empty."""
        while True:
            keys = list(self._owner.store.kv_items(self._ns))
            if not keys:
                raise KeyError("popitem(): baozi.Dict is empty")
            for k in keys:
                raw = self._owner.store.kv_delete(self._ns, k)
                if raw is not None:  # this caller removed it; another may have taken the rest
                    return json.loads(k), _CODEC.loads(raw)

    def incr(self, key: Any, amount: int | float = 1) -> int | float:
        """Add ``amount`` to the number under ``key`` (a missing key counts as 0) in one step in
        the store, and return the sum. Integers are exact to 64 bits on every store. TypeError
        if the key holds something else."""
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError(f"amount must be an int or a float, not {amount!r}")
        if isinstance(amount, float) and not math.isfinite(amount):
            raise ValueError(f"amount must be a finite number, not {amount!r}")
        if isinstance(amount, int) and not -(2**63) <= amount < 2**63:
            raise ValueError(f"amount {amount} does not fit in 64 bits")
        return self._owner.store.kv_incr(self._ns, _key(key), amount)

    def clear(self) -> None:
        self._owner.store.kv_clear(self._ns)

    def copy(self) -> dict[Any, Any]:
        """A plain dict of everything, read at one moment."""
        return dict(self.items())

    def close(self) -> None:
        """Let go of this handle's connection (the data stays)."""
        if isinstance(self._owner, Opened):
            self._owner.close()

    def __repr__(self) -> str:
        return f"<baozi.Dict {self.name!r} on {self.url}>"
