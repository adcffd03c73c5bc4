"""The URL monitor: check that every URL answers as expected, thousands at once.

In-process it runs greenlets on geventhttpclient where gevent is installed, else coroutines on
aiohttp's client, in one process or split over processes (:func:`check_split`, ``baozi monitor
-p N``); each client is imported only when used. With ``--via-queue`` each URL is a job for
:func:`check_url`, run by workers anywhere: ``baozi worker baozi.monitor:app -P async`` (or
``-P gevent``). In a gevent-patched process ``check_url`` is a blocking call on geventhttpclient,
fit for greenlets; elsewhere it is a coroutine on aiohttp, which the async pool runs on its loop.
Every failure is a reason in words (refused, DNS, TLS, timeout, redirect, status), never a
traceback.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._check import Check, reason_for
from ._local import check_local, choose
from ._split import Split, check_split
from ._task import TASK, check_url

if TYPE_CHECKING:
    from ..app import App
    from ._aio import check_many, run
    from ._queue import check_via_queue

__all__ = [
    "TASK",
    "Check",
    "Split",
    "app",
    "check_local",
    "check_many",
    "check_split",
    "check_url",
    "check_via_queue",
    "choose",
    "reason_for",
    "run",
]

if TYPE_CHECKING:
    app: App
    """An app whose workers run the monitor's checks: ``baozi worker baozi.monitor:app -P
    async``. Its store is ``BAOZI_URL`` (or the worker's ``--url``). Made on first use: opening
    its store is no part of an in-process run's start-up."""

_made = threading.Lock()


def _app() -> App:
    with _made:
        made = globals().get("app")
        if made is None:
            from ..app import App  # not imported by an in-process run

            made = App(importable=("baozi",))
            made.task(name=TASK)(check_url)
            globals()["app"] = made  # found at once from now on, without this function
        return made


def __getattr__(name: str) -> Any:
    if name == "app":
        return _app()
    # aiohttp's names, imported on first use: a run on greenlets never loads aiohttp.
    if name in ("check_many", "run"):
        from . import _aio

        return getattr(_aio, name)
    # The store's side, imported on first use too: an in-process run needs no app or job.
    if name == "check_via_queue":
        from ._queue import check_via_queue

        return check_via_queue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
