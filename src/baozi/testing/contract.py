"""Behaviour every store must show, written once and run against every backend.

Usage (pytest)::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            s = open_store("mystore://...")  # fresh and empty
            yield s
            s.close()
"""

from __future__ import annotations

import threading
import time

import pytest

from ..backends.base import NewJob, Outcome, Store, WorkerInfo
from ..errors import Full
from ._totals import TotalsContract

Q = "contract"
OTHER = "contract-other"


def _payloads(items: list) -> list[bytes]:  # type: ignore[type-arg]
    return [i.payload for i in items]


class StoreContract(TotalsContract):
    """Subclass and provide a ``store`` fixture; every ``test_*`` method here then runs on it
    (and those of the parts of the contract in other modules, which it inherits)."""

    # -- order ------------------------------------------------------------------------------

    def test_back_pushes_come_out_first_in_first_out(self, store: Store) -> None:
        store.push(Q, [b"a", b"b"])
        store.push(Q, [b"c"])
        assert _payloads(store.reserve(Q, "w", 30, 10)) == [b"a", b"b", b"c"]

    def test_front_pushes_come_out_last_in_first_out(self, store: Store) -> None:
        for p in (b"a", b"b", b"c"):
            store.push(Q, [p], front=True)
        assert _payloads(store.reserve(Q, "w", 30, 10)) == [b"c", b"b", b"a"]

    def test_a_front_batch_ends_reversed_like_extendleft(self, store: Store) -> None:
        store.push(Q, [b"x"])
        store.push(Q, [b"a", b"b", b"c"], front=True)
        assert _payloads(store.snapshot(Q)) == [b"c", b"b", b"a", b"x"]

    def test_priority_orders_before_position(self, store: Store) -> None:
        store.push(Q, [b"p5"], 5)
        store.push(Q, [b"p1-a", b"p1-b"], [1, 1])
        store.push(Q, [b"p1-front"], 1, front=True)
        store.push(Q, [b"p-neg"], -3)
        store.push(Q, [b"p1.5"], 1.5)
        assert _payloads(store.snapshot(Q)) == [
            b"p-neg",
            b"p1-front",
            b"p1-a",
            b"p1-b",
            b"p1.5",
            b"p5",
        ]

    def test_ids_are_unique_strings_in_push_order(self, store: Store) -> None:
        ids = store.push(Q, [b"a", b"b", b"c"]) + store.push(OTHER, [b"d"])
        assert all(isinstance(i, str) for i in ids)
        assert len(set(ids)) == 4
        store.clear(Q)
        assert not set(store.push(Q, [b"e"])) & set(ids)

    def test_queues_are_independent(self, store: Store) -> None:
        store.push(Q, [b"a"])
        store.push(OTHER, [b"b"])
        assert _payloads(store.reserve(OTHER, "w", 30, 5)) == [b"b"]
        assert store.counts(Q).ready == 1

    # -- leases ------------------------------------------------------------------------------

    def test_reserve_leases_items_and_counts_them(self, store: Store) -> None:
        store.push(Q, [b"a", b"b", b"c"])
        got = store.reserve(Q, "w", 30, 2)
        assert [i.deliveries for i in got] == [1, 1]
        c = store.counts(Q)
        assert (c.ready, c.leased, c.scheduled, c.total) == (1, 2, 0, 3)

    def test_reserve_of_an_empty_queue_returns_nothing(self, store: Store) -> None:
        assert store.reserve(Q, "w", 30, 3) == []

    def test_ack_removes_only_the_owners_items(self, store: Store) -> None:
        a, b = store.push(Q, [b"a", b"b"])
        store.reserve(Q, "w1", 30, 1)
        store.reserve(Q, "w2", 30, 1)
        assert store.ack(Q, [a, b], "w1") == 1
        assert store.counts(Q).leased == 1
        assert store.ack(Q, [a], "w1") == 0
        assert store.ack(Q, ["not-an-id", "999999999"], "w1") == 0

    def test_release_returns_an_item_to_its_original_place(self, store: Store) -> None:
        store.push(Q, [b"a", b"b", b"c"])
        first = store.reserve(Q, "w", 30, 1)[0]
        store.push(Q, [b"d"])
        assert store.release(Q, [first.id], "w") == 1
        assert _payloads(store.snapshot(Q)) == [b"a", b"b", b"c", b"d"]
        assert store.reserve(Q, "w", 30, 1)[0].deliveries == 2

    def test_release_by_another_owner_does_nothing(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.reserve(Q, "w1", 30, 1)
        assert store.release(Q, [a], "w2") == 0
        assert store.counts(Q).leased == 1

    def test_release_with_delay_schedules_the_item(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.reserve(Q, "w", 30, 1)
        store.release(Q, [a], "w", delay=0.3)
        assert store.counts(Q).scheduled == 1
        assert store.reserve(Q, "w", 30, 1) == []
        time.sleep(0.35)
        assert _payloads(store.reserve(Q, "w", 30, 1)) == [b"a"]

    def test_an_expired_lease_puts_the_item_back_in_its_place(self, store: Store) -> None:
        store.push(Q, [b"a", b"b"])
        store.reserve(Q, "dead", 0.2, 1)
        assert store.counts(Q).ready == 1
        time.sleep(0.25)
        assert store.counts(Q).ready == 2
        got = store.reserve(Q, "alive", 30, 2)
        assert _payloads(got) == [b"a", b"b"]
        assert got[0].deliveries == 2

    def test_the_first_owner_cannot_settle_an_item_someone_else_reserved(
        self, store: Store
    ) -> None:
        (a,) = store.push(Q, [b"a"])
        store.reserve(Q, "slow", 0.1, 1)
        time.sleep(0.15)
        store.reserve(Q, "fast", 30, 1)
        assert store.ack(Q, [a], "slow") == 0
        assert store.extend(Q, [a], "slow", 30) == 0
        assert store.ack(Q, [a], "fast") == 1

    def test_the_owner_may_still_ack_an_expired_lease_nobody_took(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.reserve(Q, "slow", 0.1, 1)
        time.sleep(0.15)
        assert store.counts(Q).ready == 1
        assert store.ack(Q, [a], "slow") == 1
        assert store.counts(Q).total == 0

    def test_extend_keeps_a_lease_alive(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.reserve(Q, "w", 0.2, 1)
        for _ in range(3):
            time.sleep(0.1)
            assert store.extend(Q, [a], "w", 0.2) == 1
        assert store.reserve(Q, "other", 30, 1) == []
        assert store.next_due(Q) is not None

    # -- limits -----------------------------------------------------------------------------

    def test_maxsize_refuses_a_push_that_would_not_fit_and_keeps_nothing(
        self, store: Store
    ) -> None:
        store.push(Q, [b"a", b"b"], maxsize=3)
        with pytest.raises(Full):
            store.push(Q, [b"c", b"d"], maxsize=3)
        assert _payloads(store.snapshot(Q)) == [b"a", b"b"]
        store.reserve(Q, "w", 30, 1)  # leased items do not count against maxsize
        store.push(Q, [b"c", b"d"], maxsize=3)
        assert store.counts(Q).ready == 3

    def test_maxlen_drops_from_the_other_end(self, store: Store) -> None:
        store.push(Q, [b"1", b"2", b"3"], maxlen=3)
        store.push(Q, [b"4"], maxlen=3)
        assert _payloads(store.snapshot(Q)) == [b"2", b"3", b"4"]
        store.push(Q, [b"0"], front=True, maxlen=3)
        assert _payloads(store.snapshot(Q)) == [b"0", b"2", b"3"]

    # -- time -------------------------------------------------------------------------------

    def test_delayed_items_become_ready_at_their_time(self, store: Store) -> None:
        store.push(Q, [b"later"], delay=0.3)
        store.push(Q, [b"now"])
        assert store.counts(Q).scheduled == 1
        assert _payloads(store.reserve(Q, "w", 30, 5)) == [b"now"]
        due = store.next_due(Q)
        assert due is not None and due <= time.time() + 30
        time.sleep(0.35)
        assert _payloads(store.reserve(Q, "w", 30, 5)) == [b"later"]

    def test_next_due_is_none_without_leases_or_delays(self, store: Store) -> None:
        store.push(Q, [b"a"])
        assert store.next_due(Q) is None

    # -- reading ----------------------------------------------------------------------------

    def test_rank_counts_the_items_ahead(self, store: Store) -> None:
        ids = store.push(Q, [b"a", b"b", b"c"])
        (urgent,) = store.push(Q, [b"u"], -1)
        assert [store.rank(Q, i) for i in ids] == [1, 2, 3]
        assert store.rank(Q, urgent) == 0
        store.reserve(Q, "w", 30, 1)
        assert store.rank(Q, urgent) is None
        assert [store.rank(Q, i) for i in ids] == [0, 1, 2]
        assert store.rank(Q, "999999999") is None
        assert store.rank(Q, "nonsense") is None

    def test_rank_of_a_scheduled_item_is_none(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"], delay=30)
        assert store.rank(Q, a) is None

    def test_peek_and_snapshot_read_without_taking(self, store: Store) -> None:
        store.push(Q, [b"a", b"b", b"c"])
        assert store.peek(Q, 0).payload == b"a"
        assert store.peek(Q, -1).payload == b"c"
        assert store.peek(Q, -3).payload == b"a"
        with pytest.raises(IndexError):
            store.peek(Q, 3)
        with pytest.raises(IndexError):
            store.peek(Q, -4)
        assert _payloads(store.snapshot(Q)) == [b"a", b"b", b"c"]
        assert store.counts(Q).ready == 3

    def test_pop_takes_from_either_end_without_a_lease(self, store: Store) -> None:
        store.push(Q, [b"a", b"b", b"c", b"d"])
        assert _payloads(store.pop(Q, 1, back=True)) == [b"d"]
        assert _payloads(store.pop(Q, 2)) == [b"a", b"b"]
        assert store.counts(Q).total == 1
        assert store.pop(OTHER, 1) == []

    def test_clear_removes_every_state(self, store: Store) -> None:
        store.push(Q, [b"a", b"b"])
        store.push(Q, [b"c"], delay=30)
        store.reserve(Q, "w", 30, 1)
        assert store.clear(Q) == 3
        assert store.counts(Q).total == 0

    def test_payloads_are_kept_byte_for_byte(self, store: Store) -> None:
        blob = bytes(range(256)) * 40
        store.push(Q, [blob, b""])
        assert _payloads(store.pop(Q, 2)) == [blob, b""]

    def test_large_priorities_keep_exact_order(self, store: Store) -> None:
        big = 2**62
        store.push(Q, [b"b"], big + 1)
        store.push(Q, [b"a"], big)
        assert _payloads(store.snapshot(Q)) == [b"a", b"b"]

    # -- waiting ----------------------------------------------------------------------------

    def test_wait_for_change_times_out_when_nothing_happens(self, store: Store) -> None:
        token = store.change_token()
        start = time.monotonic()
        assert store.wait_for_change(token, 0.1) is False
        assert time.monotonic() - start >= 0.09

    def test_wait_for_change_wakes_on_a_push(self, store: Store) -> None:
        token = store.change_token()
        threading.Timer(0.05, lambda: store.push(Q, [b"a"])).start()
        assert store.wait_for_change(token, 10) is True

    def test_concurrent_reservations_never_share_an_item(self, store: Store) -> None:
        store.push(Q, [str(i).encode() for i in range(400)])
        got: list[bytes] = []
        lock = threading.Lock()

        def consume(owner: str) -> None:
            while items := store.reserve(Q, owner, 30, 3):
                with lock:
                    got.extend(_payloads(items))

        threads = [threading.Thread(target=consume, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(str(i).encode() for i in range(400))

    def test_operations_that_change_nothing_wake_no_one(self, store: Store) -> None:
        store.reserve(Q, "w", 30, 1)  # first use of a queue may create it, which is a change
        store.wait_for_change(store.change_token(), 0.05)
        token = store.change_token()
        assert store.reserve(Q, "w", 30, 1) == []
        assert store.pop(Q, 1) == []
        assert store.ack(Q, ["1"], "w") == 0
        assert store.wait_for_change(token, 0.1) is False

    # -- jobs -------------------------------------------------------------------------------

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

    def test_cancel_only_a_job_that_has_not_started(self, store: Store) -> None:
        a, b, c = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b"), NewJob("t", b"c")])
        (later,) = store.enqueue(Q, [NewJob("t", b"later")], delay=30)
        store.reserve(Q, "w", 30, 1)
        assert store.cancel(a) is False  # running
        assert store.cancel(b) is True
        assert store.cancel(b) is False
        assert store.cancel(later) is True
        assert store.cancel("999999999") is False
        rec = store.record(b)
        assert rec is not None and rec.status == "cancelled"
        assert _payloads(store.snapshot(Q)) == [b"c"]
        assert store.requeue(b) is True
        assert _payloads(store.snapshot(Q)) == [b"b", b"c"]

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

    # -- coordination -----------------------------------------------------------------------

    def test_kv_set_get_delete_and_items(self, store: Store) -> None:
        assert store.kv_get("ns", "a") is None
        store.kv_set("ns", "a", b"1")
        store.kv_set("ns", "b", b"2")
        store.kv_set("other", "a", b"x")
        store.kv_set("ns", "a", b"3")
        assert store.kv_get("ns", "a") == b"3"
        assert store.kv_items("ns") == {"a": b"3", "b": b"2"}
        assert store.kv_delete("ns", "a") == b"3"
        assert store.kv_delete("ns", "a") is None
        assert store.kv_items("ns") == {"b": b"2"}
        assert store.kv_clear("ns") == 1
        assert store.kv_items("ns") == {}
        assert store.kv_items("other") == {"a": b"x"}

    def test_kv_setdefault_keeps_the_first_value(self, store: Store) -> None:
        assert store.kv_setdefault("ns", "k", b"first") == b"first"
        assert store.kv_setdefault("ns", "k", b"second") == b"first"
        assert store.kv_get("ns", "k") == b"first"

    def test_kv_cas_swaps_only_from_the_expected_value(self, store: Store) -> None:
        assert store.kv_cas("ns", "k", None, b"1")
        assert not store.kv_cas("ns", "k", None, b"2")
        assert not store.kv_cas("ns", "k", b"0", b"2")
        assert store.kv_cas("ns", "k", b"1", b"2")
        assert store.kv_get("ns", "k") == b"2"
        assert store.kv_cas("ns", "k", b"2", None)
        assert store.kv_get("ns", "k") is None

    def test_kv_incr_counts_from_zero_in_ints_and_floats(self, store: Store) -> None:
        assert store.kv_incr("ns", "n", 1) == 1
        assert store.kv_incr("ns", "n", 41) == 42
        assert store.kv_incr("ns", "n", -2) == 40
        assert store.kv_get("ns", "n") == b"40"
        total = store.kv_incr("ns", "n", 0.5)
        assert total == 40.5 and isinstance(total, float)
        assert store.kv_incr("ns", "f", 2.0) == 2.0
        assert isinstance(store.kv_incr("ns", "f", 1), float)

    def test_kv_incr_of_a_non_number_changes_nothing(self, store: Store) -> None:
        store.kv_set("ns", "s", b'"text"')
        with pytest.raises(TypeError, match="'s'"):
            store.kv_incr("ns", "s", 1)
        assert store.kv_get("ns", "s") == b'"text"'

    def test_slots_admit_up_to_the_limit(self, store: Store) -> None:
        assert store.acquire_slot("s", "a", 2, 30) is None
        assert store.acquire_slot("s", "b", 2, 30) is None
        wait = store.acquire_slot("s", "c", 2, 30)
        assert wait is not None and 25 < wait <= 30
        assert store.acquire_slot("s", "a", 2, 30) is None  # a holder keeps its slot
        assert store.slot_holders("s") == ["a", "b"]
        assert store.release_slot("s", "a")
        assert not store.release_slot("s", "a")
        assert store.acquire_slot("s", "c", 2, 30) is None
        assert store.slot_holders("s") == ["b", "c"]

    def test_a_slot_frees_itself_when_its_time_runs_out(self, store: Store) -> None:
        assert store.acquire_slot("s", "dead", 1, 0.2) is None
        assert store.acquire_slot("s", "b", 1, 30) is not None
        time.sleep(0.25)
        assert store.acquire_slot("s", "b", 1, 30) is None
        assert not store.release_slot("s", "dead")
        assert store.slot_holders("s") == ["b"]

    def test_renewing_slots_keeps_them(self, store: Store) -> None:
        store.acquire_slot("s", "a", 5, 0.3)
        store.acquire_slot("s", "b", 5, 0.3)
        assert store.renew_slots("s", ["a", "gone"], 30) == 1
        time.sleep(0.35)
        assert store.slot_holders("s") == ["a"]
        assert store.renew_slots("s", ["b"], 30) == 0

    def test_releasing_a_slot_wakes_waiters(self, store: Store) -> None:
        store.acquire_slot("s", "a", 1, 30)
        token = store.change_token()
        timer = threading.Timer(0.05, store.release_slot, ("s", "a"))
        timer.start()
        assert store.wait_for_change(token, 5)
        timer.join()

    def test_rate_limit_admits_one_per_interval(self, store: Store) -> None:
        assert store.rate_acquire("r", 0.2) == 0.0
        wait = store.rate_acquire("r", 0.2)
        assert 0.1 < wait <= 0.2
        time.sleep(wait)
        assert store.rate_acquire("r", 0.2) == 0.0

    def test_rate_limit_burst(self, store: Store) -> None:
        assert [store.rate_acquire("b", 10, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert store.rate_acquire("b", 10, burst=3) > 9

    def test_discard_removes_waiting_items_only(self, store: Store) -> None:
        a, b, c = store.push(Q, [b"a", b"b", b"c"])
        (s,) = store.push(Q, [b"s"], delay=30)
        (leased,) = store.reserve(Q, "w", 30, 1)
        assert leased.id == a
        assert store.discard(Q, [a, c, s, "999999999"]) == 2
        assert _payloads(store.snapshot(Q)) == [b"b"]
        assert store.counts(Q).scheduled == 0

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

    def test_set_queue_options_wakes_waiters(self, store: Store) -> None:
        token = store.change_token()
        timer = threading.Timer(0.05, lambda: store.set_queue_options(Q, paused=True))
        timer.start()
        assert store.wait_for_change(token, 5)
        timer.join()
        assert store.queue_options(Q)["paused"] is True

    def test_a_paused_queue_hands_out_nothing_until_resumed(self, store: Store) -> None:
        store.push(Q, [b"a", b"b"])
        store.set_queue_options(Q, paused=True)
        assert store.reserve(Q, "w", 30, 5) == []
        assert store.settle_and_reserve(Q, "w", [], 60, 30, 5) == (0, [])
        store.push(Q, [b"c"])  # adding still works
        assert store.counts(Q).ready == 3
        store.set_queue_options(Q, paused=False)
        assert _payloads(store.reserve(Q, "w", 30, 5)) == [b"a", b"b", b"c"]

    def test_a_paused_queue_hands_out_nothing_when_settling_either(self, store: Store) -> None:
        (jid,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.enqueue(Q, [NewJob("t", b"b")])
        store.reserve(Q, "w", 30, 1)
        store.set_queue_options(Q, paused=True)
        held, got = store.settle_and_reserve(Q, "w", [Outcome(jid, "succeeded")], 60, 30, 5)
        assert held == 1 and got == []

    def test_rate_tickets_book_the_next_free_times_in_order(self, store: Store) -> None:
        assert store.rate_acquire("t", 0.2, ticket="a") == 0.0
        wait_b = store.rate_acquire("t", 0.2, ticket="b")
        wait_c = store.rate_acquire("t", 0.2, ticket="c")
        assert 0.1 < wait_b <= 0.2 and 0.3 < wait_c <= 0.4  # booked one after the other
        again = store.rate_acquire("t", 0.2, ticket="b")  # asking early changes nothing
        assert 0 < again <= wait_b
        assert store.rate_acquire("t", 0.2) > 0.4  # an unticketed event waits behind them
        time.sleep(wait_b + 0.01)
        assert store.rate_acquire("t", 0.2, ticket="b") == 0.0  # its turn: admitted
        assert store.rate_acquire("t", 0.2, ticket="c") > 0

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

    def test_kv_incr_stays_in_range(self, store: Store) -> None:
        store.kv_incr("ns", "big", 2**63 - 1)
        with pytest.raises(OverflowError):
            store.kv_incr("ns", "big", 1)
        assert store.kv_get("ns", "big") == str(2**63 - 1).encode()
        store.kv_incr("ns", "f", 1e308)
        with pytest.raises(OverflowError):
            store.kv_incr("ns", "f", 1e308)
