"""Deque: the interface of ``collections.deque``, kept in a store and shared by every handle."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ._names import check_name
from ._waiting import check_timeout, wait_until
from .backends import open_store
from .errors import UndecodableItem
from .serialize import Serializer, get_serializer

__all__ = ["Deque"]


_NAMESPACE = "deque:"  # deques and queues of the same name are different things


class Deque:
    """A double-ended queue in a store. ``maxlen`` works as in ``collections.deque``: appending to a
    full deque drops items from the other end. ``pop``/``popleft`` can wait for an item.

    Deques have names of their own: ``Deque("x")`` and ``Queue("x")`` do not share items.
    """

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
        self._store = open_store(url)
        self.url = self._store.url
        # Like a queue's maxsize, maxlen belongs to the deque: recorded when given, else adopted.
        try:
            self._store.require("lifo")  # appendleft, pop: both ends
            if maxlen is not None:
                self._store.set_queue_options(self._key, maxlen=maxlen)
                self.maxlen: int | None = maxlen
            else:
                self.maxlen = self._store.queue_options(self._key).get("maxlen")
        except BaseException:
            self._store.close()
            raise

    def _push(self, values: Iterable[Any], front: bool) -> None:
        payloads = [self._codec.dumps(v) for v in values]
        if payloads:
            self._store.push(self._key, payloads, front=front, maxlen=self.maxlen)

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

    def __len__(self) -> int:
        return self._store.counts(self._key).ready

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"deque indices must be integers, not {type(index).__qualname__}")
        try:
            item = self._store.peek(self._key, index)
        except IndexError:
            raise IndexError("deque index out of range") from None
        return self._codec.loads(item.payload)

    def __iter__(self) -> Iterator[Any]:
        """Iterate over a snapshot taken when iteration starts."""
        return iter([self._codec.loads(item.payload) for item in self._store.snapshot(self._key)])

    def __repr__(self) -> str:
        items = ", ".join(repr(x) for x in self)
        maxlen = "" if self.maxlen is None else f", maxlen={self.maxlen}"
        return f"{type(self).__name__}({self.name!r}, [{items}]{maxlen})"

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Deque:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
