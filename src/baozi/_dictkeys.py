"""The keys of a :class:`baozi.Dict` in the store: one canonical text per key, so that keys
Python holds equal are one key, as in a dict.

A Dict stores each entry in its namespace under the canonical text of its key, and the value
stored there is a record: the key as the safe serializer wrote it (the first key written, kept
as a dict keeps it), a newline, then the value as the serializer wrote it. The serializer
escapes every newline inside its JSON, so the first newline ends the key.

The canonical text of a key:

* ``None`` is ``null``; a str is its ``json.dumps`` text (``"a"``).
* Numbers -- bool, int, float and Decimal -- by their exact value, so ``True``, ``1``, ``1.0``
  and ``Decimal(1)`` are one key, and ``0``, ``0.0``, ``-0.0``, ``False`` another:

  - an integral value is its decimal digits (``-12``, ``0``) when it ends in at most 20 zeros,
    else its digits without them, ``e`` and their count (``10**30`` is ``1e30``), so a huge
    Decimal exponent never spells out its zeros. A float is exact: ``float(2**53 + 1)`` is
    ``9007199254740992``, not the int ``2**53 + 1`` (``9007199254740993``);
  - any other value that a float holds exactly is that float's ``repr`` (``0.5``, ``1.5e-07``):
    a Decimal equal to it is the same key (``Decimal("0.5") == 0.5``);
  - any other Decimal is ``["decimal","<digits>e<exponent>"]`` with no trailing zeros in the
    digits (``Decimal("0.10")`` is ``["decimal","1e-1"]``, not the float ``0.1``'s key);
  - infinities are ``Infinity`` and ``-Infinity``. NaN is refused with a ValueError: no NaN
    equals another, so each would be a key no later call could name.

* The other kinds are JSON arrays that start with the kind's name and hold the canonical texts
  of their parts, so equal parts give equal texts and no two kinds meet:
  ``["tuple",1,"a"]`` (so ``(1, "a")`` and ``(1.0, "a")`` are one key); ``["frozenset",...]``
  with its members' texts sorted (member order is no part of a frozenset); ``["bytes","<base
  64>"]`` (``b"a"`` and ``"a"`` stay apart, as in Python); ``["date","2020-01-02"]``;
  ``["time","12:30:00"]`` (a naive time); ``["timedelta",days,seconds,microseconds]``;
  ``["uuid","<hex>"]``; ``["datetime","2020-01-02T03:04:05"]`` for a naive datetime, and
  ``["datetime-utc",<microseconds since 0001-01-01 UTC>]`` for an aware one, so aware datetimes
  of the same instant are one key whatever their zone, and never the key of a naive one (which
  Python never holds equal to them). A wall time a zone repeats counts as its first occurrence,
  as ``hash()`` counts it.

``fold`` is no part of a naive datetime's or a time's key: Python compares them without it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["KEY_KINDS", "key_text", "old_key_text", "rewrite_old_entries"]

KEY_KINDS = (
    "None, bool, int, float, str, bytes, Decimal, UUID, datetime, date, time, timedelta, and "
    "tuples and frozensets of them"
)
"""What a :class:`baozi.Dict` key may be, for error messages."""

_WHOLE_ZEROS = 20
"""An integral key ending in more zeros than this is written with an exponent."""

_EPOCH = _dt.datetime(1, 1, 1)
_MICROSECOND = _dt.timedelta(microseconds=1)


def key_text(key: Any) -> str:
    """The canonical text of ``key``. TypeError for an unhashable key (as a dict raises it) or a
    kind the safe serializer does not store; ValueError for a NaN anywhere in it."""
    hash(key)
    return _text(key)


def _refuse(key: Any) -> TypeError:
    kind = type(key)
    return TypeError(
        f"a baozi.Dict key cannot be of type {kind.__module__}.{kind.__qualname__} ({key!r}): "
        f"use one of {KEY_KINDS}"
    )


def _text(key: Any) -> str:
    kind = type(key)
    if kind is str:
        return json.dumps(key)
    if key is None:
        return "null"
    if kind is int or kind is bool:
        return _integral(int(key))
    if kind is float:
        return _float(key)
    if kind is Decimal:
        return _decimal(key)
    if kind is tuple:
        return "".join(['["tuple"', *("," + _text(x) for x in key), "]"])
    if kind is frozenset:
        return "".join(['["frozenset"', *("," + t for t in sorted(map(_text, key))), "]"])
    made = _OTHERS.get(kind)
    if made is None:
        raise _refuse(key)
    return made(key)


def _digits(negative: bool, digits: str, zeros: int) -> str:
    """An integral value: ``digits`` (no trailing zeros) followed by ``zeros`` zeros."""
    sign = "-" if negative else ""
    if zeros <= _WHOLE_ZEROS:
        return sign + digits + "0" * zeros
    return f"{sign}{digits}e{zeros}"


def _integral(n: int) -> str:
    if n == 0:
        return "0"
    text = str(abs(n))
    digits = text.rstrip("0")
    return _digits(n < 0, digits, len(text) - len(digits))


def _nan(key: Any) -> ValueError:
    return ValueError(
        f"a baozi.Dict key cannot be NaN ({key!r}): no NaN equals another, so no later call "
        f"could name the key; use another value, such as None or the string 'nan'"
    )


def _float(key: float) -> str:
    if math.isnan(key):
        raise _nan(key)
    if math.isinf(key):
        return "Infinity" if key > 0 else "-Infinity"
    if key.is_integer():
        return _integral(int(key))
    return repr(key)


def _decimal(key: Decimal) -> str:
    if key.is_nan():
        raise _nan(key)
    if key.is_infinite():
        return "-Infinity" if key < 0 else "Infinity"
    sign, numerals, exponent = key.as_tuple()
    assert isinstance(exponent, int)  # a finite Decimal's exponent
    whole = "".join(map(str, numerals)).lstrip("0")
    if not whole:
        return "0"
    digits = whole.rstrip("0")
    exponent += len(whole) - len(digits)
    if exponent >= 0:
        return _digits(bool(sign), digits, exponent)
    near = float(key)
    if math.isfinite(near) and Decimal(near) == key:  # exactly a float: that float's key
        return repr(near)
    return f'["decimal","{"-" if sign else ""}{digits}e{exponent}"]'


def _datetime(key: _dt.datetime) -> str:
    offset = key.replace(fold=0).utcoffset()
    naive = key.replace(tzinfo=None)
    if offset is None:
        return json.dumps(["datetime", naive.isoformat()])
    # In whole microseconds: an instant near year 1 or 9999 may lie outside datetime's range.
    return f'["datetime-utc",{(naive - _EPOCH - offset) // _MICROSECOND}]'


def _time(key: _dt.time) -> str:
    if key.tzinfo is not None:
        raise _refuse(key)
    return json.dumps(["time", key.isoformat()])


_OTHERS: dict[type, Callable[[Any], str]] = {
    bytes: lambda k: json.dumps(["bytes", base64.b64encode(k).decode("ascii")]),
    _dt.datetime: _datetime,
    _dt.date: lambda k: json.dumps(["date", k.isoformat()]),
    _dt.time: _time,
    _dt.timedelta: lambda k: json.dumps(["timedelta", k.days, k.seconds, k.microseconds]),
    uuid.UUID: lambda k: json.dumps(["uuid", k.hex]),
}


# -- the layout step that brings a store's Dicts to these keys -----------------------------------


def old_key_text(old: str) -> str:
    """The canonical text of a key that a Dict of an older layout stored as ``json.dumps(key)``
    (a str, int, float, bool or None). A NaN key -- which older layouts took -- keeps its text
    ``NaN``: no new key can be NaN, so it meets none, and ``keys()``, ``popitem()`` and
    ``clear()`` still reach it. Text that is no JSON is kept as it is."""
    try:
        key = json.loads(old)
    except ValueError:
        return old
    if isinstance(key, float) and math.isnan(key):
        return old
    try:
        return key_text(key)
    except (TypeError, ValueError):  # no key an older Dict wrote: left as it is
        return old


def rewrite_old_entries(entries: dict[str, bytes]) -> dict[str, bytes]:
    """The entries of one Dict namespace of an older layout (``json.dumps(key)`` -> the value as
    the serializer wrote it), as this layout stores them: canonical text -> record. Keys that are
    now equal (``1``, ``1.0``, ``true``) become one entry: the one whose old text sorts first
    (as Python orders str) wins, key and value, and the others are dropped. The old text is the
    record's key: the serializer reads any ``json.dumps`` text back as the same key."""
    out: dict[str, bytes] = {}
    for old in sorted(entries):
        new = old_key_text(old)
        if new not in out:
            out[new] = old.encode() + b"\n" + entries[old]
    return out
