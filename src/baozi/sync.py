"""Locks, semaphores, events, conditions and a shared dict for every process and machine on a store.

These are :mod:`threading`'s and :mod:`multiprocessing`'s ideas with the store as the shared
memory. Each holds nothing of its own but a name: two handles with the same name, in any process,
are the same lock. A blocked ``acquire()`` or ``wait()`` sleeps until the store changes (a release,
a ``set()``, a ``notify()``) and then looks again, so it wakes within the store's change latency,
not at the next tick of a polling loop.

Locks and semaphore slots carry a time to live: a process that dies holding one stops renewing it,
and it frees itself when the ttl runs out. While the holder lives, one thread per process renews
every lock and slot the process holds, every third of its ttl.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Protocol

from ._process import current_pid
from ._waiting import check_timeout
from .backends import open_store, resolve_url
from .backends.base import Store
from .serialize import get_serializer

__all__ = ["Condition", "Dict", "Event", "Lock", "Semaphore"]

log = logging.getLogger("baozi.sync")

_CODEC = get_serializer("json")
_IDLE = 5.0  # a waiter looks again at least this often, whatever it is told


class _HasStore(Protocol):
    url: str

    @property
    def store(self) -> Store: ...


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} name must be a non-empty str, not {name!r}")
    return name


def _check_ttl(ttl: object) -> float:
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


_proc_token = _new_token()


def _forked() -> None:
    """A forked child holds none of its parent's locks and slots (and a thread may have held one
    of these module locks at the fork)."""
    global _proc_token, _depths_lock, _tokens_lock, _renewers_lock
    _proc_token = _new_token()
    _depths.clear()
    _tokens.clear()
    _renewers.clear()
    _depths_lock, _tokens_lock, _renewers_lock = (
        threading.Lock(),
        threading.Lock(),
        threading.Lock(),
    )


os.register_at_fork(after_in_child=_forked)


def _process_token() -> str:
    """A name for this process, unique across machines and forks."""
    return _proc_token


def _wait_for(
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


class _Renewer:
    """One thread per process that renews every slot the process holds, every third of its ttl."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str, str], tuple[_HasStore, float]] = {}
        self._kick = threading.Event()
        self._wakes_at = 0.0  # when the thread next looks (monotonic)
        self._thread: threading.Thread | None = None
        self._pid = current_pid()

    def hold(self, owner: _HasStore, slot: str, holder: str, ttl: float) -> None:
        with self._lock:
            self._held[(owner.url, slot, holder)] = (owner, ttl)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baozi-renew", daemon=True)
                self._thread.start()
            # Wake the thread only when this hold needs renewing before it would wake anyway
            # (an uncontended acquire and release should not cost a thread switch).
            kick = time.monotonic() + ttl / 3 < self._wakes_at
        if kick:
            self._kick.set()

    def drop(self, owner: _HasStore, slot: str, holder: str) -> None:
        with self._lock:
            self._held.pop((owner.url, slot, holder), None)

    def _run(self) -> None:
        last: dict[tuple[str, str, str], float] = {}
        while True:
            with self._lock:
                held = dict(self._held)
            now = time.monotonic()
            wait = 3600.0
            by_slot: dict[tuple[str, str], tuple[_HasStore, float, list[str]]] = {}
            for key, (owner, ttl) in held.items():
                since = last.setdefault(key, now)
                if now - since >= ttl / 3:
                    entry = by_slot.setdefault((key[0], key[1]), (owner, ttl, []))
                    entry[2].append(key[2])
                    last[key] = now
                    wait = min(wait, ttl / 3)
                else:
                    wait = min(wait, ttl / 3 - (now - since))
            for key in [k for k in last if k not in held]:
                del last[key]
            for (_, slot), (owner, ttl, holders) in by_slot.items():
                try:
                    renewed = owner.store.renew_slots(slot, holders, ttl)
                except Exception as exc:  # the store may be back before the ttl runs out
                    log.warning("renewing %s failed: %s", slot, exc)
                    continue
                with self._lock:
                    still = sum(1 for h in holders if (owner.url, slot, h) in self._held)
                if renewed < still:
                    log.warning(
                        "%s: %d holder(s) in this process lost their hold (the ttl ran out)",
                        slot,
                        still - renewed,
                    )
            with self._lock:
                self._wakes_at = time.monotonic() + max(wait, 0.01)
            self._kick.wait(max(wait, 0.01))
            self._kick.clear()


_renewers: dict[int, _Renewer] = {}
_renewers_lock = threading.Lock()


def _renewer() -> _Renewer:
    pid = current_pid()
    r = _renewers.get(pid)
    if r is None:
        with _renewers_lock:
            r = _renewers.get(pid)
            if r is None:
                _renewers.clear()  # a forked child does not inherit its parent's thread
                r = _renewers[pid] = _Renewer()
    return r


# How many times each thread holds each lock (a lock is reentrant for its holder): by (store URL,
# lock name, holder), shared by every handle on the lock in this process.
_depths: dict[tuple[str, str, str], int] = {}
_depths_lock = threading.Lock()


class Lock:
    """A reentrant lock shared by every process on the store (``threading.RLock`` semantics).

    The holder is a thread of a process: the same thread may acquire it again, and must release it
    as many times. Made by :meth:`baozi.App.lock`."""

    def __init__(self, owner: _HasStore, name: str, ttl: float = 30.0) -> None:
        self.name = _check_name("lock", name)
        self.ttl = _check_ttl(ttl)
        self._owner = owner
        self._slot = f"lock:{name}"

    def _holder(self) -> str:
        return f"{_process_token()}:{threading.get_ident()}"

    def _key(self) -> tuple[str, str, str]:
        return (self._owner.url, self.name, self._holder())

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock; with ``blocking`` wait for it (up to ``timeout`` seconds; -1: forever).
        Returns whether it was taken."""
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout is None:
            timeout = -1  # threading.Lock takes -1 for "forever"; None is forgiven here
        if timeout != -1:
            check_timeout(timeout)
        key = self._key()
        with _depths_lock:
            if _depths.get(key):
                _depths[key] += 1
                return True
        store, holder = self._owner.store, key[2]

        def attempt() -> tuple[bool, float | None]:
            wait = store.acquire_slot(self._slot, holder, 1, self.ttl)
            return wait is None, wait

        if not blocking:
            got = attempt()[0]
        else:
            got = _wait_for(store, attempt, None if timeout == -1 else float(timeout))
        if got:
            with _depths_lock:
                _depths[key] = 1
            _renewer().hold(self._owner, self._slot, holder, self.ttl)
        return got

    def release(self) -> None:
        """Release the lock once; the last release lets others take it."""
        key = self._key()
        with _depths_lock:
            depth = _depths.get(key, 0)
            if depth == 0:
                raise RuntimeError(f"cannot release un-acquired lock {self.name!r}")
            if depth > 1:
                _depths[key] = depth - 1
                return
            del _depths[key]
        _renewer().drop(self._owner, self._slot, key[2])
        if not self._owner.store.release_slot(self._slot, key[2]):
            raise RuntimeError(
                f"lock {self.name!r} was no longer held by this thread when released: its ttl "
                f"({self.ttl:g}s) ran out without renewal, and another holder may have taken it"
            )

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return bool(self._owner.store.slot_holders(self._slot))

    def _is_owned(self) -> bool:
        with _depths_lock:
            return bool(_depths.get(self._key()))

    def _release_save(self) -> int:
        """Release completely, whatever the depth; return the depth (for Condition.wait)."""
        key = self._key()
        with _depths_lock:
            depth = _depths.pop(key, 0)
        _renewer().drop(self._owner, self._slot, key[2])
        self._owner.store.release_slot(self._slot, key[2])
        return depth

    def _acquire_restore(self, depth: int) -> None:
        self.acquire()
        with _depths_lock:
            _depths[self._key()] = depth

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<baozi.Lock {self.name!r} ttl={self.ttl:g}s on {self._owner.url}>"


_tokens: dict[tuple[str, str], list[str]] = {}  # semaphore slots this process holds
_tokens_lock = threading.Lock()


class Semaphore:
    """A bounded semaphore shared by every process on the store: at most ``value`` holders at once.

    Released too often (more than this process acquired), it raises ValueError, as
    ``threading.BoundedSemaphore`` does. Made by :meth:`baozi.App.semaphore`."""

    def __init__(self, owner: _HasStore, name: str, value: int = 1, ttl: float = 30.0) -> None:
        self.name = _check_name("semaphore", name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"semaphore value must be a positive int, not {value!r}")
        self.value = value
        self.ttl = _check_ttl(ttl)
        self._owner = owner
        self._slot = f"sem:{name}"

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; with ``blocking`` wait for one (up to ``timeout`` seconds). Returns whether
        one was taken."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        timeout = check_timeout(timeout)
        store = self._owner.store
        token = f"{_process_token()}:{uuid.uuid4().hex[:12]}"

        def attempt() -> tuple[bool, float | None]:
            wait = store.acquire_slot(self._slot, token, self.value, self.ttl)
            return wait is None, wait

        got = attempt()[0] if not blocking else _wait_for(store, attempt, timeout)
        if got:
            _renewer().hold(self._owner, self._slot, token, self.ttl)  # before anyone can release
            with _tokens_lock:
                _tokens.setdefault((self._owner.url, self.name), []).append(token)
        return got

    def release(self, n: int = 1) -> None:
        """Give back ``n`` slots this process holds."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, not {n!r}")
        with _tokens_lock:
            held = _tokens.get((self._owner.url, self.name), [])
            if len(held) < n:
                raise ValueError(
                    f"semaphore {self.name!r} released too many times (this process holds "
                    f"{len(held)} of its slots)"
                )
            tokens = [held.pop() for _ in range(n)]
        for token in tokens:
            _renewer().drop(self._owner, self._slot, token)
            self._owner.store.release_slot(self._slot, token)

    def holders(self) -> int:
        """How many slots are held now, by every process."""
        return len(self._owner.store.slot_holders(self._slot))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<baozi.Semaphore {self.name!r} value={self.value} on {self._owner.url}>"


class Event:
    """A flag every process sees: ``wait()`` holds until someone calls ``set()``.
    Made by :meth:`baozi.App.event`."""

    _NS = "baozi.event"
    _GENERATIONS = "baozi.event-set"

    def __init__(self, owner: _HasStore, name: str) -> None:
        self.name = _check_name("event", name)
        self._owner = owner

    def is_set(self) -> bool:
        return self._owner.store.kv_get(self._NS, self.name) is not None

    def set(self) -> None:
        store = self._owner.store
        store.kv_incr(self._GENERATIONS, self.name, 1)  # so a set() then clear() is still seen
        store.kv_set(self._NS, self.name, b"1")

    def clear(self) -> None:
        self._owner.store.kv_delete(self._NS, self.name)

    def _generation(self) -> bytes | None:
        return self._owner.store.kv_get(self._GENERATIONS, self.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set (True) or ``timeout`` seconds pass (False). A ``set()``
        during the wait counts even if a ``clear()`` follows before this waiter looks."""
        timeout = check_timeout(timeout)
        store = self._owner.store
        if self.is_set():
            return True
        start = self._generation()
        return _wait_for(
            store, lambda: (self.is_set() or self._generation() != start, None), timeout
        )

    def __repr__(self) -> str:
        return f"<baozi.Event {self.name!r} on {self._owner.url}>"


class Condition:
    """``threading.Condition`` across processes, over a store lock (its own unless given one).

    Each waiter puts a ticket in a queue of the store and waits for it to leave; ``notify(n)``
    takes the first ``n`` tickets, so exactly ``n`` waiters go through. A waiter that dies while
    waiting leaves its ticket behind, and a later notify spends one wake-up on it.
    Made by :meth:`baozi.App.condition`."""

    def __init__(self, owner: _HasStore, name: str, lock: Lock | None = None, ttl: float = 30.0):
        self.name = _check_name("condition", name)
        self._owner = owner
        self._lock = lock if lock is not None else Lock(owner, f"cond:{name}", ttl)
        self._queue = f"baozi.cond.{name}"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify (True) or ``timeout`` seconds (False), and take the
        lock again before returning."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        timeout = check_timeout(timeout)
        store = self._owner.store
        (ticket,) = store.push(self._queue, [b""])
        depth = self._lock._release_save()
        try:
            try:
                notified = _wait_for(
                    store, lambda: (store.rank(self._queue, ticket) is None, None), timeout
                )
            except BaseException:
                store.discard(self._queue, [ticket])  # no wake-up may be spent on it
                raise
            if not notified and not store.discard(self._queue, [ticket]):
                notified = True  # notified as it timed out: the wake-up is not lost
        finally:
            self._lock._acquire_restore(depth)
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Wait until ``predicate()`` is true (checked with the lock held); return its last value."""
        timeout = check_timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            wait = None
            if end is not None:
                wait = end - time.monotonic()
                if wait <= 0:
                    break
            self.wait(wait)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Let ``n`` waiters through (fewer if fewer wait)."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, not {n!r}")
        if n:
            self._owner.store.pop(self._queue, n)

    def notify_all(self) -> None:
        """Let every waiter through."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        store = self._owner.store
        while store.pop(self._queue, 10_000):
            pass

    def __repr__(self) -> str:
        return f"<baozi.Condition {self.name!r} on {self._owner.url}>"


class _Opened:
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


def _key(key: object) -> str:
    if key is None or isinstance(key, (str, int, float, bool)):
        return json.dumps(key)
    raise TypeError(
        f"baozi.Dict keys are str, int, float, bool or None, not {type(key).__name__} ({key!r})"
    )


class Dict(MutableMapping[Any, Any]):
    """A dict shared by every process and machine on the store, kept across restarts -- the
    durable ``multiprocessing.Manager().dict()``.

    Each operation is atomic in the store; :meth:`incr` and :meth:`setdefault` read and write in
    one step, so concurrent callers never lose an update. Keys are str, int, float, bool or None;
    values anything the safe JSON serializer takes. ``keys()``, ``values()`` and ``items()`` are
    lists read at one moment, as a manager's dict returns."""

    def __init__(self, name: str, url: str | None = None, *, _owner: _HasStore | None = None):
        self.name = _check_name("Dict", name)
        self._owner: _HasStore = _owner if _owner is not None else _Opened(resolve_url(url))
        self._ns = f"dict:{name}"

    @property
    def url(self) -> str:
        return self._owner.url

    def __getitem__(self, key: Any) -> Any:
        raw = self._owner.store.kv_get(self._ns, _key(key))
        if raw is None:
            raise KeyError(key)
        return _CODEC.loads(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        k = _key(key)
        self._owner.store.kv_set(self._ns, k, _CODEC.dumps(value))

    def __delitem__(self, key: Any) -> None:
        if self._owner.store.kv_delete(self._ns, _key(key)) is None:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            k = _key(key)
        except TypeError:
            return False
        return self._owner.store.kv_get(self._ns, k) is not None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._owner.store.kv_items(self._ns))

    def keys(self) -> list[Any]:  # type: ignore[override]
        return [json.loads(k) for k in self._owner.store.kv_items(self._ns)]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [_CODEC.loads(v) for v in self._owner.store.kv_items(self._ns).values()]

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [
            (json.loads(k), _CODEC.loads(v))
            for k, v in self._owner.store.kv_items(self._ns).items()
        ]

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._owner.store.kv_get(self._ns, _key(key))
        return default if raw is None else _CODEC.loads(raw)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value under ``key``, storing ``default`` first if there is none -- in one step."""
        k = _key(key)
        return _CODEC.loads(self._owner.store.kv_setdefault(self._ns, k, _CODEC.dumps(default)))

    _MISSING = object()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        raw = self._owner.store.kv_delete(self._ns, _key(key))
        if raw is None:
            if default is Dict._MISSING:
                raise KeyError(key)
            return default
        return _CODEC.loads(raw)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some (key, value) pair, atomically; KeyError when empty."""
        while True:
            keys = list(self._owner.store.kv_items(self._ns))
            if not keys:
                raise KeyError("popitem(): baozi.Dict is empty")
            for k in keys:
                raw = self._owner.store.kv_delete(self._ns, k)
                if raw is not None:  # this caller removed it; another may have taken the rest
                    return json.loads(k), _CODEC.loads(raw)

    def incr(self, key: Any, amount: int | float = 1) -> int | float:
        """Add ``amount`` to the number under ``key`` (a missing key counts as 0) in one step in
        the store, and return the sum. Integers are exact to 64 bits on every store. TypeError
        if the key holds something else."""
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError(f"amount must be an int or a float, not {amount!r}")
        if isinstance(amount, float) and not math.isfinite(amount):
            raise ValueError(f"amount must be a finite number, not {amount!r}")
        if isinstance(amount, int) and not -(2**63) <= amount < 2**63:
            raise ValueError(f"amount {amount} does not fit in 64 bits")
        return self._owner.store.kv_incr(self._ns, _key(key), amount)

    def clear(self) -> None:
        self._owner.store.kv_clear(self._ns)

    def copy(self) -> dict[Any, Any]:
        """A plain dict of everything, read at one moment."""
        return dict(self.items())

    def close(self) -> None:
        """Let go of this handle's connection (the data stays)."""
        if isinstance(self._owner, _Opened):
            self._owner.close()

    def __repr__(self) -> str:
        return f"<baozi.Dict {self.name!r} on {self.url}>"
