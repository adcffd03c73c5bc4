"""Turning items into bytes for the store: a safe default codec, and pickle only on request.

The default codec (``"json"``) writes JSON, so a store can be read with any SQLite or Redis client,
and round-trips these types exactly, nested in any way: None, bool, int (any size), float
(including nan and inf), str, bytes, list, tuple, dict (any hashable keys), set, frozenset,
datetime (naive, fixed-offset or ``zoneinfo`` aware), date, time, timedelta, Decimal and UUID.
Anything else -- subclasses included, since they would come back as their base type -- is refused
with a TypeError when the item is put, never later in a consumer. ``"pickle"`` takes any picklable
object, but unpickling runs code chosen by whoever can write to the store, so it is opt-in.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import pickle
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "get_serializer"]

_TAG = "__baozi__"


@runtime_checkable
class Serializer(Protocol):
    """Turns one item into bytes and back. ``dumps`` raises TypeError for what it cannot encode."""

    name: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


def _refuse(value: object) -> TypeError:
    kind = type(value)
    return TypeError(
        f"baozi's default serializer cannot store an object of type "
        f"{kind.__module__}.{kind.__qualname__}: convert it to one of None, bool, int, float, str, "
        f"bytes, list, tuple, dict, set, frozenset, datetime, date, time, timedelta, Decimal or "
        f"UUID, or open the queue with serializer='pickle' if every writer to the store is trusted"
    )


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {_TAG: tag, "v": value}


def _encode_datetime(value: _dt.datetime) -> dict[str, Any]:
    tz = value.tzinfo
    if tz is None or isinstance(tz, _dt.timezone):
        return _tagged("datetime", [value.isoformat(), value.fold])
    if isinstance(tz, ZoneInfo) and tz.key is not None:
        naive = value.replace(tzinfo=None).isoformat()
        return _tagged("zdatetime", [naive, tz.key, value.fold])
    raise TypeError(
        f"baozi's default serializer cannot store a datetime whose tzinfo is "
        f"{type(tz).__qualname__} (or a ZoneInfo without a key): use datetime.timezone or "
        f"zoneinfo.ZoneInfo('Area/City'), or serializer='pickle'"
    )


_PLAIN = frozenset((str, int, float, bool, type(None)))


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    if _TAG not in value and all(type(k) is str for k in value):
        return {k: v if type(v) in _PLAIN else _encode(v) for k, v in value.items()}
    return _tagged("dict", [[_encode(k), _encode(v)] for k, v in value.items()])


def _encode_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    # Scalars, the usual content, are checked inline rather than with a call each.
    return [x if type(x) in _PLAIN else _encode(x) for x in value]


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    list: _encode_list,
    dict: _encode_dict,
    tuple: lambda v: _tagged("tuple", _encode_list(v)),
    bytes: lambda v: _tagged("bytes", base64.b64encode(v).decode("ascii")),
    set: lambda v: _tagged("set", [_encode(x) for x in v]),
    frozenset: lambda v: _tagged("frozenset", [_encode(x) for x in v]),
    _dt.datetime: _encode_datetime,
    _dt.date: lambda v: _tagged("date", v.isoformat()),
    _dt.time: lambda v: (
        _tagged("time", [v.isoformat(), v.fold]) if v.tzinfo is None else _refuse(v)
    ),
    _dt.timedelta: lambda v: _tagged("timedelta", [v.days, v.seconds, v.microseconds]),
    Decimal: lambda v: _tagged("decimal", str(v)),
    uuid.UUID: lambda v: _tagged("uuid", v.hex),
}


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise _refuse(value)
    encoded = encoder(value)
    if isinstance(encoded, TypeError):
        raise encoded
    return encoded


def _flat(value: Any) -> bool:
    """Whether JSON writes ``value`` exactly as it is: a list of plain values, of lists of them
    and of dicts of them under str keys (a job's arguments, most often)."""
    if type(value) is not list:
        return False
    for x in value:
        kind = type(x)
        if kind in _PLAIN:
            continue
        if kind is list:
            for y in x:  # loops, not all(): no generator made for a handful of arguments
                if type(y) not in _PLAIN:
                    return False
        elif kind is dict:
            if _TAG in x:
                return False
            for k, v in x.items():
                if type(k) is not str or type(v) not in _PLAIN:
                    return False
        else:
            return False
    return True


def _decode_zdatetime(v: list[Any]) -> _dt.datetime:
    naive, key, fold = v
    return _dt.datetime.fromisoformat(naive).replace(tzinfo=ZoneInfo(key), fold=fold)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "dict": lambda v: {k: x for k, x in v},
    "tuple": tuple,
    "bytes": base64.b64decode,
    "set": set,
    "frozenset": frozenset,
    "datetime": lambda v: _dt.datetime.fromisoformat(v[0]).replace(fold=v[1]),
    "zdatetime": _decode_zdatetime,
    "date": _dt.date.fromisoformat,
    "time": lambda v: _dt.time.fromisoformat(v[0]).replace(fold=v[1]),
    "timedelta": lambda v: _dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": Decimal,
    "uuid": uuid.UUID,
}


def _decode_object(obj: dict[str, Any]) -> Any:
    tag = obj.get(_TAG)
    if tag is None:
        return obj
    return _DECODERS[tag](obj["v"])


def _flat_encoder(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    """``encode`` for the values :func:`_flat` accepts, without building a new C encoder on each
    call as ``JSONEncoder.encode`` does (and with no check for cycles: such a value has none).
    Falls back to ``encode`` where the interpreter's json module has no C encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encode
    try:
        iterate = make(
            None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True
        )
        probe: list[Any] = [[1, -2.5, float("nan"), None, True], {"k": "\u00e9\n"}, "x"]
        if "".join(iterate(probe, 0)) != encode(probe):
            return encode
    except Exception:  # noqa: BLE001 -- another signature: use the public one
        return encode
    return lambda value: "".join(iterate(value, 0))


class JsonSerializer:
    """The safe default: tagged JSON that round-trips the common value types exactly."""

    name = "json"

    def __init__(self) -> None:
        # Built once: json.dumps/json.loads with options build a new coder on every call.
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._decode = json.JSONDecoder(object_hook=_decode_object).decode
        # The C scanner behind decode(), without its whitespace handling: what dumps() wrote
        # has none around it.
        self._scan = json.JSONDecoder(object_hook=_decode_object).scan_once  # type: ignore[attr-defined]

        self._flat_encode = _flat_encoder(self._encode)

    def dumps(self, obj: Any) -> bytes:
        if obj is None:  # what most tasks return
            return b"null"
        if type(obj) is str:
            return self._encode(obj).encode()
        if _flat(obj):  # a job's arguments, most often: written as they are
            return self._flat_encode(obj).encode()
        return self._encode(_encode(obj)).encode()

    def loads(self, data: bytes) -> Any:
        text = data.decode()
        try:
            value, end = self._scan(text, 0)
        except StopIteration:  # not JSON at the start: let decode() raise its clear error
            return self._decode(text)
        return value if end == len(text) else self._decode(text)


class PickleSerializer:
    """Any picklable object. Only for stores that every writer is trusted with."""

    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as exc:
            raise TypeError(f"cannot pickle {type(obj).__qualname__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


_BY_NAME: dict[str, Serializer] = {"json": JsonSerializer(), "pickle": PickleSerializer()}


def get_serializer(spec: str | Serializer) -> Serializer:
    """Return the serializer named ``spec`` ("json" or "pickle"), or ``spec`` itself if it is one."""
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec]
        except KeyError:
            raise ValueError(
                f"unknown serializer {spec!r}: use one of {sorted(_BY_NAME)} "
                f"or an object with dumps(obj) -> bytes and loads(bytes)"
            ) from None
    if isinstance(spec, Serializer):
        return spec
    raise TypeError(f"serializer must be a name or have dumps/loads, not {type(spec).__qualname__}")
