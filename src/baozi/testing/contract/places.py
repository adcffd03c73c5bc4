"""The contract's part on where a job stands (:meth:`~baozi.backends.base.Store.job_snapshot`):
its record, its rank and its due time read at one moment. :class:`~baozi.testing.StoreContract`
inherits it."""

from __future__ import annotations

import threading
import time

from ...backends.base import JobPlace, NewJob, Outcome, Store
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
