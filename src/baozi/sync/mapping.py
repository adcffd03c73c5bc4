"""Dict: a ``multiprocessing.Manager().dict()`` kept in a store, across processes and restarts."""

from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping
from typing import Any

from .._dictkeys import key_text
from ..backends import resolve_url
from ..errors import StoreError
from ..serialize import get_serializer
from ._common import Opened, Owner, check_sync_name

__all__ = ["Dict"]

_CODEC = get_serializer("json")


def _key(key: object) -> tuple[str, bytes]:
    """The key's canonical text (see baozi._dictkeys) and the key as the serializer writes it."""
    return key_text(key), _CODEC.dumps(key)


def _parts(ns: str, text: str, record: bytes) -> tuple[bytes, bytes]:
    head, newline, tail = record.partition(b"\n")
    if not newline:
        raise StoreError(
            f"the baozi.Dict entry {text!r} of {ns!r} holds {record[:60]!r}, not a key and a "
            f"value (a baozi older than the store's layout wrote it after the migration); "
            f"remove it with del"
        )
    return head, tail


class Dict(MutableMapping[Any, Any]):
    """A dict shared by every process and machine on the store, kept across restarts -- the
    durable ``multiprocessing.Manager().dict()``.

    Each operation is atomic in the store; :meth:`incr` and :meth:`setdefault` read and write in
    one step, so concurrent callers never lose an update. Keys are what a dict takes that the
    safe JSON serializer stores: None, bool, int, float, str, bytes, Decimal, UUID, datetime,
    date, time, timedelta, and tuples and frozensets of them. Keys Python holds equal (``1``,
    ``1.0``, ``True``) are one key, and the first one written is the one kept, as in a dict
    (see baozi._dictkeys). A NaN key is refused (ValueError): no NaN equals another. Values are
    anything the serializer takes. ``keys()``, ``values()`` and ``items()`` are lists read at one
    moment, as a manager's dict returns. ``app.dict(name)`` makes one on the app's store;
    ``Dict(name, url=...)`` on any store."""

    def __init__(self, name: str, *, url: str | None = None, _owner: Owner | None = None) -> None:
        self.name = check_sync_name("Dict", name)
        # Its own handle, not the one shared by the other primitives: close() lets it go.
        self._owner: Owner = _owner if _owner is not None else Opened(resolve_url(url))
        self._ns = f"dict:{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def _value(self, text: str, record: bytes) -> Any:
        return _CODEC.loads(_parts(self._ns, text, record)[1])

    def __getitem__(self, key: Any) -> Any:
        text = key_text(key)
        raw = self._owner.store.kv_get(self._ns, text)
        if raw is None:
            raise KeyError(key)
        return self._value(text, raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        text, head = _key(key)
        self._owner.store.kv_set_tail(self._ns, text, head, _CODEC.dumps(value))

    def __delitem__(self, key: Any) -> None:
        if self._owner.store.kv_delete(self._ns, key_text(key)) is None:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        hash(key)  # an unhashable key raises TypeError, as in a dict
        try:
            text = key_text(key)
        except (TypeError, ValueError):  # no such key can be stored
            return False
        return self._owner.store.kv_get(self._ns, text) is not None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._owner.store.kv_items(self._ns))

    def keys(self) -> list[Any]:  # type: ignore[override]
        return [k for k, _ in self._pairs()]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [_CODEC.loads(v) for _, v in self._pairs()]

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [(k, _CODEC.loads(v)) for k, v in self._pairs()]

    def _pairs(self) -> list[tuple[Any, bytes]]:
        """Each key, and its value as stored, read at one moment."""
        out = []
        for text, record in self._owner.store.kv_items(self._ns).items():
            head, tail = _parts(self._ns, text, record)
            out.append((_CODEC.loads(head), tail))
        return out

    def get(self, key: Any, default: Any = None) -> Any:
        text = key_text(key)
        raw = self._owner.store.kv_get(self._ns, text)
        return default if raw is None else self._value(text, raw)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``, storing ``default`` first if there is none -- in one step."""
        text, head = _key(key)
        record = head + b"\n" + _CODEC.dumps(default)
        return self._value(text, self._owner.store.kv_setdefault(self._ns, text, record))

    _MISSING = object()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        text = key_text(key)
        raw = self._owner.store.kv_delete(self._ns, text)
        if raw is None:
            if default is Dict._MISSING:
                raise KeyError(key)
            return default
        return self._value(text, raw)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some (key, value) pair, atomically; KeyError when empty."""
        while True:
            texts = list(self._owner.store.kv_items(self._ns))
            if not texts:
                raise KeyError("popitem(): baozi.Dict is empty")
            for text in texts:
                raw = self._owner.store.kv_delete(self._ns, text)
                if raw is not None:  # this caller removed it; another may have taken the rest
                    head, tail = _parts(self._ns, text, raw)
                    return _CODEC.loads(head), _CODEC.loads(tail)

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
        text, head = _key(key)
        return self._owner.store.kv_incr_tail(self._ns, text, head, amount)

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
