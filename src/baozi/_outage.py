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

__all__ = ["Outage", "log_failure", "outage", "shown_url"]


def shown_url(url: str) -> str:
    """The store URL without its password, fit for a log or a message."""
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


def log_failure(logger: logging.Logger, exc: Exception, message: str, *args: object) -> None:
    """Log a failed call: one line for a store error (unreachable, or what it refused: the message
    says which), else the whole traceback."""
    if isinstance(exc, StoreError):
        logger.warning(message + ": %s", *args, exc)
    else:
        logger.exception(message, *args)


class Outage:
    """One store's state of health in this process, shared by everything that calls it.

    Each caller names itself (``who``: "worker w1, taking jobs"). The outage starts when the first
    caller fails and ends when every caller that failed has succeeded again, so a part that keeps
    working (a heartbeat) cannot declare the end while another (a subscription) still fails."""

    def __init__(self, url: str) -> None:
        self.where = shown_url(url)
        self._lock = threading.Lock()
        self._failing: set[str] = set()  # the callers whose last call failed
        self._since = 0.0  # monotonic time of the first failure of this outage

    @property
    def down(self) -> bool:
        return bool(self._failing)

    def failed(self, exc: BaseException, who: str) -> None:
        """``who``'s call failed: a WARNING if no other caller is failing, else DEBUG. A failure
        that is no store error is a bug, not an outage: its traceback is logged each time."""
        if not isinstance(exc, (StoreError, ConnectionError, OSError)):
            log.error("%s failed (not the store: a bug); retrying", who, exc_info=exc)
            return
        with self._lock:
            first = not self._failing
            self._failing.add(who)
            if first:
                self._since = time.monotonic()
        if not first:
            log.debug("store %s still failing (%s): %s", self.where, who, exc)
            return
        log.warning(
            "store %s %s (noticed by %s); retrying, and an INFO line will say when it works",
            self.where,
            describe(exc),
            who,
        )

    def ok(self, who: str) -> None:
        """``who``'s call succeeded: an INFO when that ends the outage."""
        if not self._failing:  # the common case, without the lock
            return
        with self._lock:
            ended = who in self._failing and len(self._failing) == 1
            self._failing.discard(who)
        if ended:
            log.info(
                "store %s works again, after %.1fs", self.where, time.monotonic() - self._since
            )

    def withdraw(self, who: str) -> None:
        """``who`` makes no more calls (a worker that stopped): it no longer holds the outage
        open, and the next failure of anyone else is news again."""
        with self._lock:
            self._failing.discard(who)


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
