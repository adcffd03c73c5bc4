"""The part of ``queue.Queue``'s interface that every baozi queue builds the same way on its own
``_take``, ``_decode``, ``put``, ``qsize`` and ``close``: the store's queues and RabbitMQ's."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self


class QueueInterface(ABC):
    """``get``, ``get_nowait``, ``get_many``, ``put_nowait``, ``empty``, ``full`` and the
    ``with`` block, on what the queue class provides."""

    maxsize: int

    @abstractmethod
    def _take(self, n: int, block: bool, timeout: float | None, track: bool) -> list[Any]:
        """Take up to ``n`` items (at least one, waiting up to ``timeout`` when ``block``), owed a
        ``task_done()`` when ``track``; ``queue.Empty`` when none comes."""

    @abstractmethod
    def _decode(self, items: list[Any]) -> list[Any]:
        """The values ``items`` carry, in order; an unreadable one is moved aside (and raises)."""

    @abstractmethod
    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` in the queue, waiting up to ``timeout`` for room when it is full."""

    @abstractmethod
    def qsize(self) -> int:
        """The number of ready items."""

    @abstractmethod
    def close(self) -> None:
        """Let go of the handle; what it got and did not acknowledge goes back."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the head item (held until ``task_done()``)."""
        return self._decode(self._take(1, block, timeout, track=True))[0]

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def get_many(self, n: int, timeout: float | None = None, *, block: bool = True) -> list[Any]:
        """Take up to ``n`` items at once: waits up to ``timeout`` for the first, then takes what
        is ready. Raises ``queue.Empty`` if none comes."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, not {n!r}")
        return self._decode(self._take(n, block, timeout, track=True))

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
