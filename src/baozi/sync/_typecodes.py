"""The typecodes of :class:`baozi.Array` and :class:`baozi.Value`: the C type each names, how a
value is checked against it, and how it is written in the store."""

from __future__ import annotations

import array
import ctypes
import json
import math
import operator
import struct
from dataclasses import dataclass
from typing import SupportsIndex, cast

__all__ = ["CType", "Item", "ctype_of"]

Item = int | float | str
"""What one element holds: an int, a float, or (typecode ``'u'``) a one-character str."""

_INTEGERS = "bBhHiIlLqQ"


@dataclass(frozen=True)
class CType:
    """A typecode and the machine number it names on this machine."""

    typecode: str
    kind: str
    """A kind of :data:`~baozi.backends.contract.coord.NUMBER_KINDS` (``'i32'``, ``'f64'``...),
    or ``'char'`` for ``'u'``. Two typecodes of one kind (``'l'`` and ``'q'`` on 64-bit Linux)
    name one C type, as ctypes says (``c_longlong is c_long`` there)."""

    @property
    def numeric(self) -> bool:
        return self.kind != "char"

    @property
    def zero(self) -> Item:
        """What an element holds before anything is written to it, as in a new ctypes array."""
        return "\x00" if self.kind == "char" else 0.0 if self.kind[0] == "f" else 0

    def bounds(self) -> tuple[int, int]:
        """The least and greatest value of an integer typecode."""
        bits = int(self.kind[1:])
        if self.kind[0] == "i":
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return 0, 2**bits - 1

    def describe(self) -> str:
        """The typecode and what it holds, for error messages."""
        if self.kind == "char":
            return "typecode 'u' (one-character str)"
        if self.kind[0] == "f":
            return f"typecode {self.typecode!r} ({'float32' if self.kind == 'f32' else 'float64'})"
        low, high = self.bounds()
        return f"typecode {self.typecode!r} ({self.kind}: {low} to {high})"

    def check(self, value: object) -> Item:
        """``value`` as this type holds it; TypeError for the wrong type, OverflowError for a
        number out of range (where ctypes would wrap it silently), ValueError for a float that is
        not finite."""
        if self.kind == "char":
            if not isinstance(value, str) or len(value) != 1:
                raise TypeError(f"{self.describe()} holds one-character strs, not {_shown(value)}")
            return value
        if self.kind[0] == "f":
            return self._float(value)
        if isinstance(value, (float, str, bytes)) or not hasattr(type(value), "__index__"):
            raise TypeError(f"{self.describe()} holds ints, not {_shown(value)}")
        number = operator.index(cast(SupportsIndex, value))
        low, high = self.bounds()
        if not low <= number <= high:
            raise OverflowError(
                f"{number} is out of range for {self.describe()}: baozi refuses it where "
                f"multiprocessing's ctypes would wrap it silently"
            )
        return number

    def _float(self, value: object) -> float:
        if isinstance(value, (str, bytes)) or not hasattr(type(value), "__float__"):
            raise TypeError(f"{self.describe()} holds floats, not {_shown(value)}")
        number = float(value)  # type: ignore[arg-type]  # an int past a double: OverflowError
        if not math.isfinite(number):
            raise ValueError(f"{self.describe()} holds finite numbers in baozi, not {number!r}")
        if self.kind == "f32":
            try:  # rounded to single precision, as ctypes stores a c_float
                (number,) = struct.unpack("<f", struct.pack("<f", number))
            except OverflowError:
                raise OverflowError(
                    f"{value!r} is out of range for {self.describe()} (at most about 3.4e38)"
                ) from None
        return number

    def check_amount(self, amount: object) -> int | float:
        """An amount that ``add`` can add to an element of this type."""
        if self.kind == "char":
            raise TypeError(f"{self.describe()} holds characters: add() needs a number type")
        if self.kind[0] == "f":
            if isinstance(amount, (str, bytes)) or not hasattr(type(amount), "__float__"):
                raise TypeError(f"add() to {self.describe()} takes a number, not {_shown(amount)}")
            number = float(amount)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise ValueError(f"add() takes a finite number, not {number!r}")
            return number
        if isinstance(amount, (float, str, bytes)) or not hasattr(type(amount), "__index__"):
            raise TypeError(f"add() to {self.describe()} takes an int, not {_shown(amount)}")
        return operator.index(cast(SupportsIndex, amount))

    def encode(self, value: Item) -> bytes:
        return json.dumps(value).encode()

    def decode(self, raw: bytes | None) -> Item:
        if raw is None:
            return self.zero
        value = json.loads(raw)
        if self.kind == "char":
            return str(value)
        return float(value) if self.kind[0] == "f" else int(value)


def _shown(value: object) -> str:
    return f"{type(value).__name__} ({value!r})"


def _kind(typecode: str) -> str:
    if typecode == "u":
        return "char"
    if typecode in "fd":
        return "f32" if typecode == "f" else "f64"
    bits = 8 * array.array(typecode).itemsize
    return f"{'i' if typecode.islower() else 'u'}{bits}"


TYPECODES = "bBhHiIlLqQfdu"
"""The typecodes of the array module that baozi keeps."""


def ctype_of(typecode_or_type: object) -> CType:
    """The :class:`CType` for an array-module typecode, or for a ctypes type as multiprocessing
    takes it (``ctypes.c_int`` for ``'i'``)."""
    code = typecode_or_type
    if isinstance(code, type) and issubclass(code, ctypes._SimpleCData):
        named, code = code.__name__, getattr(code, "_type_", None)
        if code not in tuple(TYPECODES):
            raise TypeError(
                f"ctypes.{named} has no typecode baozi keeps: use a type of "
                f"c_byte, c_ubyte, c_short, c_ushort, c_int, c_uint, c_long, c_ulong, "
                f"c_longlong, c_ulonglong, c_float, c_double or c_wchar"
            )
    if not isinstance(code, str) or len(code) != 1 or code not in TYPECODES:
        error = ValueError if isinstance(code, str) else TypeError  # as the array module does
        raise error(
            f"a typecode is one of {', '.join(repr(c) for c in TYPECODES)} (the array module's) "
            f"or a matching ctypes type, not {typecode_or_type!r}"
        )
    return CType(code, _kind(code))
