"""What :class:`baozi.Array` and :class:`baozi.Value` are made of: a fixed number of typed cells
in a store, with their type and size recorded beside them when they are first made."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ._common import Opened, Owner
from ._typecodes import CType, Item
from .lock import Lock

__all__ = ["Cells", "Guarded"]


class Cells:
    """``size`` cells of one C type named ``name``: cell ``i`` is key ``str(i)`` of namespace
    ``{what}:{name}`` (a missing key holds the type's zero); the record of the type and size is
    key ``name`` of namespace ``{what}-types``, written once, after the first values."""

    def __init__(
        self,
        what: str,
        name: str,
        ctype: CType,
        size: int,
        initial: Sequence[Item] | None,
        owner: Owner,
    ) -> None:
        self.what, self.name, self.ctype, self.size = what, name, ctype, size
        self.owner = owner
        self.ns = f"{what}:{name}"
        self._types_ns = f"{what}-types"
        self.lock = Lock(self.ns, _owner=owner)
        self._open(initial)

    def _open(self, initial: Sequence[Item] | None) -> None:
        store = self.owner.store
        want = {"typecode": self.ctype.typecode, "kind": self.ctype.kind, "size": self.size}
        held = store.kv_get(self._types_ns, self.name)
        if held is None:
            # Made under its lock, so that no one sees it half made nor makes it twice; the
            # others wait for the lock only while there is no record.
            with self.lock:
                held = store.kv_get(self._types_ns, self.name)
                if held is None:
                    store.kv_clear(self.ns)  # values left by a maker that died half way
                    zero = self.ctype.encode(self.ctype.zero)
                    for i, value in enumerate(initial or ()):
                        if self.ctype.encode(value) != zero:  # -0.0 is written: it is not 0.0
                            store.kv_set(self.ns, str(i), self.ctype.encode(value))
                    store.kv_set(self._types_ns, self.name, json.dumps(want).encode())
                    return
        self._check(held)

    def _check(self, held: bytes) -> None:
        try:
            record = json.loads(held)
            typecode, kind, size = record["typecode"], record["kind"], record["size"]
        except (ValueError, TypeError, KeyError):
            raise ValueError(
                f"baozi.{self.what.title()} {self.name!r}: the store's record of its type is "
                f"unreadable ({held[:80]!r})"
            ) from None
        if kind == self.ctype.kind and size == self.size:
            return
        sized = self.what == "array"
        raise ValueError(
            f"baozi.{self.what.title()} {self.name!r} is stored with typecode {typecode!r} "
            f"({kind})" + (f" and size {size}" if sized else "") + ": it cannot be opened with "
            f"typecode {self.ctype.typecode!r} ({self.ctype.kind})"
            + (f" and size {self.size}" if sized else "")
        )

    def check(self, i: int, value: object) -> Item:
        """``value`` as cell ``i`` would hold it; the error of a bad one names the cell."""
        try:
            return self.ctype.check(value)
        except (TypeError, OverflowError, ValueError) as exc:
            raise type(exc)(f"{self.where(i)}: {exc}") from None

    def get(self, i: int) -> Item:
        return self.ctype.decode(self.owner.store.kv_get(self.ns, str(i)))

    def set(self, i: int, value: Item) -> None:
        self.owner.store.kv_set(self.ns, str(i), self.ctype.encode(value))

    def add(self, i: int, amount: int | float) -> int | float:
        """Add to cell ``i`` in one step in the store; return the sum."""
        try:
            return self.owner.store.kv_incr_as(self.ns, str(i), amount, self.ctype.kind)
        except OverflowError:
            raise OverflowError(
                f"adding {amount!r} to {self.where(i)} goes out of range for "
                f"{self.ctype.describe()}; nothing was changed"
            ) from None

    def snapshot(self) -> list[Item]:
        """Every cell, read at one moment."""
        values = [self.ctype.zero] * self.size
        for key, raw in self.owner.store.kv_items(self.ns).items():
            if key.isdigit() and int(key) < self.size:
                values[int(key)] = self.ctype.decode(raw)
        return values

    def where(self, i: int) -> str:
        """A cell, as error messages name it."""
        if self.what == "array":
            return f"baozi.Array {self.name!r}[{i}]"
        return f"baozi.Value {self.name!r}"


class Guarded:
    """What :class:`~baozi.Array` and :class:`~baozi.Value` share: their lock, taken as
    ``multiprocessing``'s synchronized wrappers take theirs, and letting go of the handle."""

    _cells: Cells

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        return self._cells.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._cells.lock.release()

    def __enter__(self) -> bool:
        return self._cells.lock.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._cells.lock.__exit__(*exc_info)

    def close(self) -> None:
        """Let go of this handle's connection (what it holds stays in the store)."""
        if isinstance(self._cells.owner, Opened):
            self._cells.owner.close()
