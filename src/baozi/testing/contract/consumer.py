"""The consumer part of the conformance suite: taking, hand-offs, waking, settling a turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ...backends.base import Consumer, Delivery, Item, NewJob, Outcome, Store
from ._common import OTHER, Q, payloads


class Inbox:
    """A receiver that records what it is given: it starts every job offered to it (or, with
    ``refuse``, none)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.woken = threading.Event()
        self.offered: list[Delivery] = []
        self.lock = threading.Lock()

    def wake(self) -> None:
        self.woken.set()

    def offer(self, queue: str, items: list[Item], took: Callable[[], None]) -> list[Item]:
        with self.lock:
            took()
            if self.refuse:
                self.woken.set()
                return items
            self.offered += [(queue, item) for item in items]
        self.woken.set()
        return []

    def wait(self, timeout: float = 5.0) -> bool:
        return self.woken.wait(timeout)


def _receive(consumer: Consumer, inbox: Inbox, n: int, free: int = 2) -> list[str]:
    """The ids of the first ``n`` jobs to reach a worker with ``free`` slots, handed or taken
    after a wake (wakes may be spurious, and a hand-off may follow one), within 5 s."""
    got: list[str] = []
    taken: list[str] = []
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        if not inbox.wait(max(deadline - time.monotonic(), 0)):
            break
        inbox.woken.clear()
        with inbox.lock:
            got = [i.id for _, i in inbox.offered] + taken
        if len(got) < n:
            taken += [i.id for _, i in consumer.take(min(free, n) - len(got))]
            got = [i.id for _, i in inbox.offered] + taken
    return got


def _jobs(store: Store, queue: str, *names: str) -> list[str]:
    return store.enqueue(queue, [NewJob("t", n.encode()) for n in names])


class ConsumerContract:
    """Tests of a ``store`` fixture: the consumer part of the contract."""

    @pytest.fixture
    def open_consumer(self, store: Store) -> Iterator[Callable[..., tuple[Consumer, Inbox]]]:
        opened: list[Consumer] = []

        def make(
            queues: tuple[str, ...] = (Q,), owner: str = "w", refuse: bool = False
        ) -> tuple[Consumer, Inbox]:
            inbox = Inbox(refuse)
            consumer = store.consumer(owner, queues, 30.0, inbox)
            opened.append(consumer)
            return consumer, inbox

        yield make
        for consumer in opened:
            consumer.close()

    def test_take_leases_jobs_from_the_queues_in_order(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        _jobs(store, OTHER, "o1")
        a, b = _jobs(store, Q, "a", "b")
        consumer, _ = open_consumer((Q, OTHER))
        got = consumer.take(3)
        assert [(q, i.payload) for q, i in got] == [(Q, b"a"), (Q, b"b"), (OTHER, b"o1")]
        assert got[0][1].id == a and got[0][1].deliveries == 1
        assert store.counts(Q).leased == 2 and store.record(b).status == "running"  # type: ignore[union-attr]
        assert consumer.take(1) == []

    def test_a_job_after_a_short_take_wakes_the_receiver_or_reaches_it(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, inbox = open_consumer()
        assert consumer.take(2) == []
        (job,) = _jobs(store, Q, "late")
        assert _receive(consumer, inbox, 1) == [job], "neither woken nor handed the job in 5 s"

    def test_jobs_handed_never_exceed_the_free_slots_of_the_last_take(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, inbox = open_consumer()
        assert consumer.take(2) == []
        _jobs(store, Q, *"abcde")
        assert len(_receive(consumer, inbox, 2, free=2)) == 2
        time.sleep(0.2)  # hand-offs that were going to come have come
        assert len(inbox.offered) <= 2
        assert store.counts(Q).ready == 3 and store.counts(Q).leased == 2

    def test_jobs_handed_across_queues_never_exceed_the_free_slots_of_the_last_take(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, inbox = open_consumer((Q, OTHER))
        assert consumer.take(2) == []  # two free slots, for both queues together

        def leased() -> int:
            return store.counts(Q).leased + store.counts(OTHER).leased

        for queue in (Q, OTHER, Q, OTHER, Q, OTHER):
            _jobs(store, queue, queue)
            assert leased() <= 2  # a hand-off is leased by the push itself, so this is final
        assert len(_receive(consumer, inbox, 2, free=2)) == 2
        assert leased() == 2
        assert store.counts(Q).ready + store.counts(OTHER).ready == 4

    def test_a_job_pushed_while_another_is_held_reaches_the_free_slot(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        (first,) = _jobs(store, Q, "long")
        consumer, inbox = open_consumer()
        assert [i.id for _, i in consumer.take(2)] == [first]  # one slot busy, one free
        (second,) = _jobs(store, Q, "next")
        assert _receive(consumer, inbox, 1, free=1) == [second], "the free slot got nothing"
        assert store.record(first).status == "running"  # type: ignore[union-attr]
        outcomes = [Outcome(second, "succeeded"), Outcome(first, "succeeded")]
        assert consumer.settle(Q, outcomes, 60) == (2, [])

    def test_jobs_a_receiver_does_not_start_go_back_uncounted(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, inbox = open_consumer(refuse=True)
        assert consumer.take(1) == []
        (job,) = _jobs(store, Q, "x")
        assert inbox.wait()
        deadline = time.monotonic() + 5
        while store.counts(Q).ready != 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # handed back on the consumer's thread
        (item,) = store.reserve(Q, "other", 30, 1)
        assert item.id == job and item.deliveries == 1

    def test_settle_ends_runs_and_takes_the_next_in_one_call(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        a, b, c = _jobs(store, Q, "a", "b", "c")
        _jobs(store, OTHER, "o")
        consumer, _ = open_consumer((Q, OTHER))
        assert [i.id for _, i in consumer.take(1)] == [a]
        held, got = consumer.settle(Q, [Outcome(a, "succeeded", result=b"1")], 60, then_take=3)
        assert held == 1 and store.record(a).status == "succeeded"  # type: ignore[union-attr]
        assert [(q, i.payload) for q, i in got] == [(Q, b"b"), (Q, b"c"), (OTHER, b"o")]
        held, got = consumer.settle(Q, [Outcome(b, "failed", error="{}")], 60)
        assert held == 1 and got == []

    def test_settle_leaves_jobs_the_owner_no_longer_holds(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        (a,) = _jobs(store, Q, "a")
        consumer, _ = open_consumer(owner="first")
        consumer.take(1)
        store.release(Q, [a], "first")
        store.reserve(Q, "second", 30, 1)
        assert consumer.settle(Q, [Outcome(a, "succeeded")], 60) == (0, [])
        assert store.record(a).status == "running"  # type: ignore[union-attr]

    def test_a_paused_queue_hands_out_nothing_when_settling_either(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        (a,) = _jobs(store, Q, "a")
        _jobs(store, Q, "b")
        consumer, _ = open_consumer()
        consumer.take(1)
        store.set_queue_options(Q, paused=True)
        assert consumer.settle(Q, [Outcome(a, "succeeded")], 60, then_take=5) == (1, [])
        assert consumer.take(5) == []

    def test_release_puts_jobs_back_in_their_place(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        a, b = _jobs(store, Q, "a", "b")
        consumer, _ = open_consumer()
        consumer.take(1)
        assert consumer.release(Q, [a]) == 1
        assert payloads(store.snapshot(Q)) == [b"a", b"b"]

    def test_next_due_is_the_earliest_delayed_job_of_its_queues(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, _ = open_consumer((Q, OTHER))
        assert consumer.next_due() is None
        store.enqueue(OTHER, [NewJob("t", b"x")], delay=30)
        store.enqueue(Q, [NewJob("t", b"y")], delay=60)
        due = consumer.next_due()
        assert due is not None and 25 < due - time.time() <= 30

    def test_a_closed_consumer_hands_out_nothing_more(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumer, inbox = open_consumer()
        assert consumer.take(2) == []
        consumer.close()
        _jobs(store, Q, "a", "b")
        time.sleep(0.3)
        assert inbox.offered == []
        assert store.counts(Q).ready == 2

    def test_a_consumer_closed_while_it_holds_a_job_takes_nothing_more_and_can_settle_it(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        (held,) = _jobs(store, Q, "held")
        consumer, _ = open_consumer(owner="closing")
        assert [i.id for _, i in consumer.take(4)] == [held]  # three slots free when it closes
        consumer.close()
        later = _jobs(store, Q, "a", "b", "c")
        assert store.counts(Q).ready == 3  # none handed to it on the push
        assert consumer.settle(Q, [Outcome(held, "succeeded")], 60, then_take=3) == (1, [])
        assert store.record(held).status == "succeeded"  # type: ignore[union-attr]
        other, _ = open_consumer(owner="next")
        got = other.take(3)
        assert [i.id for _, i in got] == later
        assert [i.deliveries for _, i in got] == [1, 1, 1]  # no delivery counted to the first

    def test_two_consumers_never_get_the_same_job(
        self, store: Store, open_consumer: Callable[..., tuple[Consumer, Inbox]]
    ) -> None:
        consumers = [open_consumer(owner=f"w{i}") for i in range(2)]
        for consumer, _ in consumers:
            assert consumer.take(5) == []
        ids = set(_jobs(store, Q, *(str(i) for i in range(40))))
        seen: list[str] = []
        deadline = time.monotonic() + 10
        while len(seen) < len(ids) and time.monotonic() < deadline:
            for consumer, inbox in consumers:
                with inbox.lock:
                    handed, inbox.offered = inbox.offered, []
                got = handed + consumer.take(5)
                seen += [i.id for _, i in got]
                for queue, item in got:  # done at once: its slot is free again
                    consumer.settle(queue, [Outcome(item.id, "succeeded")], 60)
            time.sleep(0.01)
        assert sorted(seen) == sorted(ids)
