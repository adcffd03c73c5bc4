"""The contract's part on filing groups of jobs into several queues in one step
(:meth:`~baozi.backends.base.Store.enqueue_across`). :class:`~baozi.testing.StoreContract`
inherits it."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from ...backends.base import JobPlace, NewJob, Store
from ...errors import Full
from ._common import OTHER, Q


def _jobs(*payloads: bytes, priority: int = 0) -> list[NewJob]:
    return [NewJob("t", p, priority) for p in payloads]


def _checked(store: Store, placed: list[tuple[str, JobPlace | None]]) -> list[JobPlace]:
    """The places of a group's jobs, each checked against what a snapshot reads now."""
    out = []
    for job_id, place in placed:
        assert place is not None and place.record.status == "queued"
        assert place == store.job_snapshot(job_id)
        out.append(place)
    return out


class AcrossContract:
    """Tests of a ``store`` fixture (see :class:`~baozi.testing.StoreContract`)."""

    def test_groups_into_two_queues_are_filed_in_one_call_with_their_places(
        self, store: Store
    ) -> None:
        store.enqueue(Q, _jobs(b"ahead"))
        into_q, into_other = store.enqueue_across(
            [(Q, _jobs(b"a", b"b"), 0), (OTHER, _jobs(b"c"), 0)]
        )
        ids = [job_id for job_id, _ in into_q + into_other]
        assert len(set(ids)) == 3
        q_places, other_places = _checked(store, into_q), _checked(store, into_other)
        assert [(p.record.queue, p.record.payload) for p in q_places] == [(Q, b"a"), (Q, b"b")]
        assert [(p.record.queue, p.record.payload) for p in other_places] == [(OTHER, b"c")]
        if "position" not in store.unsupported:  # ranks counted within each queue
            assert [p.rank for p in q_places] == [1, 2]
            assert [p.rank for p in other_places] == [0]
        assert (store.counts(Q).ready, store.counts(OTHER).ready) == (3, 1)
        assert store.job_counts(OTHER)["queued"] == 1

    def test_a_job_filed_across_is_what_enqueue_makes_and_is_counted_alike(
        self, store: Store
    ) -> None:
        (by_enqueue,) = store.enqueue(Q, [NewJob("t", b"same", 3)])
        ((by_across, _),) = store.enqueue_across([(Q, [NewJob("t", b"same", 3)], 0)])[0]
        a, b = store.record(by_enqueue), store.record(by_across)
        assert a is not None and b is not None
        assert dataclasses.replace(b, id=a.id, created_at=a.created_at) == a
        assert store.job_totals(Q)["t"]["enqueued"] == 2
        items = store.reserve(Q, "w", 30, 2)
        assert [(i.id, i.payload, i.priority, i.task) for i in items] == [
            (by_enqueue, b"same", 3, "t"),
            (by_across, b"same", 3, "t"),
        ]

    def test_a_group_over_its_maxsize_files_nothing_of_any_group(self, store: Store) -> None:
        store.enqueue(OTHER, _jobs(b"x", b"y"), maxsize=3)
        groups = [(Q, _jobs(b"a"), 0), (OTHER, _jobs(b"b", b"c"), 3)]
        with pytest.raises(Full, match=rf"{OTHER}.*room for 1\b"):
            store.enqueue_across(groups)
        assert store.counts(Q).ready == 0 and store.records(Q) == []
        assert store.counts(OTHER).ready == 2
        assert store.job_totals(Q) == {}
        # The queue that was full takes what fits.
        (_, (fits,)) = store.enqueue_across([(Q, _jobs(b"a"), 0), (OTHER, _jobs(b"b"), 3)])
        assert fits[1] == store.job_snapshot(fits[0]) and store.counts(OTHER).ready == 3

    def test_groups_naming_one_queue_are_filed_in_order_and_count_together(
        self, store: Store
    ) -> None:
        first, second = store.enqueue_across([(Q, _jobs(b"a", b"b"), 3), (Q, _jobs(b"c"), 3)])
        places = _checked(store, first) + _checked(store, second)
        assert [p.record.payload for p in places] == [b"a", b"b", b"c"]
        if "position" not in store.unsupported:
            assert [p.rank for p in places] == [0, 1, 2]
        # Either group alone fits a queue of at most 4 holding 3; the two together do not, and
        # nothing is filed.
        with pytest.raises(Full, match=rf"{Q}.*room for 0\b"):
            store.enqueue_across([(Q, _jobs(b"d"), 4), (Q, _jobs(b"e"), 4)])
        assert store.counts(Q).ready == 3
        assert [r.payload for r in store.records(Q)] == [b"c", b"b", b"a"]

    def test_empty_groups_file_nothing_and_keep_their_places_in_the_reply(
        self, store: Store
    ) -> None:
        assert store.enqueue_across([]) == []
        assert store.enqueue_across([(Q, [], 0), (OTHER, [], 1)]) == [[], []]
        assert not store.has_queue(Q) and not store.has_queue(OTHER)  # nothing made
        store.enqueue(OTHER, _jobs(b"x"), maxsize=1)
        # An empty group needs no room, even in a full queue.
        before, middle, after = store.enqueue_across(
            [(OTHER, [], 1), (Q, _jobs(b"a"), 0), (Q, [], 0)]
        )
        assert before == [] and after == []
        with pytest.raises(Full):  # an empty group changes nothing about the one before it
            store.enqueue_across([(OTHER, _jobs(b"y"), 1), (OTHER, [], 1)])
        (place,) = _checked(store, middle)
        assert place.record.payload == b"a"
        assert (store.counts(Q).ready, store.counts(OTHER).ready) == (1, 1)
        store.enqueue_across([(Q, _jobs(b"b"), 0), ("contract-empty", [], 0)])
        assert "contract-empty" not in store.queues()

    def test_the_reply_follows_the_groups_and_ranks_are_those_after_the_last(
        self, store: Store
    ) -> None:
        store.enqueue(Q, _jobs(b"ahead", priority=1))
        groups = [
            (Q, [NewJob("t", b"q1", 1), NewJob("t", b"q0", 0), NewJob("t", b"q2", 2)], 0),
            (OTHER, _jobs(b"o1", b"o2"), 0),
            (Q, [NewJob("t", b"q-1", -1)], 0),  # ahead of every job the first group filed
        ]
        placed = store.enqueue_across(groups)
        assert [len(g) for g in placed] == [3, 2, 1]
        payloads = [[p.record.payload for p in _checked(store, g)] for g in placed]
        assert payloads == [[b"q1", b"q0", b"q2"], [b"o1", b"o2"], [b"q-1"]]
        if "position" not in store.unsupported:
            ranks = [[p.rank for p in _checked(store, g)] for g in placed]
            # Line of Q: q-1, q0, ahead, q1, q2.
            assert ranks == [[3, 1, 4], [0, 1], [0]]

    def test_a_job_with_a_unique_key_or_dependencies_is_refused_before_any_write(
        self, store: Store
    ) -> None:
        (parent,) = store.enqueue(Q, _jobs(b"parent"))
        for odd in (NewJob("t", b"u", unique_key="k"), NewJob("t", b"d", depends_on=(parent,))):
            with pytest.raises(ValueError, match="unique key or dependencies"):
                store.enqueue_across([(OTHER, _jobs(b"plain"), 0), (Q, [odd], 0)])
        assert store.counts(OTHER).ready == 0 and store.counts(Q).ready == 1

    def test_marks_are_written_with_the_jobs_when_asked(self, store: Store) -> None:
        at = time.time() + 30
        into_q, into_other = store.enqueue_across(
            [(Q, _jobs(b"a", b"b"), 0), (OTHER, _jobs(b"c"), 0)], pending=at
        )
        assert sorted(store.pending(Q, at + 1)) == sorted((i, at) for i, _ in into_q)
        assert store.pending(OTHER, at + 1) == [(into_other[0][0], at)]
        (unmarked,), _ = store.enqueue_across([(Q, _jobs(b"c"), 0), (OTHER, [], 0)])
        assert unmarked[0] not in dict(store.pending(Q, at + 1))

    def test_racing_batches_never_fill_a_bounded_queue_past_its_maxsize(self, store: Store) -> None:
        start = threading.Barrier(3)
        filed: list[int] = []
        errors: list[BaseException] = []

        def producer() -> None:
            start.wait()
            try:
                while True:
                    # Each batch: two jobs into Q (at most 61 ready) and one into OTHER.
                    store.enqueue_across([(OTHER, _jobs(b"o"), 0), (Q, _jobs(b"a", b"b"), 61)])
                    filed.append(1)
            except Full:
                return
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=producer) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        # 30 batches fit (60 ready); one more would make 62. Each was all or nothing.
        assert (len(filed), store.counts(Q).ready, store.counts(OTHER).ready) == (30, 60, 30)
