"""Priorities beyond plain numbers (str, bytes, tuples) as bytes that sort as the values do.

A plain number stays as each store has always kept it. Any other priority a store keeps as the
bytes :func:`encode` makes: compared byte by byte (``memcmp``), they order exactly as Python
orders the values -- str by code point, bytes by byte, tuples element by element with a shorter
prefix first, and numbers inside tuples exactly, int against float and ints of any size. Values
that compare equal (``(1, 'a')`` and ``(1.0, 'a')``) encode equal, so they keep their push order.

Each value starts with a tag byte, so values of different kinds never tie (numbers < str < bytes
< tuples); a tuple ends with a 0 byte, below every tag. :func:`decode` gives the value back, with
one loss: a number inside a tuple comes back as an int when it is whole (``1.0`` as ``1``),
which compares the same.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .contract.records import Priority

MAX_ENCODED = 500
"""The most bytes a priority may encode to: a PostgreSQL store keeps them in an indexed numeric
(about 4 bytes each), and an index entry holds at most 2,704 bytes."""

__all__ = ["MAX_ENCODED", "clash", "decode", "encode", "kind", "kept", "merged", "read", "shape"]

_END = 0x00
_NEG_INF, _NEG, _POS, _POS_INF = 0x20, 0x21, 0x22, 0x23
_STR, _BYTES, _TUPLE = 0x30, 0x40, 0x50


def _whole(n: int) -> bytes:
    # An int of any size, self-delimiting, in numeric order: a tag, the byte length of the
    # magnitude (4 bytes), then its big-endian bytes; negatives have both complemented.
    if n >= 0:
        mag = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([_POS]) + len(mag).to_bytes(4, "big") + mag
    m = -n - 1
    mag = m.to_bytes((m.bit_length() + 7) // 8, "big")
    flipped = bytes(255 - b for b in mag)
    return bytes([_NEG]) + (0xFFFFFFFF - len(mag)).to_bytes(4, "big") + flipped


def _number(x: int | float) -> bytes:
    # The floor as an int, then the fraction's bits in 7-bit groups (each byte's top bit set,
    # trailing zero groups dropped), then a 0 byte: a shorter fraction sorts first.
    if isinstance(x, float):
        if math.isinf(x):
            return bytes([_POS_INF if x > 0 else _NEG_INF])
        num, den = x.as_integer_ratio()
    else:
        num, den = int(x), 1
    whole, rest = divmod(num, den)
    out = bytearray(_whole(whole))
    bits = den.bit_length() - 1  # den is a power of two
    if rest:
        groups = -(-bits // 7)
        value = rest << (groups * 7 - bits)
        digits = [(value >> (7 * i)) & 0x7F for i in reversed(range(groups))]
        while digits and digits[-1] == 0:
            digits.pop()
        out += bytes(0x80 | d for d in digits)
    out.append(_END)
    return bytes(out)


def _escaped(data: bytes) -> bytes:
    # 0 bytes become 0 255, and the end is 0 0: a prefix sorts before what extends it.
    return data.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def encode(value: Any) -> bytes:
    """The order-preserving bytes of a checked priority (see :func:`kind`)."""
    out = bytearray()
    _put(out, value)
    return bytes(out)


def _put(out: bytearray, value: Any) -> None:
    if isinstance(value, str):
        out.append(_STR)
        out += _escaped(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        out.append(_BYTES)
        out += _escaped(value)
    elif isinstance(value, tuple):
        out.append(_TUPLE)
        for element in value:
            _put(out, element)
        out.append(_END)
    else:
        out += _number(value)


def decode(data: bytes, *, trimmed: bool = False) -> Priority:
    """The priority :func:`encode` wrote; with ``trimmed``, from those bytes less any trailing
    zero bytes (as a store that keeps them as a fraction gives them back)."""
    value: Priority
    if trimmed:
        # The zeros a store dropped: no encoding is longer than MAX_ENCODED bytes (put refuses
        # it), so none ends in more zero bytes than that.
        data += bytes(MAX_ENCODED + 8)
    value, end = _get(data, 0)
    if end != len(data) and not (trimmed and not data[end:].strip(b"\x00")):
        raise ValueError(f"{len(data) - end} byte(s) after an encoded priority")
    return value


def _unescaped(data: bytes, at: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        zero = data.index(b"\x00", at)
        out += data[at:zero]
        if data[zero + 1] == 0:
            return bytes(out), zero + 2
        out.append(0)
        at = zero + 2


def _get(data: bytes, at: int) -> tuple[Any, int]:
    tag = data[at]
    if tag == _STR:
        raw, at = _unescaped(data, at + 1)
        return raw.decode("utf-8", "surrogatepass"), at
    if tag == _BYTES:
        return _unescaped(data, at + 1)
    if tag == _TUPLE:
        elements = []
        at += 1
        while data[at] != _END:
            element, at = _get(data, at)
            elements.append(element)
        return tuple(elements), at + 1
    if tag in (_NEG_INF, _POS_INF):
        return (math.inf if tag == _POS_INF else -math.inf), at + 1
    if tag not in (_NEG, _POS):
        raise ValueError(f"no encoded priority starts with byte {tag}")
    size = int.from_bytes(data[at + 1 : at + 5], "big")
    if tag == _NEG:
        size = 0xFFFFFFFF - size
    mag = data[at + 5 : at + 5 + size]
    at += 5 + size
    whole = int.from_bytes(mag, "big")
    if tag == _NEG:
        whole = -int.from_bytes(bytes(255 - b for b in mag), "big") - 1
    num, bits = 0, 0
    while data[at] != _END:
        num = (num << 7) | (data[at] & 0x7F)
        bits += 7
        at += 1
    if not bits:
        return whole, at + 1
    return float(Fraction((whole << bits) + num, 1 << bits)), at + 1


def kind(value: Any, where: str = "") -> str:
    """Check a priority and name its kind: "number", "str", "bytes" or "tuple". Raises
    TypeError for what cannot be one (a list, None, a bool...) and ValueError for NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, bytes, tuple)):
        raise TypeError(
            f"a priority is an int, float, str, bytes or a tuple of those, not "
            f"{type(value).__name__} {value!r}{where}"
        )
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"a priority cannot be NaN{where}")
    if isinstance(value, tuple):
        for element in value:
            kind(element, where)
        return "tuple"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def shape(value: Any) -> Any:
    """The kinds in a checked priority, position by position: "number", "str", "bytes", or a
    list of shapes for a tuple (JSON, so that a store can record it)."""
    if isinstance(value, tuple):
        return [shape(element) for element in value]
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def clash(held: Any, new: Any) -> tuple[str, str] | None:
    """Where two shapes disagree: the kinds found at the first position where Python could not
    compare the values (``held``'s, ``new``'s), or None when they agree wherever both have one."""
    if isinstance(held, list) and isinstance(new, list):
        for a, b in zip(held, new, strict=False):
            found = clash(a, b)
            if found is not None:
                return found
        return None
    if held == new:
        return None
    return ("tuple" if isinstance(held, list) else held), (
        "tuple" if isinstance(new, list) else new
    )


def merged(held: Any, new: Any) -> Any:
    """The shape of values of both shapes (which :func:`clash` found to agree)."""
    if isinstance(held, list) and isinstance(new, list):
        longer = held if len(held) >= len(new) else new
        both = [merged(a, b) for a, b in zip(held, new, strict=False)]
        return both + longer[len(both) :]
    return held


def kept(priority: Priority) -> int | float | bytes:
    """A priority as a store with a number-or-blob column keeps it: a number as it is, any
    other priority encoded."""
    if isinstance(priority, (int, float)):
        return priority
    return encode(priority)


def read(value: int | float | bytes) -> Priority:
    """The priority :func:`kept` gave ``value`` for."""
    return decode(value) if isinstance(value, bytes) else value
