"""The state every handle on one ``memory://`` URL shares: its queues, entries and coordination."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sortedcontainers import SortedList

from .._order import encode
from .._signal import ChangeSignal
from ..base import Item, Priority, WorkerInfo

READY, LEASED, SCHEDULED, WAITING, FINISHED = 0, 1, 2, 3, -1


class Encoded:
    """A str, bytes or tuple priority in line: ordered by its encoded bytes, after every number
    (so that a queue whose handles raced in priorities of two kinds still has one order)."""

    __slots__ = ("key", "value")

    def __init__(self, value: Priority) -> None:
        self.value = value
        self.key = encode(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoded) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: object) -> bool:
        return isinstance(other, Encoded) and self.key < other.key

    def __gt__(self, other: object) -> bool:
        return not isinstance(other, Encoded) or self.key > other.key

    def __le__(self, other: object) -> bool:
        return self == other or self < other

    def __ge__(self, other: object) -> bool:
        return self == other or self > other


def in_line(priority: Priority) -> Any:
    """A priority as an entry's key holds it."""
    return priority if isinstance(priority, (int, float)) else Encoded(priority)


Key = tuple[Any, int, int]


@dataclass(slots=True)
class Entry:
    """One item: its place in line, its lease or schedule, and for a job, its record."""

    key: Key
    payload: bytes
    state: int = READY
    due: float = 0.0
    owner: str | None = None
    deliveries: int = 0
    stamp: int = 0  # bumped whenever ``due`` changes, to skip stale heap entries
    # the record a job keeps
    task: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float = 0.0
    failures: int = 0
    outcome: str | None = None
    result: bytes | None = None
    error: str | None = None
    progress: str | None = None
    # unique keys and dependencies (see NewJob)
    unique_key: str | None = None
    unique_while: str = "queued_or_running"
    unique_for: float = 0.0
    parents: tuple[str, ...] = ()
    waiting_on: set[int] = field(default_factory=set)  # parents not yet ended
    on_dependency_failure: str = "cancel"
    children: list[int] = field(default_factory=list)
    ready_at: float = 0.0  # when a waiting job's delay passes
    worker: str | None = None  # the owner of its last run that ended (JobRecord.worker)

    def status(self, now: float) -> str:
        if self.outcome is not None:
            return self.outcome
        if self.state == WAITING:
            return "waiting"
        if self.state == READY or self.due <= now:
            return "queued"
        return "running" if self.state == LEASED else "scheduled"

    def item(self) -> Item:
        key = self.key
        prio = key[0].value if isinstance(key[0], Encoded) else key[0]
        return Item(str(key[2]), self.payload, prio, self.deliveries, self.task, self.failures)


@dataclass(slots=True)
class QueueState:
    """One queue: its ready keys in order, its live entries, its finished jobs, its due times,
    its publish-pending marks."""

    ready: SortedList = field(default_factory=SortedList)
    entries: dict[int, Entry] = field(default_factory=dict)  # live items
    done: dict[int, Entry] = field(default_factory=dict)  # finished jobs, kept as records
    timers: list[tuple[float, int, int]] = field(default_factory=list)  # (due, id, stamp) heap
    lo: int = 0
    marks: dict[int, float] = field(default_factory=dict)  # job -> its mark's time
    marked: SortedList = field(default_factory=SortedList)  # (time, job) of each mark

    def holds_job(self, num: int) -> bool:
        entry = self.entries.get(num) or self.done.get(num)
        return entry is not None and entry.task is not None

    def set_mark(self, num: int, at: float) -> None:
        self.drop_mark(num)
        self.marks[num] = at
        self.marked.add((at, num))

    def drop_mark(self, num: int) -> bool:
        at = self.marks.pop(num, None)
        if at is not None:
            self.marked.remove((at, num))
        return at is not None

    def marks_until(self, before: float, limit: int) -> list[tuple[int, float]]:
        """The first ``limit`` marks due by ``before``, earliest first. The mark of a job whose
        record went with its item (ack, discard, pop, splice) is dropped here, not there."""
        out: list[tuple[int, float]] = []
        gone = []
        for at, num in self.marked.irange(maximum=(before, math.inf)):
            if len(out) >= limit:
                break
            if self.holds_job(num):
                out.append((num, at))
            else:
                gone.append(num)
        for num in gone:
            self.drop_mark(num)
        return out

    def set_due(self, num: int, entry: Entry, due: float) -> None:
        entry.due = due
        entry.stamp += 1
        heapq.heappush(self.timers, (due, num, entry.stamp))

    def promote(self, now: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= now:
            due, num, stamp = heapq.heappop(timers)
            entry = self.entries.get(num)
            if entry is not None and entry.stamp == stamp and entry.state != READY:
                entry.state = READY
                self.ready.add(entry.key)

    def next_due(self) -> float | None:
        timers = self.timers
        while timers:
            due, num, stamp = timers[0]
            entry = self.entries.get(num)
            if entry is not None and entry.stamp == stamp and entry.state != READY:
                return due
            heapq.heappop(timers)
        return None


class State:
    """Everything one ``memory://`` name holds, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.queues: dict[str, QueueState] = {}
        self.ids = itertools.count(1)
        self.signal = ChangeSignal()
        self.where: dict[int, str] = {}  # job id -> queue name
        self.options: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, tuple[WorkerInfo, float]] = {}  # id -> (info, expires)
        self.kv: dict[str, dict[str, bytes]] = {}
        self.slots: dict[str, dict[str, float]] = {}  # name -> holder -> expires
        self.rates: dict[str, float] = {}  # name -> theoretical arrival time of the next event
        self.grants: dict[str, dict[str, float]] = {}  # rate name -> ticket -> booked time
        self.waiters: dict[str, dict[int, str]] = {}  # slot -> job waiting for it -> its queue
        self.totals: dict[str, Counter[tuple[str, str]]] = {}  # queue -> (task, event) -> n
        self.unique: dict[str, list[int]] = {}  # unique key -> jobs that may hold it

    def queue(self, name: str) -> QueueState:
        """The queue, made if it is new: for writes."""
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState()
        return q

    def existing(self, name: str) -> QueueState:
        """The queue, or an empty one that is not kept: for reads, which make nothing."""
        return self.queues.get(name) or QueueState()

    def count(self, queue: str, task: str | None, event: str, n: int = 1) -> None:
        if task is not None:
            self.totals.setdefault(queue, Counter())[task, event] += n


_STATES: dict[str, State] = {}
_STATES_LOCK = threading.Lock()


def item_numbers(ids: Sequence[str]) -> list[int]:
    """The ids this store could have issued, as numbers: written as it writes them ("10", not
    "1_0", "+10", " 10" or other scripts' digits, which int() reads as 10 too)."""
    out = []
    for i in ids:
        if isinstance(i, str) and 0 < len(i) <= 30 and i.isascii() and i.isdigit():
            if i != str(int(i)):
                continue
            out.append(int(i))
    return out


def shared_state(url: str) -> State:
    """The state of the store at ``url``, made on first use: one per name, for the process."""
    parts = urlsplit(url)
    name = (parts.netloc + parts.path).strip("/")
    with _STATES_LOCK:
        state = _STATES.get(name)
        if state is None:
            state = _STATES[name] = State()
    return state
