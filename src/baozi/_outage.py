"""A store outage as the log tells it: one WARNING when its first call fails, one INFO when a call
succeeds again, and nothing louder than DEBUG in between, however many parts of the process (the
worker loop, its lease keeper, a store's listener threads, the web observer) keep retrying."""

from __future__ import annotations

import logging
import os
import threading
import time
from urllib.parse import urlsplit

from .errors import StoreError

log = logging.getLogger("baozi.store")

__all__ = ["Outage", "outage"]


def _shown(url: str) -> str:
    """The store URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def describe(exc: BaseException) -> str:
    """What went wrong, in words that do not blame the server for an error it answered with."""
    if isinstance(exc, ConnectionError):
        return f"unreachable: {exc}"
    if isinstance(exc, StoreError):
        return f"answered with an error: {exc}"
    return f"a call failed: {type(exc).__name__}: {exc}"


class Outage:
    """One store's state of health in this process, shared by everything that calls it."""

    def __init__(self, url: str) -> None:
        self.where = _shown(url)
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic time of the first failure, while down

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, doing: str) -> None:
        """A call failed (``doing`` says who called and what for, "worker w1, taking jobs"): a WARNING if the store was healthy (with
        the traceback when the failure is no store error, which may be a bug), else DEBUG."""
        with self._lock:
            first, self._since = self._since is None, self._since or time.monotonic()
        if not first:
            log.debug("store %s still failing (%s): %s", self.where, doing, exc)
            return
        known = isinstance(exc, (StoreError, ConnectionError))
        log.warning(
            "store %s %s (noticed by %s); retrying, and an INFO line will say when it works",
            self.where,
            describe(exc),
            doing,
            exc_info=None if known else exc,
        )

    def ok(self) -> None:
        """A call succeeded: an INFO when that ends an outage."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info("store %s works again, after %.1fs", self.where, time.monotonic() - since)


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage(url: str) -> Outage:
    """The shared :class:`Outage` of the store at ``url`` in this process."""
    found = _outages.get(url)
    if found is None:
        with _outages_lock:
            found = _outages.setdefault(url, Outage(url))
    return found


def _forked() -> None:
    global _outages_lock
    _outages_lock = threading.Lock()
    _outages.clear()  # a child starts healthy: it has made no call yet


os.register_at_fork(after_in_child=_forked)
