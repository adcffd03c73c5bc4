"""baozi: Python's queues, made durable and shared by threads, processes and machines."""

from importlib.metadata import PackageNotFoundError, version

from .deques import Deque
from .errors import BaoziError, Empty, Full, NotABaoziStore, StoreError, StoreUnavailable
from .queues import LifoQueue, PriorityQueue, Queue

try:
    __version__ = version("baozi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BaoziError",
    "Deque",
    "Empty",
    "Full",
    "LifoQueue",
    "NotABaoziStore",
    "PriorityQueue",
    "Queue",
    "StoreError",
    "StoreUnavailable",
    "__version__",
]
