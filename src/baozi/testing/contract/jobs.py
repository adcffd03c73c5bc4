"""The job part of the conformance suite: records, settling, retries, cancelling, workers."""

from __future__ import annotations

import time

import pytest

from ...backends.base import NewJob, Outcome, Store, WorkerInfo
from ...errors import Full
from ._common import OTHER, Q
from ._common import payloads as _payloads


class JobContract:
    """Tests of a ``store`` fixture: the job part of the contract."""

    def test_enqueued_jobs_are_filed_when_enqueue_returns(self, store: Store) -> None:
        (job_id,) = store.enqueue(Q, [NewJob("t", b"p", 0)])
        again = type(store)(store.url)  # another handle sees it at once
        try:
            record = again.record(job_id)
            assert record is not None and record.status == "queued"
        finally:
            again.close()

    def test_a_batch_block_files_every_job_by_its_end(self, store: Store) -> None:
        with store.batch():
            ids = [store.enqueue(Q, [NewJob("t", b"%d" % i, 0)])[0] for i in range(300)]
            with store.batch():  # nested: joins the outer block
                ids += store.enqueue(Q, [NewJob("t", b"last", 0)])
        assert store.counts(Q).ready == 301
        assert store.statuses(ids) == dict.fromkeys(ids, "queued")

    def test_a_job_has_a_record_from_enqueue_to_finish(self, store: Store) -> None:
        before = time.time()
        (jid,) = store.enqueue(Q, [NewJob("tasks.add", b"[1,2]", 3)])
        rec = store.record(jid)
        assert rec is not None
        assert (rec.id, rec.queue, rec.task, rec.status, rec.priority) == (
            jid,
            Q,
            "tasks.add",
            "queued",
            3,
        )
        assert rec.payload == b"[1,2]" and rec.attempts == 0 and rec.failures == 0
        assert before <= rec.created_at <= time.time() and rec.started_at is None
        (item,) = store.reserve(Q, "w", 30, 1)
        assert item.id == jid
        running = store.record(jid)
        assert running is not None and running.status == "running" and running.attempts == 1
        assert running.started_at is not None
        assert store.settle(Q, "w", [Outcome(jid, "succeeded", result=b"3")], ttl=60) == 1
        done = store.record(jid)
        assert done is not None and done.status == "succeeded" and done.result == b"3"
        assert done.finished_at is not None and done.finished_at >= running.started_at
        assert store.counts(Q).total == 0  # a finished job is a record, not an item
        assert store.rank(Q, jid) is None

    def test_a_scheduled_job_s_record_gives_its_due_time_and_no_other_does(
        self, store: Store
    ) -> None:
        before = time.time()
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=30)
        (now,) = store.enqueue(Q, [NewJob("t", b"now")])
        rec = store.record(later)
        assert rec is not None and rec.status == "scheduled" and rec.due_at is not None
        assert before + 30 <= rec.due_at <= time.time() + 30
        listed = {r.id: r.due_at for r in store.records(Q, "scheduled")}
        assert listed == {later: rec.due_at}
        assert store.records_of([later])[later].due_at == rec.due_at
        queued = store.record(now)
        assert queued is not None and queued.due_at is None
        (item,) = store.reserve(Q, "w", 30, 1)
        running = store.record(item.id)  # a lease's end is no due time
        assert running is not None and running.status == "running" and running.due_at is None
        store.settle(Q, "w", [Outcome(item.id, "succeeded", result=b"1")], ttl=60)
        done = store.record(item.id)
        assert done is not None and done.due_at is None

    def test_plain_items_and_unknown_ids_have_no_record(self, store: Store) -> None:
        (item_id,) = store.push(Q, [b"x"])
        assert store.record(item_id) is None
        assert store.record("999999999") is None
        assert store.record("not-an-id") is None

    def test_a_failed_job_keeps_its_error_and_can_be_requeued_in_place(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "failed", error='{"type": "ValueError"}')], ttl=60)
        rec = store.record(a)
        assert rec is not None and rec.status == "failed" and rec.error == '{"type": "ValueError"}'
        assert store.requeue(a) is True
        assert store.requeue(a) is False  # it is queued now, not failed
        assert _payloads(store.snapshot(Q)) == [b"a", b"b"]
        requeued = store.record(a)
        assert requeued is not None and requeued.status == "queued" and requeued.error is None

    def test_a_retry_schedules_the_job_again_and_counts_the_failure(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "retry", error="boom", retry_in=0.2)], ttl=60)
        rec = store.record(a)
        assert rec is not None and rec.status == "scheduled" and rec.failures == 1
        assert store.reserve(Q, "w", 30, 1) == []
        time.sleep(0.25)
        assert [i.id for i in store.reserve(Q, "w", 30, 1)] == [a]
        store.settle(Q, "w", [Outcome(a, "retry", retry_in=0)], ttl=60)
        rec = store.record(a)
        assert rec is not None and rec.status == "queued" and rec.failures == 2

    def test_settle_ignores_jobs_the_owner_does_not_hold(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w1", 30, 1)
        assert store.settle(Q, "w2", [Outcome(a, "succeeded")], ttl=60) == 0
        rec = store.record(a)
        assert rec is not None and rec.status == "running"

    def test_many_outcomes_settle_in_one_call(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", str(i).encode()) for i in range(5)])
        store.reserve(Q, "w", 30, 5)
        outcomes = [Outcome(i, "succeeded", b"1") for i in ids[:3]]
        outcomes += [Outcome(ids[3], "failed", error="x"), Outcome(ids[4], "retry", retry_in=30)]
        assert store.settle(Q, "w", outcomes, ttl=60) == 5
        counts = store.job_counts(Q)
        assert (counts["succeeded"], counts["failed"], counts["scheduled"]) == (3, 1, 1)

    def test_an_expired_lease_reads_as_queued(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "dead", 0.1, 1)
        time.sleep(0.15)
        rec = store.record(a)
        assert rec is not None and rec.status == "queued"

    def test_claim_starts_a_job_as_reserve_does(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        (got,) = store.claim(Q, "w", 30, [b])
        assert (got.id, got.payload, got.task, got.deliveries, got.failures) == (b, b"b", "t", 1, 0)
        rec = store.record(b)
        assert rec is not None and rec.status == "running" and rec.attempts == 1
        assert rec.started_at is not None and rec.started_at >= rec.created_at
        assert store.statuses([a, b]) == {a: "queued", b: "running"}
        assert store.job_totals(Q)["t"]["started"] == 1
        assert store.lease_holders([Q]) == {"w": 1}
        assert [i.id for i in store.reserve(Q, "w2", 30, 5)] == [a]
        assert store.settle(Q, "w", [Outcome(b, "succeeded", result=b"1")], ttl=60) == 1

    def test_a_job_taken_over_starts_again_and_its_old_owner_cannot_settle_it(
        self, store: Store
    ) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "gone", 30, 1)
        assert store.claim(Q, "new", 30, [a]) == []
        (got,) = store.claim(Q, "new", 30, [a], takeover=[a])
        assert (got.id, got.deliveries) == (a, 2)
        rec = store.record(a)
        assert rec is not None and rec.status == "running" and rec.attempts == 2
        assert store.job_totals(Q)["t"]["started"] == 2
        assert store.lease_holders([Q]) == {"new": 1}
        assert store.settle(Q, "gone", [Outcome(a, "succeeded")], ttl=60) == 0
        assert store.set_progress(a, "gone", "[0.5, null]") is False
        assert store.settle(Q, "new", [Outcome(a, "succeeded")], ttl=60) == 1

    def test_claim_leaves_out_scheduled_finished_and_cancelled_jobs(self, store: Store) -> None:
        a, b, c = store.enqueue(Q, [NewJob("t", x) for x in (b"a", b"b", b"c")])
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=30)
        store.claim(Q, "w", 30, [a])
        store.settle(Q, "w", [Outcome(a, "succeeded")], ttl=60)
        assert store.cancel(b) is True
        store.claim(Q, "w", 30, [c])
        assert store.cancel(c) is True  # cancelled while it ran
        every = [a, b, c, later]
        assert store.claim(Q, "w2", 30, every, takeover=every) == []
        assert store.statuses(every) == {
            a: "succeeded",
            b: "cancelled",
            c: "cancelled",
            later: "scheduled",
        }
        assert store.job_totals(Q)["t"]["started"] == 2

    def test_cancel_a_job_that_has_not_finished(self, store: Store) -> None:
        a, b, c, d = store.enqueue(Q, [NewJob("t", x) for x in (b"a", b"b", b"c", b"d")])
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=30)
        store.reserve(Q, "w", 30, 1)  # a runs
        assert store.cancel(b) is True
        assert store.cancel(b) is False
        assert store.cancel(later) is True
        assert store.cancel("999999999") is False
        rec = store.record(b)
        assert rec is not None and rec.status == "cancelled"
        assert _payloads(store.snapshot(Q)) == [b"c", b"d"]
        assert store.requeue(b) is True
        assert _payloads(store.snapshot(Q)) == [b"b", b"c", b"d"]
        (got,) = store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(got.id, "succeeded", result=b"1")], ttl=60)
        assert store.cancel(got.id) is False  # finished

    def test_cancel_a_running_job_ends_its_lease(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        assert [i.id for i in store.reserve(Q, "w", 30, 2)] == [a, b]
        assert store.cancel(a) is True
        assert store.statuses([a, b]) == {a: "cancelled", b: "running"}
        assert store.extend(Q, [a, b], "w", 30) == 1  # the owner no longer holds it
        # Its worker's late outcome is left alone: settled is the one it still holds.
        outcomes = [Outcome(a, "succeeded", result=b"late"), Outcome(b, "failed", error="e")]
        assert store.settle(Q, "w", outcomes, ttl=60) == 1
        rec = store.record(a)
        assert rec is not None and rec.status == "cancelled" and rec.result is None
        assert store.requeue(a) is True  # and it can run again, from its place
        assert [i.id for i in store.reserve(Q, "w2", 30, 1)] == [a]

    def test_records_list_newest_first_and_filter(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", str(i).encode()) for i in range(4)])
        store.enqueue(OTHER, [NewJob("t", b"other")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(ids[0], "failed", error="e")], ttl=60)
        assert [r.id for r in store.records(Q)] == ids[::-1]
        assert [r.id for r in store.records(Q, "failed")] == [ids[0]]
        assert [r.id for r in store.records(Q, "queued", limit=2)] == [ids[3], ids[2]]
        assert [r.id for r in store.records(Q, "queued", limit=2, offset=2)] == [ids[1]]
        assert len(store.records()) == 5
        assert set(store.queues()) >= {Q, OTHER}

    def test_statuses_of_many_jobs_in_one_call(self, store: Store) -> None:
        a, b, c = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b"), NewJob("t", b"c")])
        store.reserve(Q, "w", 30, 1)
        store.cancel(c)
        (plain,) = store.push(Q, [b"not a job"])
        assert store.statuses([a, b, c, "999999", plain, "junk"]) == {
            a: "running",
            b: "queued",
            c: "cancelled",
        }

    def test_progress_is_stored_for_the_owner_only(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 30, 1)
        assert store.set_progress(a, "w", "[0.5, null]") is True
        assert store.set_progress(a, "other", "[0.9, null]") is False
        rec = store.record(a)
        assert rec is not None and rec.progress == "[0.5, null]"

    def test_finished_jobs_are_purged_after_their_ttl(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        store.reserve(Q, "w", 30, 2)
        store.settle(Q, "w", [Outcome(a, "succeeded")], ttl=0.1)
        store.settle(Q, "w", [Outcome(b, "succeeded")], ttl=60)
        time.sleep(0.15)
        assert store.purge_expired() == 1
        assert store.record(a) is None and store.record(b) is not None

    def test_enqueue_respects_maxsize_front_and_delay(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")], maxsize=3)
        with pytest.raises(Full):
            store.enqueue(Q, [NewJob("t", b"c"), NewJob("t", b"d")], maxsize=3)
        store.enqueue(Q, [NewJob("t", b"first")], front=True, maxsize=3)
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=30)
        assert _payloads(store.snapshot(Q)) == [b"first", b"a", b"b"]
        rec = store.record(later)
        assert rec is not None and rec.status == "scheduled"

    def test_reserving_or_popping_none_takes_nothing(self, store: Store) -> None:
        store.push(Q, [b"a", b"b"])
        assert store.reserve(Q, "w", 30, 0) == []
        assert store.pop(Q, 0) == []
        assert store.counts(Q).ready == 2

    def test_an_empty_result_is_kept_as_empty_bytes(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "succeeded", result=b"")], ttl=60)
        rec = store.record(a)
        assert rec is not None and rec.result == b""

    def test_worker_heartbeats_expire(self, store: Store) -> None:
        w = WorkerInfo("w1", "host", 123, "thread", 8, ("default",), busy=2, started_at=time.time())
        store.heartbeat(w, ttl=0.2)
        store.heartbeat(WorkerInfo("w2", "host", 124, "async", 100, ("a", "b")), ttl=30)
        seen = store.workers()
        assert [x.id for x in seen] == ["w1", "w2"]
        assert seen[0].busy == 2 and seen[1].queues == ("a", "b") and seen[0].last_seen > 0
        time.sleep(0.25)
        assert [x.id for x in store.workers()] == ["w2"]
        store.forget_worker("w2")
        assert store.workers() == []

    def test_a_deferred_job_goes_back_uncounted(self, store: Store) -> None:
        (jid,) = store.enqueue(Q, [NewJob("t", b"x")])
        (first,) = store.reserve(Q, "w", 30, 1)
        assert first.deliveries == 1
        assert store.settle(Q, "w", [Outcome(jid, "deferred", retry_in=0.1)], 60) == 1
        assert store.record(jid).status == "scheduled"  # type: ignore[union-attr]
        time.sleep(0.15)
        (again,) = store.reserve(Q, "w", 30, 1)
        assert again.id == jid and again.deliveries == 1 and again.failures == 0
        assert store.settle(Q, "w", [Outcome(jid, "deferred")], 60) == 1
        assert store.rank(Q, jid) == 0

    def test_releasing_a_slot_readies_the_first_job_waiting_for_it(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"1"), NewJob("t", b"2"), NewJob("t", b"3")])
        assert store.acquire_slot("s", "holder", 1, 30) is None
        items = store.reserve(Q, "w", 30, 3)
        outcomes = [
            Outcome(i.id, "deferred", retry_in=30, slot="s", slot_limit=1) for i in reversed(items)
        ]
        assert store.settle(Q, "w", outcomes, 60) == 3
        assert store.reserve(Q, "w", 30, 3) == []  # all three wait for the slot
        assert store.release_slot("s", "holder")
        (first,) = store.reserve(Q, "w", 30, 3)
        assert first.id == ids[0]  # the first in queue order, whatever order they parked in
        # The freed slot is kept for it: a newcomer is refused, the readied job gets it.
        assert store.acquire_slot("s", "newcomer", 1, 30) is not None
        assert store.acquire_slot("s", f"{first.id}:2", 1, 30, claim=first.id) is None
        assert store.slot_holders("s") == [f"{first.id}:2"]
        assert not store.release_slot("s", "nobody")  # a release by no holder still wakes one
        assert [i.id for i in store.reserve(Q, "w", 30, 3)] == [ids[1]]
        assert store.slot_holders("s") == [f"{first.id}:2"]  # but keeps nothing for it

    def test_a_job_parked_for_a_slot_that_freed_meanwhile_is_ready_at_once(
        self, store: Store
    ) -> None:
        (jid,) = store.enqueue(Q, [NewJob("t", b"x")])
        store.reserve(Q, "w", 30, 1)
        out = Outcome(jid, "deferred", retry_in=30, slot="free", slot_limit=1)
        assert store.settle(Q, "w", [out], 60) == 1
        assert [i.id for i in store.reserve(Q, "w", 30, 1)] == [jid]
