"""A change signal shared by every handle on one store inside one process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

# A commit becomes visible a moment after its WAL write -- after the fsync, with durable=fsync --
# so after an event that showed no change yet, it is looked for again, further and further apart
# (while still answering new events at once).
_AFTER_EVENT = (0.001, 0.001, 0.003, 0.008, 0.02, 0.05, 0.1, 0.25)


IDLE_AFTER = 5.0
"""Seconds without a waiter after which a watch with an ``idle()`` method is told so."""


class Watch(Protocol):
    """Something that blocks until the store may have changed (a file event), or a timeout."""

    def wait(self, timeout: float) -> bool:
        """True when woken by an event, False on timeout."""

    def close(self) -> None: ...


class ChangeSignal:
    """A generation counter with a condition; optionally fed by a poller that sees other processes.

    Local writers call :meth:`notify`. For changes made elsewhere, ``probe`` returns a value that
    differs whenever the store changed (SQLite's ``data_version``). While anyone waits, one thread
    checks it: after each event from ``watch`` when there is one (so an idle waiter costs nothing
    and wakes within a millisecond), or else every ``min_interval`` to ``max_interval`` seconds.
    A process has one such thread however many threads wait, and it sleeps while nobody waits.
    """

    def __init__(
        self,
        probe: Callable[[], object] | None = None,
        watch: Watch | None = None,
        min_interval: float = 0.0005,
        max_interval: float = 0.004,
        watch_fallback: float = 0.5,
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._waiters = 0
        self._probe = probe
        self._watch = watch
        self._min = min_interval
        self._max = max_interval
        self._watch_fallback = watch_fallback
        self._poller: threading.Thread | None = None
        self._someone_waits = threading.Event()
        self._listeners: tuple[Callable[[], object], ...] = ()
        self._closed = False
        # Read after the watch exists and before any token is handed out, so the poller never
        # mistakes an older change for the state it started from.
        self._last = probe() if probe is not None else None

    def token(self) -> int:
        return self._generation

    @property
    def waiting(self) -> int:
        """How many threads are waiting, and listeners listening, right now."""
        return self._waiters

    def notify(self) -> None:
        # Safe without the lock: a waiter registers and compares under the lock, so either it sees
        # the new generation or this sees it waiting (the GIL orders these plain reads and writes).
        self._generation += 1
        for callback in self._listeners:
            callback()
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def listen(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` (in the notifying thread: it must be quick) on every change from now
        on, until the returned function is called. A listener counts as a waiter."""
        with self._cond:
            self._listeners = (*self._listeners, callback)
            self._waiting_starts()
        done = False

        def stop() -> None:
            nonlocal done
            with self._cond:
                if done:
                    return
                done = True
                rest = list(self._listeners)
                rest.remove(callback)
                self._listeners = tuple(rest)
                self._waiting_ends()

        return stop

    def _waiting_starts(self) -> None:
        """One more waiter or listener. Holds the lock."""
        self._waiters += 1
        if self._probe is not None and not self._closed:
            self._someone_waits.set()
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll, name="baozi-change-poller", daemon=True
                )
                self._poller.start()

    def _waiting_ends(self) -> None:
        self._waiters -= 1
        if self._waiters == 0 and not self._closed:
            self._someone_waits.clear()

    def wait(self, token: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting_starts()
            try:
                while self._generation == token:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiting_ends()

    def close(self, release: Callable[[], None] = lambda: None) -> None:
        """Stop the poller; ``release`` (closing what ``probe`` and ``watch`` use) runs once the
        poller can no longer touch them: now, or when it next wakes."""
        with self._cond:
            self._closed = True
            self._release = release
            running = self._poller is not None
            self._someone_waits.set()  # wake the poller so it sees the close
        if not running:
            self._finish()

    def _finish(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._release()

    def _poll(self) -> None:
        assert self._probe is not None
        last = self._last
        idle = getattr(self._watch, "idle", None)
        while True:
            if idle is not None and not self._someone_waits.wait(IDLE_AFTER):
                idle()  # nobody has waited for a while: the watch may let go of what it holds
            self._someone_waits.wait()
            interval = self._min
            again: Iterator[float] = iter(())
            wait = self._watch_fallback
            while self._someone_waits.is_set():
                if self._closed:
                    self._finish()
                    return
                if self._watch is None:
                    time.sleep(interval)
                    current = self._probe()
                    interval = self._min if current != last else min(interval * 1.5, self._max)
                else:
                    woke = self._watch.wait(wait)
                    current = self._probe()
                    if current != last:
                        again = iter(())
                    elif woke:
                        again = iter(_AFTER_EVENT)
                    wait = next(again, self._watch_fallback)
                if current != last:
                    last = current
                    self.notify()
