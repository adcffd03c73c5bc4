"""The part of ``queue.Queue``'s interface that every baozi queue builds the same way on its own
``_take``, ``_decode``, ``put``, ``qsize`` and ``close``: the store's queues and RabbitMQ's."""

from __future__ import annotations

from typing import Any, Self


class QueueInterface:
    """``get``, ``get_nowait``, ``get_many``, ``put_nowait``, ``empty``, ``full`` and the
    ``with`` block, on what the queue class provides."""

    maxsize: int

    def _take(self, n: int, block: bool, timeout: float | None, track: bool) -> list[Any]:
        raise NotImplementedError

    def _decode(self, items: list[Any]) -> list[Any]:
        raise NotImplementedError

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        raise NotImplementedError

    def qsize(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

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
