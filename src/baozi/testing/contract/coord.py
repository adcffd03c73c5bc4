"""The coordination part of the conformance suite: key-value, slots, rate limits."""

from __future__ import annotations

import struct
import threading
import time

import pytest

from ...backends.base import Store


class CoordContract:
    """Tests of a ``store`` fixture: the coordination part of the contract."""

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

    def test_kv_set_tail_keeps_the_head_first_written(self, store: Store) -> None:
        store.kv_set_tail("ns", "k", b"first", b"1")
        assert store.kv_get("ns", "k") == b"first\n1"
        store.kv_set_tail("ns", "k", b"second", b"2\nwith a newline")
        assert store.kv_get("ns", "k") == b"first\n2\nwith a newline"
        store.kv_set_tail("ns", "k", b"third", b"3")  # the head ends at the first newline
        assert store.kv_get("ns", "k") == b"first\n3"
        store.kv_set("ns", "plain", b"no newline")
        store.kv_set_tail("ns", "plain", b"h", b"t")  # no record: replaced whole
        assert store.kv_get("ns", "plain") == b"h\nt"
        with pytest.raises(ValueError, match="newline"):
            store.kv_set_tail("ns", "k", b"two\nlines", b"4")
        assert store.kv_get("ns", "k") == b"first\n3"

    def test_kv_set_tail_wakes_waiters(self, store: Store) -> None:
        token = store.change_token()
        timer = threading.Timer(0.05, store.kv_set_tail, ("ns", "k", b"h", b"t"))
        timer.start()
        assert store.wait_for_change(token, 5)
        timer.join()

    def test_kv_incr_tail_adds_to_the_tail_and_keeps_the_head(self, store: Store) -> None:
        assert store.kv_incr_tail("ns", "n", b"first", 2) == 2
        assert store.kv_incr_tail("ns", "n", b"second", 40) == 42
        assert store.kv_get("ns", "n") == b"first\n42"
        total = store.kv_incr_tail("ns", "n", b"x", 0.5)
        assert total == 42.5 and isinstance(total, float)
        assert store.kv_get("ns", "n").startswith(b"first\n")  # type: ignore[union-attr]
        store.kv_set_tail("ns", "f", b"h", b"1.5")
        assert store.kv_incr_tail("ns", "f", b"x", 1) == 2.5
        store.kv_incr_tail("ns", "big", b"h", 2**63 - 1)
        with pytest.raises(OverflowError):
            store.kv_incr_tail("ns", "big", b"h", 1)
        assert store.kv_get("ns", "big") == b"h\n" + str(2**63 - 1).encode()

    def test_kv_incr_tail_of_a_non_number_changes_nothing(self, store: Store) -> None:
        store.kv_set_tail("ns", "s", b"h", b'"text"')
        store.kv_set("ns", "plain", b"7")
        for key in ("s", "plain"):
            held = store.kv_get("ns", key)
            with pytest.raises(TypeError, match=repr(key)):
                store.kv_incr_tail("ns", key, b"h", 1)
            assert store.kv_get("ns", key) == held
        with pytest.raises(ValueError, match="newline"):
            store.kv_incr_tail("ns", "new", b"a\nb", 1)
        assert store.kv_get("ns", "new") is None

    def test_kv_incr_tail_from_many_threads_loses_no_update(self, store: Store) -> None:
        def add() -> None:
            for _ in range(50):
                store.kv_incr_tail("ns", "n", b"h", 1)
                store.kv_set_tail("ns", "other", b"h", b"0")

        threads = [threading.Thread(target=add) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert store.kv_get("ns", "n") == b"h\n200"

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

    def test_kv_incr_stays_in_range(self, store: Store) -> None:
        store.kv_incr("ns", "big", 2**63 - 1)
        with pytest.raises(OverflowError):
            store.kv_incr("ns", "big", 1)
        assert store.kv_get("ns", "big") == str(2**63 - 1).encode()
        store.kv_incr("ns", "f", 1e308)
        with pytest.raises(OverflowError):
            store.kv_incr("ns", "f", 1e308)

    def test_kv_incr_as_keeps_integers_exact_to_the_ends_of_their_kind(self, store: Store) -> None:
        assert store.kv_incr_as("ns", "i", -5, "i32") == -5  # a missing key counts as 0
        assert store.kv_incr_as("ns", "i", 2**31 - 1 + 5, "i32") == 2**31 - 1
        assert store.kv_incr_as("ns", "i", -(2**32) + 1, "i32") == -(2**31)
        assert store.kv_incr_as("ns", "q", 2**63 - 2, "i64") == 2**63 - 2
        assert store.kv_incr_as("ns", "q", 1, "i64") == 2**63 - 1
        assert store.kv_incr_as("ns", "Q", 2**64 - 1, "u64") == 2**64 - 1
        assert store.kv_incr_as("ns", "Q", -(2**64 - 1), "u64") == 0
        assert store.kv_incr_as("ns", "b", -128, "i8") == -128
        assert store.kv_incr_as("ns", "B", 255, "u8") == 255
        big = 10**18 + 123_456_789  # past a double's exact integers: the sum stays exact
        assert store.kv_incr_as("ns", "x", big, "u64") == big
        assert store.kv_incr_as("ns", "x", -big - 1 + 2**63, "u64") == 2**63 - 1
        assert int(store.kv_get("ns", "x") or b"") == 2**63 - 1

    @pytest.mark.parametrize(
        ("kind", "start", "amount"),
        [
            ("i8", 127, 1),
            ("i8", -128, -1),
            ("u8", 0, -1),
            ("u16", 65535, 1),
            ("i32", 2**31 - 1, 1),
            ("i32", 0, 2**40),
            ("u32", 0, -1),
            ("i64", 2**63 - 1, 1),
            ("i64", -(2**63), -1),
            ("u64", 2**64 - 1, 1),
            ("u64", 0, -1),
            ("u64", 5, 2**70),
            ("i64", 5, -(2**70)),
        ],
    )
    def test_kv_incr_as_refuses_a_sum_out_of_range_and_changes_nothing(
        self, store: Store, kind: str, start: int, amount: int
    ) -> None:
        store.kv_incr_as("ns", "n", start, kind)
        with pytest.raises(OverflowError):
            store.kv_incr_as("ns", "n", amount, kind)
        assert int(store.kv_get("ns", "n") or b"") == start

    def test_kv_incr_as_rounds_f32_and_keeps_f64(self, store: Store) -> None:
        third = store.kv_incr_as("ns", "f", 1 / 3, "f32")
        assert third == struct.unpack("<f", struct.pack("<f", 1 / 3))[0] != 1 / 3
        assert isinstance(third, float)
        assert store.kv_incr_as("ns", "f", 2.0**24, "f32") == 2.0**24  # 2**24 + 1/3 rounds away
        assert store.kv_incr_as("ns", "f", 1.0, "f32") == 2.0**24  # 2**24 + 1 is no float32
        assert store.kv_incr_as("ns", "d", 0.1, "f64") == 0.1
        assert store.kv_incr_as("ns", "d", 0.2, "f64") == 0.1 + 0.2
        assert float(store.kv_get("ns", "d") or b"") == 0.1 + 0.2
        assert store.kv_incr_as("ns", "d", -1.5, "f64") == 0.1 + 0.2 - 1.5

    def test_kv_incr_as_refuses_floats_past_their_kind(self, store: Store) -> None:
        store.kv_incr_as("ns", "f", 3e38, "f32")
        with pytest.raises(OverflowError):
            store.kv_incr_as("ns", "f", 1e38, "f32")  # past float32's 3.4e38
        assert (
            float(store.kv_get("ns", "f") or b"") == struct.unpack("<f", struct.pack("<f", 3e38))[0]
        )
        store.kv_incr_as("ns", "d", 1e308, "f64")
        with pytest.raises(OverflowError):
            store.kv_incr_as("ns", "d", 1e308, "f64")
        assert float(store.kv_get("ns", "d") or b"") == 1e308

    def test_kv_incr_as_of_what_is_no_number_of_the_kind_changes_nothing(
        self, store: Store
    ) -> None:
        for held, kind in [
            (b'"text"', "i32"),
            (b"1.5", "i64"),  # a float is no integer
            (b"300", "u8"),  # out of the kind's range already
            (b"not json", "f64"),
            (b'"1.5"', "f32"),
        ]:
            store.kv_set("ns", "k", held)
            with pytest.raises(TypeError, match="'k'"):
                store.kv_incr_as("ns", "k", 1, kind)
            assert store.kv_get("ns", "k") == held
