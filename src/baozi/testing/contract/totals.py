"""The contract's part on queues as a whole: job totals, which queues are known, deleting an empty
one, who holds leases, and ids as the store writes them. :class:`~baozi.testing.StoreContract`
inherits it."""

from __future__ import annotations

import threading
import time

import pytest

from ...backends.base import NewJob, Outcome, Store

Q = "contract"
OTHER = "contract-other"


class TotalsContract:
    """Tests of a ``store`` fixture (see :class:`~baozi.testing.StoreContract`)."""

    def test_job_totals_count_each_event_once_by_task(self, store: Store) -> None:
        assert store.job_totals(Q) == {}
        a, b, c = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b"), NewJob("u", b"c")])
        d = store.enqueue(Q, [NewJob("u", b"d")], delay=60)[0]
        store.push(Q, [b"plain"])  # a plain item counts nothing
        store.reserve(Q, "w", 30, 3)
        store.settle(
            Q,
            "w",
            [Outcome(a, "succeeded"), Outcome(b, "failed"), Outcome(c, "retry")],
            ttl=60,
        )
        assert store.cancel(d)
        assert store.requeue(b)  # not enqueued again
        store.reserve(Q, "w", 30, 2)  # b and c run again: started again
        store.settle(Q, "w", [Outcome(b, "succeeded"), Outcome(c, "succeeded")], ttl=60)
        store.reserve(Q, "w", 30, 5)  # the plain item: nothing counted
        assert store.job_totals(Q) == {
            "t": {"enqueued": 2, "started": 3, "succeeded": 2, "failed": 1, "cancelled": 0},
            "u": {"enqueued": 2, "started": 2, "succeeded": 1, "failed": 0, "cancelled": 1},
        }
        assert store.job_totals(OTHER) == {}

    def test_job_totals_outlive_clear_and_purge(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "succeeded")], ttl=0.0)
        store.purge_expired()
        store.enqueue(Q, [NewJob("t", b"b")])
        store.clear(Q)
        assert store.job_totals(Q)["t"] == {
            "enqueued": 2,
            "started": 1,
            "succeeded": 1,
            "failed": 0,
            "cancelled": 0,
        }

    def test_job_totals_are_exact_under_concurrent_writers(self, store: Store) -> None:
        def produce(k: int) -> None:
            for i in range(20):
                store.enqueue(Q, [NewJob(f"t{k % 2}", b"x")] * (1 + i % 3))

        def consume(owner: str) -> None:
            for _ in range(200):
                items = store.reserve(Q, owner, 30, 3)
                store.settle(Q, owner, [Outcome(i.id, "succeeded") for i in items], ttl=60)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        threads += [threading.Thread(target=consume, args=(f"w{k}",)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        consume("last")  # what the consumers did not reach
        totals = store.job_totals(Q)
        per_task = 2 * sum(1 + i % 3 for i in range(20))
        for task in ("t0", "t1"):
            assert totals[task]["enqueued"] == per_task
            assert totals[task]["started"] == per_task
            assert totals[task]["succeeded"] == per_task

    def test_reads_make_no_queue(self, store: Store) -> None:
        ghost = "contract-ghost"
        store.counts(ghost)
        store.job_counts(ghost)
        store.job_totals(ghost)
        store.records(ghost)
        store.records(ghost, "failed")
        store.rank(ghost, "1")
        store.snapshot(ghost)
        store.next_due(ghost)
        store.queue_options(ghost)
        store.reserve(ghost, "w", 30, 1)
        store.pop(ghost)
        store.clear(ghost)
        store.lease_holders([ghost])
        with pytest.raises(IndexError):
            store.peek(ghost, 0)
        assert store.has_queue(ghost) is False
        assert ghost not in store.queues()

    def test_a_queue_is_known_once_written_to_or_given_options(self, store: Store) -> None:
        assert not store.has_queue(Q) and not store.has_queue(OTHER)
        store.enqueue(Q, [NewJob("t", b"a")])
        store.set_queue_options(OTHER, paused=True)
        assert store.has_queue(Q) and store.has_queue(OTHER)
        assert {Q, OTHER} <= set(store.queues())

    def test_only_an_empty_queue_can_be_deleted(self, store: Store) -> None:
        assert store.delete_queue(Q) is False  # unknown
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.set_queue_options(Q, paused=True)
        assert store.delete_queue(Q) is False  # holds a job
        store.set_queue_options(Q, paused=False)
        store.reserve(Q, "w", 30, 1)
        assert store.delete_queue(Q) is False  # holds it leased
        store.settle(Q, "w", [Outcome(a, "succeeded")], ttl=60)
        assert store.delete_queue(Q) is False  # holds its record
        store.clear(Q)
        assert store.delete_queue(Q) is True
        assert not store.has_queue(Q) and Q not in store.queues()
        assert store.job_totals(Q) == {} and store.queue_options(Q) == {}
        store.push(Q, [b"x"])  # written to again: made anew
        assert store.has_queue(Q) and Q in store.queues()

    def test_lease_holders_count_live_leases_per_owner(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"x")] * 4)
        store.push(OTHER, [b"y"])
        store.reserve(Q, "a", 30, 3)
        store.reserve(Q, "b", 0.05, 1)
        store.reserve(OTHER, "b", 30, 1)
        time.sleep(0.1)  # b's lease on Q ran out
        assert store.lease_holders([Q]) == {"a": 3}
        assert store.lease_holders([Q, OTHER, Q]) == {"a": 3, "b": 1}

    def test_only_an_id_as_the_store_wrote_it_names_a_job(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"x")] * 11)
        for job_id in ids:
            for twin in (f"+{job_id}", f" {job_id}", f"{job_id} ", f"0{job_id}", f"{job_id}\n"):
                assert store.record(twin) is None
                assert store.statuses([twin]) == {}
                assert store.cancel(twin) is False
                assert store.rank(Q, twin) is None
            if job_id.isdigit() and len(job_id) > 1:
                assert store.record(f"{job_id[0]}_{job_id[1:]}") is None
            wide = "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in job_id)
            if wide != job_id:  # full-width digits, which int() reads
                assert store.record(wide) is None
        assert store.record("1" * 5000) is None  # past what int() reads: no error either
        assert store.statuses(["9" * 5000]) == {}
        assert all(store.record(i) is not None for i in ids)

    def test_a_handle_that_wrote_before_a_delete_makes_the_queue_anew(self, store: Store) -> None:
        other = type(store)(store.url)  # another handle, which may keep what it learnt of Q
        try:
            other.push(Q, [b"a"])
            assert other.pop(Q) != []
            assert store.delete_queue(Q)
            other.enqueue(Q, [NewJob("t", b"b")])
            other.set_queue_options(OTHER, paused=True)
            assert store.has_queue(Q) and Q in store.queues()
            assert store.job_totals(Q)["t"]["enqueued"] == 1
        finally:
            other.close()
