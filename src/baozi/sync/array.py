"""Array: ``multiprocessing.Array`` kept in a store, shared by every process and machine on it."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import Any

from ..backends import resolve_url
from ._cells import Cells, Guarded
from ._common import Opened, Owner, check_sync_name
from ._typecodes import Item, ctype_of
from .lock import Lock

__all__ = ["Array"]


class Array(Guarded):
    """A fixed-size array of one C type, shared by every process and machine on the store and
    kept across restarts -- the durable ``multiprocessing.Array``.

    ``typecode_or_type`` is an array-module typecode (``'b'``, ``'B'``, ``'h'``, ``'H'``, ``'i'``,
    ``'I'``, ``'l'``, ``'L'``, ``'q'``, ``'Q'``, ``'f'``, ``'d'``, ``'u'``) or the matching ctypes
    type; ``size_or_initializer`` is a length (every element starts at zero) or the first values.
    The type and size are recorded in the store when the name is first used; opening the name
    again reads the values there (the initializer is then only checked), and another type or size
    raises ValueError naming what is stored.

    Indexing, negative indexes, slices (read and assign), ``len`` and iteration work as on
    multiprocessing's array; a slice or an iteration reads every element at one moment. Each
    element's read, write and :meth:`add` is atomic. A value of the wrong type raises TypeError
    and one out of the type's range raises OverflowError, where ctypes would wrap it silently.
    ``get_lock()`` (or ``with arr:``) is a :class:`baozi.Lock` for steps of several elements.
    ``app.array(...)`` makes one on the app's store; ``Array(..., url=...)`` on any store."""

    def __init__(
        self,
        name: str,
        typecode_or_type: Any,
        size_or_initializer: int | Iterable[Any],
        *,
        url: str | None = None,
        _owner: Owner | None = None,
    ) -> None:
        self.name = check_sync_name("baozi.Array", name)
        ctype = ctype_of(typecode_or_type)
        initial: list[Item] | None = None
        if isinstance(size_or_initializer, int) and not isinstance(size_or_initializer, bool):
            size = size_or_initializer
            if size < 0:
                raise ValueError(f"an Array's size must be 0 or more, not {size}")
        elif isinstance(size_or_initializer, Iterable):
            initial = []
            for i, value in enumerate(size_or_initializer):
                try:
                    initial.append(ctype.check(value))
                except (TypeError, OverflowError, ValueError) as exc:
                    raise type(exc)(f"item {i} of the initializer: {exc}") from None
            size = len(initial)
        else:
            raise TypeError(
                f"size_or_initializer is a size (int) or a sequence of values, not "
                f"{type(size_or_initializer).__name__} ({size_or_initializer!r})"
            )
        # Its own handle, as a Dict has: close() lets it go.
        owner = _owner if _owner is not None else Opened(resolve_url(url))
        self._cells = Cells("array", name, ctype, size, initial, owner)

    @property
    def url(self) -> str:
        return self._cells.owner.url

    @property
    def typecode(self) -> str:
        """The array-module typecode of the elements."""
        return self._cells.ctype.typecode

    def __len__(self) -> int:
        return self._cells.size

    def _index(self, index: Any) -> int:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(
                f"baozi.Array indices must be integers or slices, not {type(index).__name__}"
            ) from None
        size = self._cells.size
        if not -size <= i < size:
            raise IndexError(f"index {i} is out of range for baozi.Array {self.name!r} of {size}")
        return i + size if i < 0 else i

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            values = self._cells.snapshot()[index]
            # A slice of a c_wchar array is a str, as ctypes gives it.
            return "".join(map(str, values)) if self._cells.ctype.kind == "char" else values
        return self._cells.get(self._index(index))

    def __setitem__(self, index: int | slice, value: Any) -> None:
        ctype = self._cells.ctype
        if not isinstance(index, slice):
            i = self._index(index)
            self._cells.set(i, self._cells.check(i, value))
            return
        places = range(*index.indices(self._cells.size))
        if (
            isinstance(value, (str, bytes))
            and ctype.kind != "char"
            or not isinstance(value, Iterable)
        ):
            raise TypeError(f"a slice of baozi.Array is assigned a sequence, not {value!r}")
        values = list(value)
        if len(values) != len(places):
            raise ValueError(
                f"can only assign a sequence of the same size: the slice has {len(places)} "
                f"items, the sequence {len(values)}"
            )
        # Every value checked before the first write.
        checked = [self._cells.check(i, v) for i, v in zip(places, values, strict=True)]
        for i, v in zip(places, checked, strict=True):
            self._cells.set(i, v)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cells.snapshot())

    def add(self, index: int, amount: int | float) -> int | float:
        """Add ``amount`` to element ``index`` in one step in the store and return the new value:
        concurrent callers never lose an update. OverflowError, changing nothing, when the sum is
        out of the type's range."""
        checked = self._cells.ctype.check_amount(amount)
        return self._cells.add(self._index(index), checked)

    def get_lock(self) -> Lock:
        """The :class:`baozi.Lock` of this array, the same for every handle on it in any process:
        hold it for a step of several elements."""
        return self._cells.lock

    def get_obj(self) -> list[Any]:
        """The elements as a list, read at one moment (multiprocessing returns its ctypes array)."""
        return self._cells.snapshot()

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process (as multiprocessing's args), it opens the same array there.
        return (_reopen, (self.name, self.typecode, len(self), self.url))

    def __repr__(self) -> str:
        return (
            f"<baozi.Array {self.name!r} of {len(self)} {self._cells.ctype.describe()} "
            f"on {self.url}>"
        )


def _reopen(name: str, typecode: str, size: int, url: str) -> Array:
    return Array(name, typecode, size, url=url)
