"""The workflow part of the conformance suite: unique keys, dependencies, and records kept
until removed."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from ...backends.base import Deduplicated, Item, NewJob, Outcome, Store
from ...errors import Full, JobNotFound
from ._common import OTHER, Q


def _status(store: Store, job_id: str) -> str:
    rec = store.record(job_id)
    assert rec is not None, f"job {job_id} has no record"
    return rec.status


def _run(store: Store, job_id: str, status: str = "succeeded", queue: str = Q) -> None:
    """Reserve ``job_id`` (the next ready job of ``queue``) and settle it with ``status``."""
    (item,) = store.reserve(queue, "w", 30, 1)
    assert item.id == job_id
    error = json.dumps({"type": "ValueError", "message": "x", "traceback": ""})
    outcome = Outcome(job_id, status, result=b"1" if status == "succeeded" else None, error=error)
    assert store.settle(queue, "w", [outcome], ttl=60) == 1


class WorkflowContract:
    """Tests of a ``store`` fixture: unique keys, dependencies, failed records kept."""

    # -- unique keys -------------------------------------------------------------------------

    def test_a_held_unique_key_makes_no_second_job(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a", unique_key="k")])
        assert not isinstance(a, Deduplicated)
        (again,) = store.enqueue(OTHER, [NewJob("t2", b"b", unique_key="k")])  # any queue
        assert isinstance(again, Deduplicated) and again == a
        assert store.counts(Q).total == 1 and store.counts(OTHER).total == 0
        rec = store.record(a)
        assert rec is not None and rec.unique_key == "k"
        (other,) = store.enqueue(Q, [NewJob("t", b"c", unique_key="k2")])
        assert other != a and not isinstance(other, Deduplicated)
        assert store.job_totals(Q)["t"]["enqueued"] == 2  # a deduplicated enqueue counts nothing

    def test_one_call_dedups_its_own_jobs(self, store: Store) -> None:
        ids = store.enqueue(
            Q,
            [
                NewJob("t", b"a", unique_key="k"),
                NewJob("t", b"b"),
                NewJob("t", b"c", unique_key="k"),
            ],
        )
        assert ids[2] == ids[0] and isinstance(ids[2], Deduplicated)
        assert [i.payload for i in store.snapshot(Q)] == [b"a", b"b"]

    def test_queued_or_running_frees_the_key_when_the_job_ends(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a", unique_key="k")])
        (item,) = store.reserve(Q, "w", 30, 1)
        assert store.enqueue(Q, [NewJob("t", b"b", unique_key="k")]) == [a]  # running holds it
        store.settle(Q, "w", [Outcome(a, "succeeded", result=b"1")], ttl=60)
        (b,) = store.enqueue(Q, [NewJob("t", b"b", unique_key="k")])
        assert b != a and not isinstance(b, Deduplicated)

    def test_queued_holds_the_key_only_until_the_job_starts(self, store: Store) -> None:
        new = NewJob("t", b"a", unique_key="k", unique_while="queued")
        (a,) = store.enqueue(Q, [new], delay=30)
        assert store.enqueue(Q, [new]) == [a]  # scheduled is before running: held
        store.cancel(a)
        (b,) = store.enqueue(Q, [new])
        assert b != a
        store.reserve(Q, "w", 30, 1)
        (c,) = store.enqueue(Q, [new])  # b is running: the key is free
        assert c not in (a, b) and not isinstance(c, Deduplicated)

    def test_running_holds_the_key_only_while_a_job_runs(self, store: Store) -> None:
        new = NewJob("t", b"a", unique_key="k", unique_while="running")
        (a,), (b,) = store.enqueue(Q, [new]), store.enqueue(Q, [new])
        assert a != b  # queued jobs do not hold it
        store.reserve(Q, "w", 30, 1)  # a runs
        (again,) = store.enqueue(Q, [new])
        assert again == a and isinstance(again, Deduplicated)

    def test_a_retry_waiting_its_turn_still_holds_the_key(self, store: Store) -> None:
        new = NewJob("t", b"a", unique_key="k", unique_while="queued")
        (a,) = store.enqueue(Q, [new])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "retry", error="e", retry_in=30)], ttl=60)
        assert store.enqueue(Q, [new]) == [a]

    def test_unique_for_holds_the_key_after_the_job_ends_however_it_ended(
        self, store: Store
    ) -> None:
        for status in ("succeeded", "failed"):
            key = f"for-{status}"
            new = NewJob("t", b"a", unique_key=key, unique_for=0.6)
            (a,) = store.enqueue(Q, [new])
            _run(store, a, status)
            assert store.enqueue(Q, [new]) == [a]
            time.sleep(0.7)
            (b,) = store.enqueue(Q, [new])
            assert b != a
            store.cancel(b)

    def test_a_record_is_kept_while_it_holds_its_key(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a", unique_key="k", unique_for=60)])
        (item,) = store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "succeeded", result=b"1")], ttl=0.01)
        time.sleep(0.05)
        store.purge_expired()
        assert store.record(a) is not None
        assert store.enqueue(Q, [NewJob("t", b"b", unique_key="k")]) == [a]

    def test_racing_enqueues_of_one_key_make_one_job(self, store: Store) -> None:
        handles = [type(store)(store.url) for _ in range(8)]
        got: list[str] = []
        start = threading.Barrier(len(handles))

        def enqueue(handle: Store) -> None:
            start.wait()
            for _ in range(5):
                got.extend(handle.enqueue(Q, [NewJob("t", b"x", unique_key="race")]))

        threads = [threading.Thread(target=enqueue, args=(h,)) for h in handles]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for h in handles:
                h.close()
        assert len(got) == 40 and len(set(got)) == 1
        assert sum(not isinstance(i, Deduplicated) for i in got) == 1
        assert store.counts(Q).total == 1

    # -- dependencies ------------------------------------------------------------------------

    def test_a_dependent_waits_until_its_dependencies_succeed(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        (c,) = store.enqueue(OTHER, [NewJob("t", b"c", depends_on=(a, b))])
        assert _status(store, c) == "waiting"
        assert store.statuses([c]) == {c: "waiting"}
        assert store.counts(OTHER).waiting == 1 and store.counts(OTHER).ready == 0
        assert store.counts(OTHER).total == 1
        assert store.job_counts(OTHER)["waiting"] == 1
        assert [r.id for r in store.records(OTHER, "waiting")] == [c]
        assert store.rank(OTHER, c) is None and store.reserve(OTHER, "w", 30, 5) == []
        child = store.record(c)
        assert child is not None and child.parents == (a, b) and child.children == ()
        parent = store.record(a)
        assert parent is not None and parent.children == (c,) and parent.parents == ()
        _run(store, a)
        assert _status(store, c) == "waiting"
        _run(store, b)
        assert _status(store, c) == "queued"
        assert [i.id for i in store.reserve(OTHER, "w", 30, 5)] == [c]

    def test_a_waiting_job_cannot_be_claimed_until_it_is_released(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(OTHER, [NewJob("t", b"c", depends_on=(a,))])
        assert store.claim(OTHER, "w", 30, [c], takeover=[c]) == []
        assert _status(store, c) == "waiting"
        _run(store, a)
        assert [i.id for i in store.claim(OTHER, "w", 30, [c])] == [c]
        assert _status(store, c) == "running"

    def test_a_dependency_that_is_retried_keeps_its_dependents_waiting(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "retry", error="e", retry_in=0)], ttl=60)
        assert _status(store, c) == "waiting"
        time.sleep(0.15)  # an expired lease is no end either
        store.reserve(Q, "dead", 0.1, 1)
        time.sleep(0.15)
        assert _status(store, c) == "waiting"
        _run(store, a)
        assert _status(store, c) == "queued"

    @pytest.mark.parametrize("how", ["failed", "cancelled"])
    def test_what_becomes_of_dependents_when_a_dependency_does_not_succeed(
        self, store: Store, how: str
    ) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        cancel, fail, run = store.enqueue(
            OTHER,
            [
                NewJob("t", b"cancel", depends_on=(a,)),
                NewJob("t", b"fail", depends_on=(a,), on_dependency_failure="fail"),
                NewJob("t", b"run", depends_on=(a,), on_dependency_failure="run"),
            ],
        )
        (grandchild,) = store.enqueue(OTHER, [NewJob("t", b"g", depends_on=(cancel, run))])
        if how == "failed":
            _run(store, a, "failed")
        else:
            assert store.cancel(a) is True
        assert store.statuses([a, cancel, fail, run, grandchild]) == {
            a: how,
            cancel: "cancelled",
            fail: "failed",
            run: "queued",
            grandchild: "cancelled",  # cancelled with the job it waited for
        }
        failed = store.record(fail)
        assert failed is not None and failed.finished_at is not None
        error = json.loads(failed.error or "{}")
        assert error["type"] == "DependencyFailed" and a in error["message"]
        assert [i.id for i in store.reserve(OTHER, "w", 30, 5)] == [run]
        counts = store.job_counts(OTHER)
        assert (counts["cancelled"], counts["failed"], counts["waiting"]) == (2, 1, 0)

    def test_dependencies_that_have_already_ended_count_at_once(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        _run(store, a)
        _run(store, b, "failed")
        (after_a,) = store.enqueue(Q, [NewJob("t", b"1", depends_on=(a,))])
        assert _status(store, after_a) == "queued"
        after_b = store.enqueue(
            Q,
            [
                NewJob("t", b"2", depends_on=(a, b)),
                NewJob("t", b"3", depends_on=(b,), on_dependency_failure="fail"),
                NewJob("t", b"4", depends_on=(b,), on_dependency_failure="run"),
            ],
        )
        assert [_status(store, i) for i in after_b] == ["cancelled", "failed", "queued"]
        (later,) = store.enqueue(Q, [NewJob("t", b"5", depends_on=(a,))], delay=30)
        assert _status(store, later) == "scheduled"

    def test_a_dependency_the_store_does_not_hold_files_nothing(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (plain,) = store.push(Q, [b"not a job"])
        for missing in ("999999999", "junk", plain):
            with pytest.raises(JobNotFound, match="depends on"):
                store.enqueue(Q, [NewJob("t", b"ok"), NewJob("t", b"x", depends_on=(a, missing))])
        assert store.counts(Q).total == 2
        rec = store.record(a)
        assert rec is not None and rec.children == ()

    def test_a_waiting_job_takes_no_room_under_a_maxsize(self, store: Store) -> None:
        (a,) = store.enqueue(OTHER, [NewJob("t", b"a")])
        store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))], maxsize=1)
        store.push(Q, [b"x"], maxsize=1)  # fits: like a scheduled job, a waiting one is not ready
        with pytest.raises(Full):
            store.push(Q, [b"y"], maxsize=1)
        assert store.counts(Q).total == 2 and store.counts(Q).waiting == 1

    def test_a_released_dependent_honours_its_delay(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))], delay=30)
        assert _status(store, c) == "waiting"
        _run(store, a)
        assert _status(store, c) == "scheduled"
        assert store.counts(Q).scheduled == 1

    def test_a_waiting_job_can_be_cancelled_and_retried(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))])
        (d,) = store.enqueue(Q, [NewJob("t", b"d", depends_on=(c,))])
        assert store.cancel(c, running=False) is True
        assert store.statuses([a, c, d]) == {a: "queued", c: "cancelled", d: "cancelled"}
        assert store.requeue(c) is True  # it runs now: what it waited for is not waited again
        assert _status(store, c) == "queued" and _status(store, d) == "cancelled"
        assert store.counts(Q).waiting == 0

    def test_settling_many_dependencies_in_one_call_releases_once(self, store: Store) -> None:
        parents = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(50)])
        (callback,) = store.enqueue(OTHER, [NewJob("t", b"cb", depends_on=tuple(parents))])
        store.reserve(Q, "w", 30, 50)
        first = [Outcome(p, "succeeded", result=b"1") for p in parents[:30]]
        assert store.settle(Q, "w", first, ttl=60) == 30
        assert _status(store, callback) == "waiting"
        rest = [Outcome(p, "succeeded", result=b"1") for p in parents[30:]]
        assert store.settle(Q, "w", rest, ttl=60) == 20
        assert _status(store, callback) == "queued"
        assert [i.id for i in store.reserve(OTHER, "w", 30, 5)] == [callback]
        assert store.reserve(OTHER, "w", 30, 5) == []
        assert store.job_totals(OTHER)["t"]["enqueued"] == 1

    def test_the_consumer_settle_releases_dependents_too(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))])

        class Quiet:
            def wake(self) -> None:
                pass

            def offer(self, queue: str, items: list[Item], took: object) -> list[Item]:
                return list(items)

        consumer = store.consumer("w", [Q], 30, Quiet())
        try:
            (got,) = consumer.take(1)
            assert got[1].id == a
            held, taken = consumer.settle(Q, [Outcome(a, "succeeded", result=b"1")], 60, 1)
            assert held == 1
            if not taken:  # a consumer may look again only once woken
                taken = consumer.take(1)
            assert [item.id for _, item in taken] == [c]
        finally:
            consumer.close()

    def test_a_dependency_cancelled_while_running_releases_its_dependents(
        self, store: Store
    ) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,), on_dependency_failure="run")])
        store.reserve(Q, "w", 30, 1)
        assert store.cancel(a) is True
        assert _status(store, c) == "queued"
        assert store.settle(Q, "w", [Outcome(a, "succeeded", result=b"1")], ttl=60) == 0

    # -- failed records kept -----------------------------------------------------------------

    def test_failed_records_stay_until_forgotten(self, store: Store) -> None:
        a, b, c = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b"), NewJob("t", b"c")])
        store.reserve(Q, "w", 30, 2)
        error = json.dumps({"type": "ValueError", "message": "x", "traceback": ""})
        outcomes = [Outcome(a, "succeeded", result=b"1"), Outcome(b, "failed", error=error)]
        assert store.settle(Q, "w", outcomes, ttl=0.01, failed_ttl=math.inf) == 2
        (dep,) = store.enqueue(
            Q, [NewJob("t", b"d", depends_on=(c,), on_dependency_failure="fail")]
        )
        assert store.cancel(c, ttl=0.01, failed_ttl=math.inf) is True
        time.sleep(0.05)
        store.purge_expired()
        assert store.record(a) is None and store.record(c) is None
        assert _status(store, b) == "failed" and _status(store, dep) == "failed"
        assert [r.id for r in store.records(Q, "failed")] == [dep, b]
        (queued,) = store.enqueue(Q, [NewJob("t", b"e")])
        assert store.forget([b, queued, "999999999", "junk"]) == 1
        assert store.record(b) is None and _status(store, queued) == "queued"
        assert store.forget([dep]) == 1 and store.records(Q, "failed") == []

    def test_failed_records_leave_after_a_failed_ttl(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.reserve(Q, "w", 30, 1)
        store.settle(Q, "w", [Outcome(a, "failed", error="{}")], ttl=60, failed_ttl=0.01)
        time.sleep(0.05)
        assert store.purge_expired() == 1 and store.record(a) is None

    def test_forgetting_a_dependency_keeps_its_dependents_parents(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        (c,) = store.enqueue(Q, [NewJob("t", b"c", depends_on=(a,))])
        _run(store, a)
        assert store.forget([a]) == 1
        rec = store.record(c)
        assert rec is not None and rec.parents == (a,) and rec.status == "queued"

    def test_records_of_many_jobs_in_one_call(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(1200)])
        _run(store, ids[0])
        (plain,) = store.push(Q, [b"not a job"])
        found = store.records_of([*ids, ids[0], "999999999", "junk", plain])
        assert list(found) == ids or sorted(found) == sorted(ids)
        assert found[ids[0]].status == "succeeded" and found[ids[0]].result == b"1"
        assert found[ids[5]].payload == b"5" and found[ids[5]].status == "queued"
        assert store.records_of([]) == {}
