"""Every exception baozi raises, under one root.

::

    BaoziError
    ├── Empty           (also queue.Empty)  nothing to get within the timeout
    ├── Full            (also queue.Full)   no room to put within the timeout
    └── StoreError      the store could not do what was asked
        ├── StoreUnavailable   the store cannot be opened or reached (a bad path, a server down)
        └── NotABaoziStore     the file or database holds something that is not a baozi store

``TypeError`` (an item the serializer refuses) and ``ValueError`` (a bad argument, an unknown URL
scheme) are raised as themselves, at the call site, like the standard library does.
"""

from __future__ import annotations

import queue as _stdlib_queue

__all__ = [
    "BaoziError",
    "Empty",
    "Full",
    "NotABaoziStore",
    "StoreError",
    "StoreUnavailable",
]


class BaoziError(Exception):
    """Root of every exception defined by baozi."""


class Empty(BaoziError, _stdlib_queue.Empty):
    """No item arrived within the timeout; ``except queue.Empty`` catches it too."""


class Full(BaoziError, _stdlib_queue.Full):
    """The queue stayed at its maxsize for the whole timeout; ``except queue.Full`` catches it too."""


class StoreError(BaoziError):
    """The store failed to carry out an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class NotABaoziStore(StoreError):
    """The target exists but holds data that baozi did not write; baozi leaves it untouched."""
