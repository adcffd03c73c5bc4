"""The coordination part of the store contract: small atomic steps that locks, semaphores,
events, conditions, shared dicts, rate limits and schedules are built on (see baozi.sync).

Writes that can end someone's wait (a slot freed, a value set or removed) wake
:meth:`~baozi.backends.contract.queues.QueueStore.wait_for_change` waiters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

__all__ = ["NUMBER_KINDS", "CoordStore"]

NUMBER_KINDS = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64")
"""The machine numbers :meth:`CoordStore.kv_incr_as` keeps: signed (``i``) and unsigned (``u``)
integers of 8 to 64 bits, and IEEE floats of single (``f32``) and double (``f64``) precision."""


class CoordStore(ABC):
    """Key-value namespaces, slots with holders and time limits, and rate limits. Every method
    is atomic."""

    @abstractmethod
    def kv_get(self, ns: str, key: str) -> bytes | None:
        """The value stored under ``key`` in namespace ``ns``, or None."""

    @abstractmethod
    def kv_items(self, ns: str) -> dict[str, bytes]:
        """Every key and value of the namespace, as of one moment."""

    @abstractmethod
    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing what was there."""

    @abstractmethod
    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        """Store ``value`` unless the key holds one; return the value the key now holds."""

    @abstractmethod
    def kv_delete(self, ns: str, key: str) -> bytes | None:
        """Remove the key; return the value it held, or None when there was none."""

    @abstractmethod
    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        """Compare and set: if the key holds ``expected`` (None: holds nothing), store ``value``
        (None: remove the key) and return True; else change nothing and return False."""

    @abstractmethod
    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        """Add ``amount`` to the number stored under the key as JSON text (a missing key counts as
        0) and return the sum. Raises TypeError, changing nothing, when the key holds something
        other than a number."""

    @abstractmethod
    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        """Add ``amount`` to the number stored under the key as JSON text (a missing key counts as
        0), as a machine number of ``kind`` (one of :data:`NUMBER_KINDS`), and return the sum.

        For an integer kind, ``amount`` is an int, and the sum is exact and must lie in the kind's
        range (``i32``: -2**31 to 2**31-1; ``u64``: 0 to 2**64-1). For a float kind, ``amount`` is
        a finite float; the sum is a float, rounded to single precision for ``f32`` (as C rounds
        a ``double`` stored in a ``float``), and must be finite. A sum outside the kind raises
        OverflowError; a key that holds something other than a number of the kind (for an
        integer kind: an integer in its range) raises TypeError. Either way nothing changes."""

    @abstractmethod
    def kv_set_tail(self, ns: str, key: str, head: bytes, tail: bytes) -> None:
        """Store the record ``head + b"\\n" + tail`` under the key -- but when the key holds a
        record already (a value with a newline), keep that record's head (everything before its
        first newline) and replace only what follows with ``tail``, in the same step. ``head``
        holds no newline (ValueError, changing nothing). A record's head names what its tail is
        for (:class:`baozi.Dict` keeps the first key written there), so a later write under
        the same key never changes it."""

    @abstractmethod
    def kv_incr_tail(self, ns: str, key: str, head: bytes, amount: int | float) -> int | float:
        """:meth:`kv_incr` on the tail of a record (see :meth:`kv_set_tail`): add ``amount`` to
        the number the record holds as JSON text after its first newline, keeping its head, and
        return the sum; a missing key is stored as ``head``, a newline and ``amount``. Sums and
        their ranges are :meth:`kv_incr`'s. Raises TypeError, changing nothing, when the key
        holds a value with no newline or a tail other than a number; ValueError when ``head``
        holds a newline."""

    @abstractmethod
    def kv_clear(self, ns: str) -> int:
        """Remove every key of the namespace; return how many."""

    @abstractmethod
    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        """Take one of ``limit`` slots named ``name`` for ``holder`` for ``ttl`` seconds.

        Holders whose time ran out are dropped first. A holder that already has a slot keeps it,
        renewed. A slot kept by :meth:`release_slot` for a waiting job counts as held, and goes
        to the call whose ``claim`` is that job's id, whatever the count. Returns None when
        ``holder`` has a slot, else how many seconds until the first current holder's time runs
        out (when a slot may free without anyone releasing it)."""

    @abstractmethod
    def release_slot(self, name: str, holder: str) -> bool:
        """Give back ``holder``'s slot; False when it held none (or its time ran out). Either way,
        the first job waiting for the slot (see :class:`Outcome`) that is still scheduled becomes
        ready, in the same step; and when this freed a slot, the slot is kept for that job for
        :data:`CLAIM_TTL` seconds (see :meth:`acquire_slot`), so no newer job takes it first."""

    @abstractmethod
    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        """Give these holders' slots ``ttl`` seconds from now; return how many still held one."""

    @abstractmethod
    def slot_holders(self, name: str) -> list[str]:
        """The holders of the slots named ``name`` whose time has not run out."""

    @abstractmethod
    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        """Admit one event of a rate limit of one per ``interval`` seconds (up to ``burst`` at once
        after a quiet spell). Returns 0.0 when admitted (and counts it), else how many seconds
        until the next admission is possible (and counts nothing).

        With a ``ticket``, a refused event is booked instead: it gets the next free time, counted
        now, and the call returns the seconds until then; asked again with the same ticket at (or
        after) that time it is admitted without being counted twice. So events that must wait
        are spread over the free times in the order they asked."""
