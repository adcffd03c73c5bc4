"""The contract's publish-pending marks: ``enqueue(pending=)``, ``mark_pending``,
``clear_pending``, ``pending`` and ``next_pending`` (see :mod:`baozi.backends.contract.jobs`).
:class:`~baozi.testing.StoreContract` inherits it."""

from __future__ import annotations

import math
import time

import pytest

from ...backends.base import Deduplicated, NewJob, Outcome, Store
from ...errors import Full
from ._common import OTHER, Q

T = 1733580000.123456789
"""A mark's time: epoch seconds with more digits than a double keeps (it is the nearest one)."""


def _marks(store: Store, queue: str = Q) -> dict[str, float]:
    """Every mark of the queue, by job id."""
    return dict(store.pending(queue, math.inf, 10_000))


class MarkContract:
    """Tests of a ``store`` fixture (see :class:`~baozi.testing.StoreContract`)."""

    def test_enqueue_with_pending_marks_every_job_it_files(self, store: Store) -> None:
        (one,) = store.enqueue(Q, [NewJob("t", b"one")], pending=T)
        two, three = store.enqueue(Q, [NewJob("t", b"2"), NewJob("t", b"3")], pending=T + 1)
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=60, front=True, pending=T + 2)
        (plain,) = store.enqueue(Q, [NewJob("t", b"unmarked")])
        assert _marks(store) == {one: T, two: T + 1, three: T + 1, later: T + 2}
        assert plain not in _marks(store) and _marks(store, OTHER) == {}
        (child,) = store.enqueue(Q, [NewJob("t", b"child", depends_on=(one,))], pending=T + 3)
        assert _marks(store)[child] == T + 3

    def test_enqueue_with_pending_leaves_a_deduplicated_job_s_mark_alone(
        self, store: Store
    ) -> None:
        (first,) = store.enqueue(Q, [NewJob("t", b"a", unique_key="k")], pending=T)
        dup, new = store.enqueue(
            Q, [NewJob("t", b"b", unique_key="k"), NewJob("t", b"c")], pending=T + 5
        )
        assert isinstance(dup, Deduplicated) and dup == first
        assert not isinstance(new, Deduplicated)
        assert _marks(store) == {first: T, new: T + 5}

    def test_an_enqueue_refused_whole_marks_nothing(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"a")])
        with pytest.raises(Full):
            store.enqueue(Q, [NewJob("t", b"b"), NewJob("t", b"c")], maxsize=2, pending=T)
        with pytest.raises(Full):
            store.enqueue(Q, [NewJob("t", b"d")], maxsize=1, pending=T)
        assert store.counts(Q).ready == 1 and _marks(store) == {}
        assert store.next_pending(Q) is None

    def test_pending_lists_the_marks_due_earliest_first_up_to_a_limit(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(5)])
        offsets = [50.0, 10.0, 40.0, 20.0, 30.0]
        assert store.mark_pending(Q, {i: T + d for i, d in zip(ids, offsets, strict=True)}) == 5
        by_time = [ids[1], ids[3], ids[4], ids[2], ids[0]]
        firsts = [(i, T + d) for i, d in zip(by_time[:3], [10, 20, 30], strict=True)]
        assert store.pending(Q, T + 30) == firsts
        assert store.pending(Q, T + 30, limit=2) == [(by_time[0], T + 10), (by_time[1], T + 20)]
        assert [i for i, _ in store.pending(Q, T + 100)] == by_time
        assert store.pending(Q, T + 100, limit=0) == []
        assert store.pending(Q, T + 9.999) == []
        assert store.pending(OTHER, T + 100) == [] and store.pending("no-such-queue", T) == []

    def test_mark_pending_sets_and_moves_marks_of_the_queue_s_jobs_only(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        (elsewhere,) = store.enqueue(OTHER, [NewJob("t", b"c")])
        (item,) = store.push(Q, [b"a plain item: no job"])
        (gone,) = store.enqueue(Q, [NewJob("t", b"gone")])
        store.cancel(gone)
        assert store.forget([gone]) == 1
        others = {elsewhere: T, item: T, gone: T, "no-such-job": T, "12345": T, "": T}
        assert store.mark_pending(Q, {a: T, **others}) == 1
        assert _marks(store) == {a: T} and _marks(store, OTHER) == {}
        assert store.mark_pending(Q, {a: T - 60, b: T + 60}) == 2  # moved, and set
        assert _marks(store) == {a: T - 60, b: T + 60}
        assert store.mark_pending(Q, {a: T - 60}) == 1  # set again to the time it has
        assert store.mark_pending(Q, {}) == 0 and store.mark_pending("no-such-queue", {a: T}) == 0
        assert _marks(store) == {a: T - 60, b: T + 60}

    def test_a_job_enqueue_one_filed_can_be_marked_at_once(self, store: Store) -> None:
        job_id = store.enqueue_one(Q, "t", b"fast")  # a store may file it on its next call
        assert store.mark_pending(Q, {job_id: T}) == 1
        assert store.pending(Q, T) == [(job_id, T)] and store.next_pending(Q) == T

    def test_clear_pending_removes_a_mark_only_at_the_time_given(self, store: Store) -> None:
        a, b, c = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b"), NewJob("t", b"c")])
        store.mark_pending(Q, {a: T, b: T + 1, c: T + 2})
        assert store.clear_pending(Q, {a: T - 1, b: T + 1.5}) == 0  # moved since: stays
        assert store.clear_pending(OTHER, {a: T, b: None}) == 0  # not marks of that queue
        assert store.clear_pending(Q, {"no-such-job": None, "": T}) == 0
        assert _marks(store) == {a: T, b: T + 1, c: T + 2}
        assert store.clear_pending(Q, {a: T, b: None, c: T + 3}) == 2
        assert _marks(store) == {c: T + 2}
        assert store.clear_pending(Q, {a: T, b: None}) == 0  # gone already
        assert store.clear_pending(Q, {}) == 0
        store.mark_pending(Q, {a: T + 4})  # a cleared mark can be set again
        assert _marks(store) == {a: T + 4, c: T + 2}

    def test_next_pending_is_the_earliest_mark_s_time(self, store: Store) -> None:
        assert store.next_pending(Q) is None
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")], pending=T + 10)
        assert store.next_pending(Q) == T + 10
        store.mark_pending(Q, {b: T + 5})
        assert store.next_pending(Q) == T + 5 and store.next_pending(OTHER) is None
        store.clear_pending(Q, {b: T + 5})
        assert store.next_pending(Q) == T + 10
        store.clear_pending(Q, {a: None})
        assert store.next_pending(Q) is None

    def test_a_mark_stays_whatever_becomes_of_its_job_until_its_record_goes(
        self, store: Store
    ) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")], pending=T)
        (item,) = store.reserve(Q, "w", 30, 1)
        assert item.id == a and _marks(store) == {a: T, b: T}  # running
        store.settle(Q, "w", [Outcome(a, "retry", error="again", retry_in=60)], ttl=60)
        assert _marks(store) == {a: T, b: T}  # scheduled again
        assert store.cancel(a) and store.cancel(b)
        assert _marks(store) == {a: T, b: T}  # finished: the record is kept, and its mark
        assert store.requeue(a)
        assert store.record(a) is not None and _marks(store) == {a: T, b: T}
        store.mark_pending(Q, {b: T + 1})  # a finished job's mark can be moved too
        assert _marks(store) == {a: T, b: T + 1}

    def test_a_mark_goes_with_its_job_s_record(self, store: Store) -> None:
        done, expired, discarded, acked, kept = store.enqueue(
            Q, [NewJob("t", b"%d" % i) for i in range(5)], pending=T
        )
        store.reserve(Q, "w", 30, 2)
        store.settle(Q, "w", [Outcome(done, "succeeded")], ttl=60)
        store.settle(Q, "w", [Outcome(expired, "succeeded")], ttl=0.0)
        assert store.forget([done]) == 1
        assert store.purge_expired() >= 1
        assert store.discard(Q, [discarded]) == 1
        (item,) = store.reserve(Q, "w", 30, 1)
        assert item.id == acked and store.ack(Q, [acked], "w") == 1
        assert _marks(store) == {kept: T} and store.next_pending(Q) == T
        assert store.mark_pending(Q, {done: T, expired: T, discarded: T, acked: T}) == 0
        assert store.clear_pending(Q, {done: None, expired: None, acked: None}) == 0

    def test_a_queue_cleared_or_deleted_keeps_no_marks(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")], pending=T)
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "succeeded")], ttl=60)  # a finished job's record too
        (other,) = store.enqueue(OTHER, [NewJob("t", b"c")], pending=T)
        store.clear(Q)
        assert _marks(store) == {} and store.next_pending(Q) is None
        assert store.delete_queue(Q)
        store.enqueue(Q, [NewJob("t", b"c")])  # the queue anew: no mark comes back
        assert _marks(store) == {} and store.next_pending(Q) is None
        assert _marks(store, OTHER) == {other: T}

    def test_mark_times_come_back_exactly_as_written(self, store: Store) -> None:
        now = time.time()
        times = [T, now, now + 1e-6, 1733580000.1, 1733580000.0, 0.1 + 0.2]
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(len(times))])
        assert store.mark_pending(Q, dict(zip(ids, times, strict=True))) == len(times)
        (enqueued,) = store.enqueue(Q, [NewJob("t", b"x")], pending=now)
        written = {**dict(zip(ids, times, strict=True)), enqueued: now}
        read = _marks(store)
        assert read == written
        assert all(type(at) is float for at in read.values())
        assert store.next_pending(Q) == 0.1 + 0.2
        assert store.clear_pending(Q, read) == len(written)  # each compares equal to itself
        assert _marks(store) == {}
