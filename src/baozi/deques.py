"""Deque: the interface of ``collections.deque``, kept in a store and shared by every handle."""

from __future__ import annotations

import collections
import operator
import sys
from collections.abc import Callable, Iterable, Iterator
from types import GenericAlias
from typing import Any, cast

from ._names import check_name
from ._outage import shown_url
from ._waiting import check_timeout, wait_until
from .backends import is_interop, open_store
from .backends.base import Item
from .errors import Full, NotSupported, UndecodableItem
from .serialize import Serializer, get_serializer

__all__ = ["Deque"]


_NAMESPACE = "deque:"  # deques and queues of the same name are different things

Plan = tuple[int, int, list[bytes], int] | None
"""A change worked out from a snapshot: (index, delete, payloads, how many of the snapshot's
first items must still be there, unchanged); None when there is nothing to change."""


def _is_in(x: Any, value: Any) -> bool:
    return value is x or bool(value == x)  # as collections.deque compares: the item on the left


def _position(index: Any) -> int:
    if not hasattr(type(index), "__index__"):
        raise TypeError(f"sequence index must be integer, not {type(index).__name__!r}")
    at: int = operator.index(index)
    if not -sys.maxsize - 1 <= at <= sys.maxsize:
        raise IndexError(f"cannot fit {type(index).__name__!r} into an index-sized integer")
    if not -(2**62) <= at < 2**62:  # past any deque a store can hold, and any SQL LIMIT
        raise IndexError("deque index out of range")
    return at


class Deque:
    """A double-ended queue in a store, with every method and operator of ``collections.deque``.

    ``maxlen`` works as in ``collections.deque``: appending to a full deque drops items from the
    other end, and ``insert`` into a full one raises IndexError. ``pop``/``popleft`` can wait for
    an item (``block``, ``timeout``). Each call is one atomic store step: a read is one snapshot
    (iteration, ``in``, ``count``, ``index``, comparisons, ``repr``); a write is one push, pop,
    rotation or splice. ``remove``, ``reverse`` and ``*=`` read a snapshot and apply their change
    only if the deque still starts as the snapshot did, else read again.

    ``copy()``, ``+`` and ``*`` return an in-memory ``collections.deque`` (with this maxlen);
    ``+=``, ``*=`` and the other methods change the deque in the store. ``==`` compares contents
    with a ``Deque``, a ``collections.deque`` or a list (unlike ``collections.deque``, which is
    never equal to a list); ``<``, ``<=``, ``>``, ``>=`` compare with deques of either kind.
    Deques are unhashable. ``rotate(n)`` moves at most half the items, ``insert`` and ``del d[i]``
    move the items on the nearer side, as ``collections.deque`` does.

    Deques have names of their own: ``Deque("x")`` and ``Queue("x")`` do not share items.
    """

    __hash__ = None  # type: ignore[assignment]
    __class_getitem__: classmethod[Any, Any, GenericAlias] = classmethod(GenericAlias)  # Deque[int]

    def __init__(
        self,
        name: str = "default",
        *,
        url: str | None = None,
        maxlen: int | None = None,
        serializer: str | Serializer = "json",
    ) -> None:
        check_name(name, "deque")
        if maxlen is not None and (
            isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 0
        ):
            raise ValueError(f"maxlen must be None or a non-negative int, not {maxlen!r}")
        self.name = name
        self._key = _NAMESPACE + name
        self._codec = get_serializer(serializer)
        if is_interop(url):
            raise NotSupported(
                "a Deque",
                shown_url(url or ""),
                "RabbitMQ's queues are FIFO only: use baozi.Queue there, or a store (sqlite://, "
                "redis://, postgresql://) for a Deque",
            )
        self._store = open_store(url)
        self.url = self._store.url
        # Like a queue's maxsize, maxlen belongs to the deque: recorded when given, else adopted.
        try:
            self._store.require("lifo")  # appendleft, pop: both ends
            if maxlen is not None:
                self._store.set_queue_options(self._key, maxlen=maxlen)
                self._maxlen: int | None = maxlen
            else:
                self._maxlen = self._store.queue_options(self._key).get("maxlen")
        except BaseException:
            self._store.close()
            raise

    @property
    def maxlen(self) -> int | None:
        """The most items the deque holds, or None (read-only, as in ``collections.deque``)."""
        return self._maxlen

    # -- both ends -------------------------------------------------------------------------------

    def _push(self, values: Iterable[Any], front: bool) -> None:
        payloads = [self._codec.dumps(v) for v in values]
        if payloads:
            self._store.push(self._key, payloads, front=front, maxlen=self._maxlen)

    def append(self, x: Any) -> None:
        self._push((x,), front=False)

    def appendleft(self, x: Any) -> None:
        self._push((x,), front=True)

    def extend(self, iterable: Iterable[Any]) -> None:
        """Append every item, in one transaction."""
        self._push(iterable, front=False)

    def extendleft(self, iterable: Iterable[Any]) -> None:
        """Append every item to the left, one after another (so their order ends up reversed)."""
        self._push(iterable, front=True)

    def _pop(self, back: bool, block: bool, timeout: float | None) -> Any:
        timeout = check_timeout(timeout) if block else None
        items = wait_until(
            self._store,
            self._key,
            lambda: self._store.pop(self._key, 1, back=back) or None,
            block,
            timeout,
        )
        if items is None:
            raise IndexError(f"pop from an empty deque {self.name!r}")
        try:
            return self._codec.loads(items[0].payload)
        except Exception as exc:  # another serializer wrote it: put it back where it was
            self._store.push(self._key, [items[0].payload], front=not back)
            raise UndecodableItem(
                f"the item at the {'right' if back else 'left'} end of deque {self.name!r} cannot "
                f"be read with serializer {self._codec.name!r} ({type(exc).__name__}: {exc}); it "
                f"was left in place"
            ) from exc

    def pop(self, block: bool = False, timeout: float | None = None) -> Any:
        """Remove and return the rightmost item; with ``block``, wait up to ``timeout`` for one."""
        return self._pop(True, block, timeout)

    def popleft(self, block: bool = False, timeout: float | None = None) -> Any:
        """Remove and return the leftmost item; with ``block``, wait up to ``timeout`` for one."""
        return self._pop(False, block, timeout)

    def clear(self) -> None:
        self._store.clear(self._key)

    # -- anywhere --------------------------------------------------------------------------------

    def _snapshot(self) -> list[Item]:
        return self._store.snapshot(self._key)

    def _values(self) -> list[Any]:
        return [self._codec.loads(item.payload) for item in self._snapshot()]

    def _apply(self, plan: Callable[[list[Item]], Plan], *, bounded: bool = False) -> None:
        """Work a change out from a snapshot and make it if the snapshot's first items are still
        there; else (someone changed the deque meanwhile) read again and retry. A ``bounded``
        change is refused past maxlen (only items pushed since the snapshot can take it there),
        and retried."""
        maxlen = self._maxlen if bounded else None
        while True:
            items = self._snapshot()
            step = plan(items)
            if step is None:
                return
            index, delete, payloads, prefix = step
            expect = [item.id for item in items[:prefix]]
            try:
                done = self._store.splice(
                    self._key, index, delete, payloads, expect=expect, maxlen=maxlen
                )
            except Full:  # grown at the back since the snapshot
                continue
            if done is not None:
                return

    def rotate(self, n: int = 1) -> None:
        """Rotate ``n`` steps to the right (to the left if negative), moving at most half the items."""
        self._store.rotate(self._key, operator.index(n))

    def insert(self, i: int, x: Any) -> None:
        """Insert ``x`` before position ``i`` (clamped as ``list.insert`` does)."""
        i = operator.index(i)
        payload = self._codec.dumps(x)
        try:
            self._store.splice(self._key, i, 0, [payload], clamp=True, maxlen=self._maxlen)
        except Full:
            raise IndexError("deque already at its maximum size") from None

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value``; ValueError if there is none."""

        def plan(items: list[Item]) -> Plan:
            for i, item in enumerate(items):
                if _is_in(value, self._codec.loads(item.payload)):
                    return i, 1, [], i + 1
            raise ValueError(f"{value!r} is not in deque")

        self._apply(plan)

    def reverse(self) -> None:
        """Reverse the items in place."""

        def plan(items: list[Item]) -> Plan:
            if len(items) < 2:
                return None
            return 0, len(items), [item.payload for item in reversed(items)], len(items)

        self._apply(plan)

    def count(self, value: Any) -> int:
        return sum(_is_in(value, v) for v in self._values())

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        """The position of the first item equal to ``value`` in [start, stop); ValueError if none."""
        start, stop = _slice_index(start), _slice_index(stop)
        values = self._values()
        start, stop, _ = slice(start, stop).indices(len(values))
        for i in range(start, stop):
            if _is_in(value, values[i]):
                return i
        raise ValueError(f"{value!r} is not in deque")

    def __len__(self) -> int:
        return self._store.counts(self._key).ready

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index: int) -> Any:
        index = _position(index)
        try:
            item = self._store.peek(self._key, index)
        except IndexError:
            raise IndexError("deque index out of range") from None
        return self._codec.loads(item.payload)

    def __setitem__(self, index: int, value: Any) -> None:
        index = _position(index)
        payload = self._codec.dumps(value)
        try:
            self._store.splice(self._key, index, 1, [payload])
        except IndexError:
            raise IndexError("deque index out of range") from None

    def __delitem__(self, index: int) -> None:
        index = _position(index)
        try:
            self._store.splice(self._key, index, 1)
        except IndexError:
            raise IndexError("deque index out of range") from None

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot taken when iteration starts."""
        return iter(self._values())

    def __reversed__(self) -> Iterator[Any]:
        return iter(self._values()[::-1])

    def __contains__(self, value: object) -> bool:
        return any(_is_in(value, v) for v in self._values())

    # -- copies and operators --------------------------------------------------------------------

    def copy(self) -> collections.deque[Any]:
        """A ``collections.deque`` holding a snapshot of the items, with this maxlen."""
        return collections.deque(self._values(), self._maxlen)

    __copy__ = copy

    def __add__(self, other: object) -> collections.deque[Any]:
        if not isinstance(other, (collections.deque, Deque)):
            return NotImplemented
        out = self.copy()
        out.extend(other)
        return out

    def __mul__(self, n: int) -> collections.deque[Any]:
        if not hasattr(type(n), "__index__"):
            return NotImplemented
        out = self.copy()
        out *= n
        return out

    __rmul__ = __mul__

    def __iadd__(self, other: Iterable[Any]) -> Deque:  # type: ignore[misc]
        self.extend(other)
        return self

    def __imul__(self, n: int) -> Deque:
        if not hasattr(type(n), "__index__"):
            return NotImplemented
        times = operator.index(n)
        maxlen = self._maxlen

        def plan(items: list[Item]) -> Plan:
            size = len(items)
            if size == 0 or times == 1:
                return None
            if times <= 0:
                return 0, size, [], size
            payloads = [item.payload for item in items]
            total = size * times
            if maxlen is None or total <= maxlen:
                return size, 0, payloads * (times - 1), size
            skip = total - maxlen  # the repeats keep their last maxlen items, as deque's do
            return 0, size, [payloads[(skip + j) % size] for j in range(maxlen)], size

        self._apply(plan, bounded=True)
        return self

    def _other_values(self, other: object) -> list[Any] | None:
        if isinstance(other, Deque):
            return other._values()
        if isinstance(other, collections.deque):
            return list(other)
        return None

    def __eq__(self, other: object) -> bool:
        values = list(other) if isinstance(other, list) else self._other_values(other)
        if values is None:
            return NotImplemented
        return self._values() == values

    def _order(self, other: object, op: Callable[[Any, Any], bool]) -> bool:
        values = self._other_values(other)
        if values is None:
            return cast(bool, NotImplemented)
        return op(self._values(), values)

    def __lt__(self, other: object) -> bool:
        return self._order(other, operator.lt)

    def __le__(self, other: object) -> bool:
        return self._order(other, operator.le)

    def __gt__(self, other: object) -> bool:
        return self._order(other, operator.gt)

    def __ge__(self, other: object) -> bool:
        return self._order(other, operator.ge)

    def __repr__(self) -> str:
        items = ", ".join(repr(x) for x in self)
        maxlen = "" if self._maxlen is None else f", maxlen={self._maxlen}"
        return f"{type(self).__name__}({self.name!r}, [{items}]{maxlen})"

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Deque:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _slice_index(value: Any) -> int:
    if not hasattr(type(value), "__index__"):
        raise TypeError("slice indices must be integers or have an __index__ method")
    return operator.index(value)
