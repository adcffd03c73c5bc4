"""The queue part of the conformance suite: order, leases, ranks, waiting for changes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ...backends.base import Store
from ...errors import Full
from ._common import OTHER, Q
from ._common import payloads as _payloads


class QueueContract:
    """Tests of a ``store`` fixture: the queue part of the contract."""

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

    # -- claims -----------------------------------------------------------------------------

    def test_claim_leases_ready_items_by_id_in_the_order_of_the_ids(self, store: Store) -> None:
        a, b, c = store.push(Q, [b"a", b"b", b"c"])
        got = store.claim(Q, "w", 30, [c, a, c, "999999999", "not-an-id"])
        assert [i.id for i in got] == [c, a]
        assert _payloads(got) == [b"c", b"a"]
        assert [(i.deliveries, i.task, i.failures) for i in got] == [(1, None, 0)] * 2
        counts = store.counts(Q)
        assert (counts.ready, counts.leased) == (1, 2)
        assert _payloads(store.reserve(Q, "other", 30, 5)) == [b"b"]  # claimed items are held
        assert store.ack(Q, [a, c], "w") == 2

    def test_claim_leaves_out_items_of_other_queues_and_scheduled_ones(self, store: Store) -> None:
        (other,) = store.push(OTHER, [b"o"])
        (later,) = store.push(Q, [b"later"], delay=30)
        assert store.claim(Q, "w", 30, [other, later]) == []
        assert store.counts(OTHER).ready == 1 and store.counts(Q).scheduled == 1
        assert [i.id for i in store.claim(OTHER, "w", 30, [other])] == [other]

    def test_claim_takes_a_scheduled_item_once_its_time_comes(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"], delay=0.2)
        assert store.claim(Q, "w", 30, [a]) == []
        time.sleep(0.25)
        assert _payloads(store.claim(Q, "w", 30, [a])) == [b"a"]
        assert store.counts(Q).leased == 1

    def test_claim_leaves_an_item_someone_holds_unless_told_to_take_it_over(
        self, store: Store
    ) -> None:
        a, b = store.push(Q, [b"a", b"b"])
        store.reserve(Q, "w1", 30, 1)
        assert store.claim(Q, "w1", 30, [a]) == []  # the claimant holds it already
        assert store.claim(Q, "w1", 30, [a], takeover=[a]) == []
        assert store.claim(Q, "w2", 30, [a]) == []
        assert store.counts(Q).leased == 1
        got = store.claim(Q, "w2", 30, [a, b], takeover={a})
        assert [(i.id, i.deliveries) for i in got] == [(a, 2), (b, 1)]
        # The first owner's lease ended with the takeover: it settles nothing.
        assert store.ack(Q, [a], "w1") == 0
        assert store.release(Q, [a], "w1") == 0
        assert store.extend(Q, [a], "w1", 30) == 0
        assert store.counts(Q).leased == 2
        assert store.ack(Q, [a, b], "w2") == 2

    def test_claim_takes_an_item_whose_lease_ran_out_without_a_takeover(self, store: Store) -> None:
        a, b = store.push(Q, [b"a", b"b"])
        store.reserve(Q, "dead", 0.1, 1)
        store.reserve(Q, "slow", 0.1, 1)
        time.sleep(0.15)
        assert [(i.id, i.deliveries) for i in store.claim(Q, "alive", 30, [a])] == [(a, 2)]
        assert store.ack(Q, [a], "dead") == 0
        # A lease of the claimant's own that ran out is leased anew, its delivery counted.
        assert [(i.id, i.deliveries) for i in store.claim(Q, "slow", 30, [b])] == [(b, 2)]
        assert store.reserve(Q, "other", 30, 5) == []
        assert store.ack(Q, [a], "alive") == 1 and store.ack(Q, [b], "slow") == 1

    def test_a_paused_queue_lets_nothing_be_claimed(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.set_queue_options(Q, paused=True)
        assert store.claim(Q, "w", 30, [a]) == []
        store.set_queue_options(Q, paused=False)
        assert [i.id for i in store.claim(Q, "w", 30, [a])] == [a]

    def test_a_claim_of_no_ids_or_of_a_queue_never_used_takes_nothing(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        assert store.claim(Q, "w", 30, []) == []
        assert store.claim(Q + "-never", "w", 30, [a]) == []
        assert store.has_queue(Q + "-never") is False
        assert store.counts(Q).ready == 1

    def test_a_claim_from_a_bounded_queue_wakes_waiters(self, store: Store) -> None:
        (a,) = store.push(Q, [b"a"])
        store.set_queue_options(Q, maxsize=1)
        store.wait_for_change(store.change_token(), 0.05)
        token = store.change_token()
        assert len(store.claim(Q, "w", 30, [a])) == 1
        assert store.wait_for_change(token, 5) is True

    def test_racing_claims_of_the_same_items_lease_each_once(self, store: Store) -> None:
        ids = store.push(Q, [str(i).encode() for i in range(60)])
        got: list[str] = []
        lock = threading.Lock()

        def claim(owner: str, order: list[str]) -> None:
            for start in range(0, len(order), 7):
                items = store.claim(Q, owner, 30, order[start : start + 7])
                with lock:
                    got.extend(i.id for i in items)

        orders = [ids, ids[::-1], ids[1::2] + ids[::2], ids[::2] + ids[1::2]]
        threads = [
            threading.Thread(target=claim, args=(f"w{k}", order)) for k, order in enumerate(orders)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(ids)
        assert store.counts(Q).leased == 60

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

    def test_str_bytes_and_tuple_priorities_order_as_python_compares_them(
        self, store: Store
    ) -> None:
        # One kind per queue, as PriorityQueue keeps them; each given back as it was pushed.
        cases: dict[str, list[Any]] = {
            Q: ["b", "", "ab", "a", "é", "a"],
            OTHER: [(("x", 2), 1.5), (("x", 2), 1), (("a",), 2**70), (("x",),), (("x", 2), 1.0)],
            Q + "-bytes": [b"\x01", b"", b"\x00\x00", b"\x00"],
        }
        for queue, prios in cases.items():
            ids = store.push(queue, [str(i).encode() for i in range(len(prios))], prios)
            order = sorted(range(len(prios)), key=lambda i: (prios[i], i))
            assert _payloads(store.snapshot(queue)) == [str(i).encode() for i in order]
            assert [item.priority for item in store.snapshot(queue)] == [prios[i] for i in order]
            assert [store.rank(queue, ids[i]) for i in order] == list(range(len(prios)))
            assert store.peek(queue, -1).payload == str(order[-1]).encode()
            assert _payloads(store.reserve(queue, "w", 30, 1)) == [str(order[0]).encode()]

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
        assert store.claim(Q, "w", 30, ["1"]) == []
        assert store.wait_for_change(token, 0.1) is False

    def test_discard_removes_waiting_items_only(self, store: Store) -> None:
        a, b, c = store.push(Q, [b"a", b"b", b"c"])
        (s,) = store.push(Q, [b"s"], delay=30)
        (leased,) = store.reserve(Q, "w", 30, 1)
        assert leased.id == a
        assert store.discard(Q, [a, c, s, "999999999"]) == 2
        assert _payloads(store.snapshot(Q)) == [b"b"]
        assert store.counts(Q).scheduled == 0

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
        store.push(Q, [b"c"])  # adding still works
        assert store.counts(Q).ready == 3
        store.set_queue_options(Q, paused=False)
        assert _payloads(store.reserve(Q, "w", 30, 5)) == [b"a", b"b", b"c"]
