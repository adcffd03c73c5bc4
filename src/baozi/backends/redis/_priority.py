"""A priority as the store keeps it: a text key that sorts exactly as the priority does.

A number's key starts with "/", "0", "1" or "2"; any other priority's (str, bytes, tuple) is "3"
and the hex of its :mod:`~baozi.backends._order` bytes, so it sorts after every number and, among
its own, as the values do. Both end with "!"."""

from __future__ import annotations

import math
from functools import lru_cache

from .._order import encode
from ..base import Priority

_INVERT = str.maketrans("0123456789abcdef", "fedcba9876543210")


@lru_cache(maxsize=4096)
def _int_key(n: int) -> str:
    # Self-delimiting and in numeric order: sign, length, digits (inverted for negatives).
    if n >= 0:
        digits = format(n, "x")
        return "1" + format(len(digits), "03x") + digits
    digits = format(-n - 1, "x")
    return "0" + format(4095 - len(digits), "03x") + digits.translate(_INVERT)


def priority_key(priority: Priority) -> str:
    """A text that sorts as ``priority`` does, exactly, for any int of up to 64 bits and any float.

    The integer part (its floor) is written self-delimiting, then the fraction's exact binary
    digits in hex without trailing zeros, then "!", which sorts before every digit.
    """
    if isinstance(priority, int):
        return _int_key(priority) + "!"
    if not isinstance(priority, float):
        return "3" + encode(priority).hex() + "!"
    if math.isinf(priority):
        return "2!" if priority > 0 else "/!"
    num, den = priority.as_integer_ratio()  # exact; den is a power of two
    whole, rest = divmod(num, den)
    if not rest:
        return _int_key(whole) + "!"
    bits = den.bit_length() - 1
    width = -(-bits // 4)
    digits = format(rest << (width * 4 - bits), f"0{width}x").rstrip("0")
    return _int_key(whole) + digits + "!"


def plain(priority: Priority) -> Priority:
    """The priority as a plain int or float (an IntEnum or a numpy number is written as one)."""
    if type(priority) is int or type(priority) is float:
        return priority
    if not isinstance(priority, (int, float)):
        return priority
    return int(priority) if isinstance(priority, int) else float(priority)


@lru_cache(maxsize=256, typed=True)
def priority_fields(priority: Priority) -> tuple[str, str]:
    """A priority as the inbox entry holds it: its sort key and its text (a number's repr, or
    "x" and the hex of the encoded bytes)."""
    prio = plain(priority)
    if not isinstance(prio, (int, float)):
        return priority_key(prio), "x" + encode(prio).hex()
    return priority_key(prio), repr(prio)
