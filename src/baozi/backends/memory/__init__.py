"""``memory://[name]``: queues in this process's memory, shared by every handle with the same URL.

First-class for tests and single-process programs: the same contract as the other stores, minus
durability. Ranks are O(log n) through a sorted list of keys. It has no layout version and no
migrations: nothing it holds outlives the process, so no other version of baozi ever reads it.
"""

from .jobs import MemoryStore

__all__ = ["MemoryStore"]
