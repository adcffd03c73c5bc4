"""Value: ``multiprocessing.Value`` kept in a store, shared by every process and machine on it."""

from __future__ import annotations

from typing import Any

from ..backends import resolve_url
from ._cells import Cells, Guarded
from ._common import Opened, Owner, check_sync_name
from ._typecodes import ctype_of
from .lock import Lock

__all__ = ["Value"]


class Value(Guarded):
    """One number (or character) of a C type, shared by every process and machine on the store
    and kept across restarts -- the durable ``multiprocessing.Value``.

    ``typecode_or_type`` is as for :class:`baozi.Array`. ``value`` is written when the name is
    first used; opening the name again reads what is there (``value`` is then only checked), and
    another type raises ValueError naming what is stored. Reading and writing ``.value`` are
    atomic, and so is :meth:`add`, which reads and writes in one step; ``v.value -= 1`` is a read
    and then a write, so hold ``get_lock()`` (or ``with v:``) around it when others write too.
    A value of the wrong type raises TypeError, one out of range OverflowError (ctypes would wrap
    it). ``app.value(...)`` makes one on the app's store; ``Value(..., url=...)`` on any store."""

    def __init__(
        self,
        name: str,
        typecode_or_type: Any,
        value: Any = 0,
        *,
        url: str | None = None,
        _owner: Owner | None = None,
    ) -> None:
        self.name = check_sync_name("baozi.Value", name)
        ctype = ctype_of(typecode_or_type)
        if ctype.kind == "char" and value == 0:
            value = ctype.zero  # the default of a 'u' Value, as c_wchar() has it
        initial = ctype.check(value)
        # Its own handle, as a Dict has: close() lets it go.
        owner = _owner if _owner is not None else Opened(resolve_url(url))
        self._cells = Cells("value", name, ctype, 1, [initial], owner)

    @property
    def url(self) -> str:
        return self._cells.owner.url

    @property
    def typecode(self) -> str:
        """The array-module typecode of the value."""
        return self._cells.ctype.typecode

    @property
    def value(self) -> Any:
        """The value now in the store; assigning writes it (checked against the type first)."""
        return self._cells.get(0)

    @value.setter
    def value(self, value: Any) -> None:
        self._cells.set(0, self._cells.check(0, value))

    def add(self, amount: int | float) -> int | float:
        """Add ``amount`` in one step in the store and return the new value: concurrent callers
        never lose an update. OverflowError, changing nothing, when the sum is out of range."""
        return self._cells.add(0, self._cells.ctype.check_amount(amount))

    def get_lock(self) -> Lock:
        """The :class:`baozi.Lock` of this value, the same for every handle on it in any
        process."""
        return self._cells.lock

    def get_obj(self) -> Any:
        """The value now in the store (multiprocessing returns its ctypes object)."""
        return self.value

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process (as multiprocessing's args), it opens the same value there.
        return (_reopen, (self.name, self.typecode, self.url))

    def __repr__(self) -> str:
        return f"<baozi.Value {self.name!r} of {self._cells.ctype.describe()} on {self.url}>"


def _reopen(name: str, typecode: str, url: str) -> Value:
    # The value given is only checked when the name exists, and it does: the sender made it.
    return Value(name, typecode, url=url)
