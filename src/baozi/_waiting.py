"""The one wait loop behind every blocking call: try, and if that fails, sleep until the store changes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from .backends.base import Store

T = TypeVar("T")

_IDLE_CAP = 60.0  # even with nothing due, re-check now and then: a clock may have jumped


def check_timeout(timeout: float | None) -> float | None:
    """Validate a stdlib-style timeout: None (forever) or a non-negative number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return float(timeout)


def wait_until(
    store: Store,
    queue: str,
    attempt: Callable[[], T | None],
    block: bool,
    timeout: float | None,
) -> T | None:
    """Call ``attempt`` until it returns something other than None; return that, or None at the
    deadline. Between attempts, sleep until the store changes or a lease or delay in ``queue`` runs
    out, whichever comes first. ``block=False`` makes one attempt."""
    deadline = None if timeout is None else time.monotonic() + timeout
    result = attempt()  # most calls succeed at once, and need no change token
    if result is not None or not block:
        return result
    while True:
        token = store.change_token()  # taken before the attempt, so no change slips between
        result = attempt()
        if result is not None or not block:
            return result
        wait = _IDLE_CAP
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
        due = store.next_due(queue)
        now = time.time()
        if due is not None and due > now:  # one already past is counted by the attempt itself
            wait = min(wait, due - now + 0.001)
        store.wait_for_change(token, wait)
