"""A change signal shared by every handle on one store inside one process."""

from __future__ import annotations

import threading
import time
from typing import Callable


class ChangeSignal:
    """A generation counter with a condition; optionally fed by a poller that sees other processes.

    Local writers call :meth:`notify`. For changes made elsewhere, ``probe`` returns a value that
    differs whenever the store changed (SQLite's ``data_version``); while anyone waits, one thread
    calls it with a short backoff (``min_interval`` to ``max_interval`` seconds) and notifies on a
    change. So a process has one poller however many threads wait, and none while nobody waits.
    """

    def __init__(
        self,
        probe: Callable[[], object] | None = None,
        min_interval: float = 0.0005,
        max_interval: float = 0.004,
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._waiters = 0
        self._probe = probe
        self._min = min_interval
        self._max = max_interval
        self._poller: threading.Thread | None = None
        self._someone_waits = threading.Event()
        # Read before any token can be handed out, so the poller never mistakes an older change
        # for the state it started from.
        self._last = probe() if probe is not None else None

    def token(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, token: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            if self._probe is not None:
                self._someone_waits.set()
                if self._poller is None:
                    self._poller = threading.Thread(
                        target=self._poll, name="baozi-change-poller", daemon=True
                    )
                    self._poller.start()
            try:
                while self._generation == token:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1
                if self._waiters == 0:
                    self._someone_waits.clear()

    def _poll(self) -> None:
        # The poller lives as long as the process and keeps ``last`` across idle spells, so a change
        # made after any waiter took its token is always seen; at worst a waiter wakes for nothing.
        assert self._probe is not None
        last = self._last
        while True:
            self._someone_waits.wait()
            interval = self._min
            while self._someone_waits.is_set():
                time.sleep(interval)
                current = self._probe()
                if current != last:
                    last = current
                    interval = self._min
                    self.notify()
                else:
                    interval = min(interval * 1.5, self._max)
