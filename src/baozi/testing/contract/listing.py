"""The listing part of the conformance suite: pages of jobs by key (``records_page``), the
oldest ready job of each queue (``oldest_ready``), the jobs each owner runs (``running_jobs``)
and the worker a record names (``JobRecord.worker``)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ...backends.base import JobRecord, NewJob, Outcome, Store
from ._common import OTHER, Q


def _all_pages(
    store: Store, between: int = 0, cursor: str | None = None, **filters: Any
) -> list[list[JobRecord]]:
    """Every page of a listing of 10 jobs a page, from ``cursor`` to the end; ``between`` new
    jobs are enqueued in each of two queues before each page after the first."""
    pages: list[list[JobRecord]] = []
    for _ in range(1000):  # a store that walks may return short pages: never endless
        page, cursor = store.records_page(cursor=cursor, limit=10, **filters)
        pages.append(page)
        if cursor is None:
            return pages
        for queue in (Q, OTHER):
            store.enqueue(queue, [NewJob("fresh", b"new") for _ in range(between)])
    raise AssertionError("records_page never returned a None cursor")


def _ids(pages: list[list[JobRecord]]) -> list[str]:
    return [rec.id for page in pages for rec in page]


class ListingContract:
    """Tests of a ``store`` fixture: listing jobs for a dashboard."""

    def test_pages_list_every_job_once_newest_first_while_jobs_are_added(
        self, store: Store
    ) -> None:
        before: list[str] = []  # two queues, interleaved: one order across both
        for i in range(30):
            before[:0] = store.enqueue(Q if i % 3 else OTHER, [NewJob("t", b"%d" % i)])
        pages = _all_pages(store, between=4)
        assert _ids(pages) == before  # every old job once, in order, and none of the new
        assert [len(p) for p in pages[:3]] == [10, 10, 10]
        assert all(rec.task == "t" for page in pages for rec in page)

        in_q = [rec.id for rec in store.records(Q, limit=1000)]  # the new ones are old now
        assert len(in_q) == 20 + 4 * (len(pages) - 1)
        assert _ids(_all_pages(store, between=3, queue=Q)) == in_q

    def test_a_page_is_newest_first_as_records_lists_and_full_pages_are_limit_long(
        self, store: Store
    ) -> None:
        store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(7)])
        page, cursor = store.records_page(limit=3)
        assert [r.id for r in page] == [r.id for r in store.records(limit=3)]
        assert cursor is not None
        rest = _ids(_all_pages(store, cursor=cursor))
        assert rest == [r.id for r in store.records(limit=100)][3:]

    def test_a_listing_with_nothing_to_list_ends_at_once(self, store: Store) -> None:
        assert store.records_page() == ([], None)
        assert store.records_page(queue="no-such-queue") == ([], None)
        store.enqueue(Q, [NewJob("t", b"a")])
        page, cursor = store.records_page(task="no-such-task")
        assert page == [] and cursor is None

    def test_pages_filter_by_queue_status_and_task(self, store: Store) -> None:
        a, b, c = store.enqueue(
            Q, [NewJob("mail.send", b"a"), NewJob("t", b"b"), NewJob("t", b"c")]
        )
        (d,) = store.enqueue(OTHER, [NewJob("mail.send", b"d")])
        (e,) = store.enqueue(Q, [NewJob("t", b"e")], delay=60)
        store.claim(Q, "w", 30, [b])
        store.claim(Q, "w", 30, [c])
        store.settle(Q, "w", [Outcome(c, "failed", error="{}")], ttl=60)

        def ids(**filters: Any) -> set[str]:
            return set(_ids(_all_pages(store, **filters)))

        assert ids(queue=Q) == {a, b, c, e} and ids(queue=OTHER) == {d}
        assert ids(status="queued") == {a, d}
        assert ids(status="running") == {b}
        assert ids(status="failed") == {c}
        assert ids(status="scheduled") == {e}
        assert ids(status="succeeded") == set()
        assert ids(task="mail.send") == {a, d} and ids(task="mail") == set()
        assert ids(queue=Q, task="mail.send", status="queued") == {a}

    def test_pages_filter_by_creation_time(self, store: Store) -> None:
        ids = store.enqueue(Q, [NewJob("t", b"a")])
        ids += store.enqueue(Q, [NewJob("t", b"b"), NewJob("t", b"c")])
        created = {i: rec.created_at for i, rec in store.records_of(ids).items()}
        for at in created.values():  # since is kept, until left out
            since = set(_ids(_all_pages(store, since=at)))
            assert since == {i for i, t in created.items() if t >= at}
            until = set(_ids(_all_pages(store, until=at)))
            assert until == {i for i, t in created.items() if t < at}
            assert set(_ids(_all_pages(store, since=at, until=at))) == set()
        assert set(_ids(_all_pages(store, since=min(created.values())))) == set(ids)
        assert _all_pages(store, since=time.time() + 60) == [[]]

    def test_a_search_finds_a_job_by_its_id_or_a_part_of_its_task_in_any_case(
        self, store: Store
    ) -> None:
        a, b, c = store.enqueue(
            Q, [NewJob("reports.Build", b"a"), NewJob("mail.send", b"b"), NewJob("t", b"c")]
        )

        def found(search: str, **filters: Any) -> set[str]:
            return set(_ids(_all_pages(store, search=search, **filters)))

        assert found("BUILD") == {a} and found("report") == {a} and found("s.b") == {a}
        assert found("mail.SEND") == {b}
        assert found(c) == {c}  # the id, whole
        assert found(c, queue=OTHER) == set()
        assert found("nothing like it") == set()
        assert found(".") == {a, b}
        assert found("") == {a, b, c}  # every name contains it

    def test_a_search_folds_ascii_letters_only(self, store: Store) -> None:
        (job,) = store.enqueue(Q, [NewJob("Über.Tâche", b"x")])

        def found(search: str) -> list[str]:
            return [rec.id for rec in store.records_page(search=search)[0]]

        assert found("über.tâche") == [] and found("ÜBER.tÂche") == []
        assert found("ÜBER.TâCHE") == [job] and found("Über.tâche") == [job]

    def test_a_cursor_the_store_did_not_make_is_refused(self, store: Store) -> None:
        store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(3)])
        for junk in ("", "junk", "p", "p-1", "p1.5", "1", " p1", "p01", "p1\n"):
            with pytest.raises(ValueError, match="cursor"):
                store.records_page(cursor=junk)
        with pytest.raises(ValueError, match="status"):
            store.records_page(status="done")
        with pytest.raises(ValueError, match="limit"):
            store.records_page(limit=0)

    def test_oldest_ready_is_the_creation_time_of_the_first_ready_job_enqueued(
        self, store: Store
    ) -> None:
        (low,) = store.enqueue(Q, [NewJob("t", b"low", 5)])
        (high,) = store.enqueue(Q, [NewJob("t", b"high", 0)])
        (front,) = store.enqueue(Q, [NewJob("t", b"front", 5)], front=True)
        store.enqueue(OTHER, [NewJob("t", b"later", 0)], delay=60)
        records = store.records_of([low, high, front])
        assert store.oldest_ready([Q, OTHER, "no-such-queue"]) == {Q: records[low].created_at}
        store.claim(Q, "w", 30, [low])  # running: no longer ready
        assert store.oldest_ready([Q]) == {Q: records[high].created_at}
        store.claim(Q, "w", 30, [high])
        assert store.oldest_ready([Q]) == {Q: records[front].created_at}
        store.claim(Q, "w", 30, [front])
        assert store.oldest_ready([Q, OTHER]) == {}
        store.settle(Q, "w", [Outcome(high, "retry")], ttl=60)  # ready again, at its place
        assert store.oldest_ready([Q]) == {Q: records[high].created_at}

    def test_a_job_whose_lease_ran_out_is_ready_for_oldest_ready(self, store: Store) -> None:
        (a,) = store.enqueue(Q, [NewJob("t", b"a")])
        store.enqueue(Q, [NewJob("t", b"b")])
        store.claim(Q, "dead", 0.1, [a])
        time.sleep(0.15)
        rec = store.record(a)
        assert rec is not None and rec.status == "queued"
        assert store.oldest_ready([Q]) == {Q: rec.created_at}

    def test_running_jobs_names_each_owners_live_leases(self, store: Store) -> None:
        a, b, c, d = store.enqueue(Q, [NewJob("t", b"%d" % i) for i in range(4)])
        (e,) = store.enqueue(OTHER, [NewJob("t", b"e")])
        assert store.running_jobs([Q]) == {}
        store.claim(Q, "one", 30, [a, b])
        store.claim(Q, "two", 30, [c])
        store.claim(OTHER, "two", 30, [e])
        store.claim(Q, "dead", 0.1, [d])
        time.sleep(0.15)  # d's lease runs out: held by no one
        found = {owner: sorted(ids) for owner, ids in store.running_jobs([Q]).items()}
        assert found == {"one": sorted([a, b]), "two": [c]}
        both = {owner: sorted(ids) for owner, ids in store.running_jobs([Q, OTHER]).items()}
        assert both == {"one": sorted([a, b]), "two": sorted([c, e])}
        store.settle(Q, "one", [Outcome(a, "succeeded")], ttl=60)
        assert store.running_jobs([Q])["one"] == [b]
        assert store.running_jobs([]) == {}

    def test_a_record_names_the_worker_running_it_and_then_the_one_that_ran_it(
        self, store: Store
    ) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])

        def worker(job_id: str) -> str | None:
            rec = store.record(job_id)
            assert rec is not None
            return rec.worker

        assert worker(a) is None  # never run
        store.claim(Q, "w1", 30, [a])
        assert worker(a) == "w1"
        store.settle(Q, "w1", [Outcome(a, "retry", error="{}")], ttl=60)
        assert store.statuses([a]) == {a: "queued"} and worker(a) == "w1"
        store.claim(Q, "w2", 30, [a])
        assert worker(a) == "w2"
        store.settle(Q, "w2", [Outcome(a, "deferred", retry_in=30)], ttl=60)  # did not run
        assert worker(a) == "w1"
        store.claim(Q, "w3", 30, [b])
        store.settle(Q, "w3", [Outcome(b, "failed", error="{}")], ttl=60)
        assert worker(b) == "w3"
        assert store.requeue(b) and worker(b) is None  # retried by hand: starts over
        store.claim(Q, "w4", 30, [b])
        store.settle(Q, "w4", [Outcome(b, "succeeded", result=b"1")], ttl=60)
        assert worker(b) == "w4"
        assert [r.worker for r in store.records_page(queue=Q)[0]] == ["w4", "w1"]

    def test_a_job_cancelled_while_it_runs_keeps_its_worker(self, store: Store) -> None:
        a, b = store.enqueue(Q, [NewJob("t", b"a"), NewJob("t", b"b")])
        store.claim(Q, "w", 30, [a])
        assert store.cancel(a) and store.cancel(b)
        rec_a, rec_b = store.record(a), store.record(b)
        assert rec_a is not None and rec_a.status == "cancelled" and rec_a.worker == "w"
        assert rec_b is not None and rec_b.status == "cancelled" and rec_b.worker is None
        assert store.requeue(a)
        rec_a = store.record(a)
        assert rec_a is not None and rec_a.worker is None
