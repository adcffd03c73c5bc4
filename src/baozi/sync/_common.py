"""What the coordination primitives share: their handle on the store, the checks of their names
and ttls, this process's name, and the wait until an attempt succeeds."""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from .._process import current_pid
from ..backends import open_store, resolve_url
from ..backends.base import Store

_IDLE = 5.0  # a waiter looks again at least this often, whatever it is told


class Owner(Protocol):
    """Where a primitive lives: an App, or a handle on a store URL."""

    url: str

    @property
    def store(self) -> Store: ...


class Opened:
    """A store URL and this process's handle on it (re-opened after a fork)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self._pid = 0
        self._lock = threading.Lock()
        open_store(url).close()  # a bad URL fails here

    @property
    def store(self) -> Store:
        if self._store is None or self._pid != current_pid():
            with self._lock:
                if self._store is None or self._pid != current_pid():
                    self._store, self._pid = open_store(self.url), current_pid()
        return self._store

    def close(self) -> None:
        if self._store is not None and self._pid == current_pid():
            self._store.close()
        self._store = None


_shared: dict[str, Opened] = {}
_shared_lock = threading.Lock()


def shared_owner(url: str | None) -> Opened:
    """The handle that every lock, semaphore, event and condition made without an App uses on
    the store at ``url`` (default: see :func:`baozi.backends.resolve_url`), one per URL, so that
    making a handle costs no connection."""
    url = resolve_url(url)
    owner = _shared.get(url)
    if owner is None:
        with _shared_lock:
            owner = _shared.get(url)
            if owner is None:
                owner = _shared[url] = Opened(url)
    return owner


def check_sync_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} name must be a non-empty str, not {name!r}")
    return name


def check_ttl(ttl: object) -> float:
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not math.isfinite(ttl)
        or not 0.01 <= ttl <= 86400 * 365
    ):
        raise ValueError(
            f"ttl must be a number of seconds from 0.01 to a year, not {ttl!r}: a holder that "
            f"dies keeps its hold this long"
        )
    return float(ttl)


def _new_token() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_token = _new_token()


def process_token() -> str:
    """A name for this process, unique across machines and forks."""
    return _token


def _forked() -> None:
    # A forked child is another holder than its parent; a thread may have held the lock.
    global _token, _shared_lock
    _token, _shared_lock = _new_token(), threading.Lock()


os.register_at_fork(after_in_child=_forked)


def wait_for(
    store: Store, attempt: Callable[[], tuple[bool, float | None]], timeout: float | None
) -> bool:
    """Call ``attempt`` until it succeeds or ``timeout`` seconds pass (None: forever). Between
    attempts sleep until the store changes, or as long as the attempt says (when something runs
    out on its own, such as a dead holder's ttl)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        token = store.change_token()  # before the attempt: a change after it wakes the wait
        ok, hint = attempt()
        if ok:
            return True
        wait = _IDLE if hint is None else min(_IDLE, hint + 0.001)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = min(wait, left)
        store.wait_for_change(token, wait)
