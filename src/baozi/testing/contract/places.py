"""The contract's part on where a job stands (:meth:`~baozi.backends.base.Store.job_snapshot`):
its record, its rank and its due time read at one moment. :class:`~baozi.testing.StoreContract`
inherits it."""

from __future__ import annotations

import threading
import time

import pytest

from ...backends.base import JobPlace, NewJob, Outcome, Store
from ...errors import Full
from ._common import OTHER, Q


def _place(store: Store, job_id: str) -> JobPlace:
    place = store.job_snapshot(job_id)
    assert place is not None, f"no job {job_id}"
    return place


class PlaceContract:
    """Tests of a ``store`` fixture (see :class:`~baozi.testing.StoreContract`)."""

    def test_a_queued_jobs_snapshot_holds_its_record_and_its_rank(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i, 0) for i in range(4)])
        (urgent,) = store.enqueue(Q, [NewJob("t", b"urgent", -1)])
        store.enqueue(OTHER, [NewJob("t", b"elsewhere", -5)])  # another queue's job is not ahead
        for job_id in [*ids, urgent]:
            place = _place(store, job_id)
            assert place.record == store.record(job_id)
            assert place.record.status == "queued"
            if "position" not in store.unsupported:
                assert place.rank == store.rank(Q, job_id)
        if "position" not in store.unsupported:
            assert [_place(store, i).rank for i in ids] == [1, 2, 3, 4]
            assert _place(store, urgent).rank == 0

    def test_a_job_out_of_line_has_no_rank(self, store: Store) -> None:
        running, done = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        before = time.time()
        (later,) = store.enqueue(Q, [NewJob("t", b"c")], delay=60)
        (waiting,) = store.enqueue(Q, [NewJob("t", b"d", depends_on=(running,))])
        store.reserve(Q, "w", 30, 2)
        store.settle(Q, "w", [Outcome(done, "succeeded", result=b"1")], ttl=60)
        expected = {running: "running", done: "succeeded", later: "scheduled", waiting: "waiting"}
        for job_id, status in expected.items():
            place = _place(store, job_id)
            assert (place.record.status, place.rank) == (status, None)
            assert place.record == store.record(job_id)
            due = place.record.due_at
            if status == "scheduled":
                assert due is not None and before + 60 <= due <= time.time() + 60
            else:
                assert due is None

    def test_a_run_out_lease_or_delay_puts_the_job_back_in_line(self, store: Store) -> None:
        (leased,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 0.05, 1)
        (delayed,) = store.enqueue(Q, [NewJob("t", b"b")], delay=0.05)
        time.sleep(0.15)
        for job_id in (leased, delayed):
            place = _place(store, job_id)
            assert place.record.status == "queued" and place.record.due_at is None
            if "position" not in store.unsupported:
                assert place.rank == store.rank(Q, job_id)
                assert place.rank is not None

    def test_unknown_ids_and_plain_items_have_no_snapshot(self, store: Store) -> None:
        (item_id,) = store.push(Q, [b"x"])
        assert store.job_snapshot(item_id) is None
        assert store.job_snapshot("999999999") is None
        assert store.job_snapshot("not-an-id") is None

    def test_a_job_racing_from_queued_to_running_is_never_queued_without_a_rank(
        self, store: Store
    ) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(60)])
        stop = threading.Event()

        def take() -> None:
            while not stop.is_set() and store.reserve(Q, "w", 30, 1):
                pass

        taker = threading.Thread(target=take)
        seen: set[str] = set()
        taker.start()
        try:
            for _ in range(3):
                for job_id in reversed(ids):  # the last ones stay queued longest
                    place = _place(store, job_id)
                    status = place.record.status
                    seen.add(status)
                    assert status in ("queued", "running"), status
                    if "position" not in store.unsupported:
                        assert (place.rank is not None) == (status == "queued"), place
        finally:
            stop.set()
            taker.join()
        assert "running" in seen

    def test_snapshots_of_many_jobs_match_each_ones_snapshot(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i, i % 3) for i in range(9)])
        (head,) = store.enqueue(Q, [NewJob("t", b"front")], front=True)
        others = store.enqueue(OTHER, [NewJob("t", b"o%d" % i) for i in range(3)])
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=60)
        (waiting,) = store.enqueue(Q, [NewJob("t", b"w", depends_on=(later,))])
        (taken,) = store.reserve(OTHER, "w", 30, 1)
        (item_id,) = store.push(Q, [b"plain"])
        wanted = [*ids, head, *others, later, waiting, item_id, "999999999", "not-an-id", ids[0]]
        got = store.job_snapshots(wanted)
        expected = {i: store.job_snapshot(i) for i in wanted}
        assert got == {i: p for i, p in expected.items() if p is not None}
        assert set(got) == {*ids, head, *others, later, waiting}
        assert got[taken.id].record.status == "running" and got[taken.id].rank is None
        if "position" not in store.unsupported:
            # Priorities 0, 1, 2 in turn: the head, the three 0s, the plain item (priority 0,
            # pushed after them), the three 1s, the 2s.
            ranks = [got[i].rank for i in ids]
            assert ranks == [1, 5, 8, 2, 6, 9, 3, 7, 10], ranks
            assert got[head].rank == 0
        assert store.job_snapshots([]) == {}

    def test_snapshots_of_a_long_batch_count_on_from_the_first(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"ahead") for _ in range(5)])
        (leased,) = store.enqueue(Q, [NewJob("t", b"leased")])
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(1500)])
        places = store.job_snapshots(list(reversed(ids)))
        assert [places[i].record.status for i in ids] == ["queued"] * 1500
        if "position" in store.unsupported:
            return
        assert [places[i].rank for i in ids] == list(range(6, 1506))
        sample = [ids[0], ids[700], ids[-1]]
        assert [places[i].rank for i in sample] == [store.rank(Q, i) for i in sample]
        # Five taken from the head, one of them on a lease that runs out: it is back in line
        # (ahead of every later job), and the others moved up by four.
        store.reserve(Q, "w", 30, 5)
        jobs = store.reserve(Q, "w", 0.05, 1)
        assert [j.id for j in jobs] == [leased]
        time.sleep(0.15)
        places = store.job_snapshots(ids[:3] + [leased])
        assert [places[i].rank for i in ids[:3]] == [1, 2, 3]
        assert places[leased].rank == 0

    def test_an_enqueue_with_places_tells_what_a_snapshot_reads(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"ahead", 1) for _ in range(3)])
        store.reserve(Q, "w", 30, 1)  # one running: not ahead of anyone
        jobs = [NewJob("t", b"%d" % i, p) for i, p in enumerate([1, 1, 0, 2, 1])]
        placed = store.enqueue_placed(Q, jobs)
        assert [p is not None for _, p in placed] == [True] * 5
        ids = [job_id for job_id, _ in placed]
        assert len(set(ids)) == 5
        for job_id, place in placed:
            assert place == store.job_snapshot(job_id)
            assert place is not None and place.record.status == "queued"
        if "position" not in store.unsupported:
            # Two 1s ahead; then the 0 (ahead of all), the 1s after the two, the 2 last.
            assert [p.rank for _, p in placed if p] == [3, 4, 0, 6, 5]
        (one,) = store.enqueue_placed(OTHER, [NewJob("t", b"alone")])
        assert one[1] == store.job_snapshot(one[0])
        assert store.enqueue_placed(Q, []) == []

    def test_an_enqueue_with_places_into_a_full_queue_files_nothing(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")], maxsize=3)
        with pytest.raises(Full):
            store.enqueue_placed(Q, [NewJob("t", b"c"), NewJob("t", b"d")], maxsize=3)
        assert store.counts(Q).ready == 2
        ((job_id, place),) = store.enqueue_placed(Q, [NewJob("t", b"c")], maxsize=3)
        assert place == store.job_snapshot(job_id) and store.counts(Q).ready == 3
