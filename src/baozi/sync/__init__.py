"""Locks, semaphores, events, conditions, a shared dict and shared arrays and values for every
process and machine on a store.

These are :mod:`threading`'s and :mod:`multiprocessing`'s ideas with the store as the shared
memory. Each holds nothing of its own but a name: two handles with the same name, in any process,
are the same lock. A blocked ``acquire()`` or ``wait()`` sleeps until the store changes (a release,
a ``set()``, a ``notify()``) and then looks again, so it wakes within the store's change latency,
not at the next tick of a polling loop.

Each takes its name, then keywords: ``Lock(name, *, url=None, ttl=30.0)``; ``app.lock(name)`` and
its siblings make the same on an app's store.

Locks and semaphore slots carry a time to live: a process that dies holding one stops renewing it,
and it frees itself when the ttl runs out. While the holder lives, the process's renewer thread
renews every lock and slot the process holds, every third of its ttl.
"""

from .array import Array
from .condition import Condition
from .event import Event
from .lock import Lock
from .mapping import Dict
from .semaphore import Semaphore
from .value import Value

__all__ = ["Array", "Condition", "Dict", "Event", "Lock", "Semaphore", "Value"]
