"""Item ids, made by the client."""

from __future__ import annotations

import itertools
import secrets
import threading

from ..._process import current_pid


class Ids:
    """Item ids made by the client: a random per-process prefix and a counter.

    Made here rather than by the server so that a push retried after a dropped reply can tell
    whether it already went through, instead of adding its items twice.
    """

    def __init__(self) -> None:
        self._pid = -1
        self._lock = threading.Lock()
        self._prefix = ""
        self._count = itertools.count()

    def _renew(self) -> None:
        """A prefix of this process's own (a forked child must not repeat its parent's ids)."""
        with self._lock:
            if self._pid != current_pid():
                self._prefix = secrets.token_hex(8)
                self._count = itertools.count()
                self._pid = current_pid()

    def take(self, n: int) -> list[str]:
        if self._pid != current_pid():
            self._renew()
        # next() on a count is atomic: threads taking ids at once get different numbers.
        prefix, count = self._prefix, self._count
        return [f"{prefix}{next(count):x}" for _ in range(n)]

    def one(self) -> str:
        if self._pid != current_pid():
            self._renew()
        return f"{self._prefix}{next(self._count):x}"


IDS = Ids()
