"""The deque part of the conformance suite: :meth:`QueueStore.rotate` and :meth:`QueueStore.splice`."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from ...backends.base import Store
from ...errors import Full
from ._common import Q
from ._common import payloads as _payloads

_ABC = [b"a", b"b", b"c", b"d", b"e"]


def _contents(store: Store) -> list[bytes]:
    return _payloads(store.snapshot(Q))


class DequeContract:
    """Tests of a ``store`` fixture: the deque operations of the queue contract."""

    # -- rotate ------------------------------------------------------------------------------

    @pytest.mark.parametrize("n", [1, 2, 4, 5, 7, 13, -1, -2, -4, -5, -8, -101, 0])
    def test_rotate_matches_collections_deque(self, store: Store, n: int) -> None:
        store.push(Q, _ABC)
        ref = deque(_ABC)
        ref.rotate(n)
        store.rotate(Q, n)
        assert _contents(store) == list(ref)

    def test_rotate_keeps_front_and_back_pushes_in_order(self, store: Store) -> None:
        store.push(Q, [b"c", b"d"])
        store.push(Q, [b"b", b"a"], front=True)
        store.rotate(Q, 1)
        store.push(Q, [b"z"])
        store.push(Q, [b"y"], front=True)
        store.rotate(Q, -2)
        assert _contents(store) == [b"a", b"b", b"c", b"z", b"y", b"d"]

    def test_rotate_of_an_empty_or_unknown_queue_does_nothing(self, store: Store) -> None:
        store.rotate(Q, 3)
        store.rotate(Q, -1)
        assert store.counts(Q).total == 0
        assert Q not in store.queues()

    def test_many_rotations_lose_and_duplicate_nothing(self, store: Store) -> None:
        store.push(Q, [str(i).encode() for i in range(20)])
        ref = deque(_contents(store))
        for n in (3, -7, 11, -19, 20, 1, -1, 6):
            ref.rotate(n)
            store.rotate(Q, n)
        assert _contents(store) == list(ref)

    # -- splice: inserts, deletes, replacements ----------------------------------------------

    @pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5, -1, -2, -5])
    def test_splice_inserts_at_an_index_like_list_slicing(self, store: Store, index: int) -> None:
        store.push(Q, _ABC)
        ref = list(_ABC)
        ref[index + 5 if index < 0 else index : index + 5 if index < 0 else index] = [b"x", b"y"]
        assert store.splice(Q, index, 0, [b"x", b"y"]) == []
        assert _contents(store) == ref

    @pytest.mark.parametrize(
        ("index", "delete"), [(0, 1), (0, 2), (2, 1), (3, 2), (4, 1), (-1, 1), (-3, 2), (0, 5)]
    )
    def test_splice_deletes_and_returns_the_removed_items(
        self, store: Store, index: int, delete: int
    ) -> None:
        ids = store.push(Q, _ABC)
        at = index + 5 if index < 0 else index
        removed = store.splice(Q, index, delete)
        assert removed is not None
        assert _payloads(removed) == _ABC[at : at + delete]
        assert [i.id for i in removed] == ids[at : at + delete]
        assert _contents(store) == _ABC[:at] + _ABC[at + delete :]

    @pytest.mark.parametrize("index", [0, 2, 4, -1])
    def test_splice_replaces_in_place_with_a_new_id(self, store: Store, index: int) -> None:
        ids = store.push(Q, _ABC)
        removed = store.splice(Q, index, 1, [b"new"])
        assert removed is not None and len(removed) == 1
        ref = list(_ABC)
        ref[index] = b"new"
        assert _contents(store) == ref
        new_id = store.peek(Q, index).id
        assert new_id != removed[0].id and new_id not in ids

    def test_splice_inserted_items_get_new_ids(self, store: Store) -> None:
        ids = store.push(Q, [b"a", b"b"])
        store.splice(Q, 1, 0, [b"x", b"y", b"z"])
        after = store.snapshot(Q)
        assert _payloads(after) == [b"a", b"x", b"y", b"z", b"b"]
        fresh = {i.id for i in after if i.payload in (b"x", b"y", b"z")}
        assert len(fresh) == 3 and not fresh & set(ids)

    def test_splice_into_an_empty_queue(self, store: Store) -> None:
        assert store.splice(Q, 0, 0, [b"a", b"b"]) == []
        assert _contents(store) == [b"a", b"b"]

    def test_splice_on_a_long_queue_from_either_end(self, store: Store) -> None:
        ref = [str(i).encode() for i in range(50)]
        store.push(Q, ref)
        for index, delete, new in (
            (3, 2, [b"p"]),
            (45, 1, [b"q", b"r"]),
            (-4, 3, []),
            (25, 0, [b"s"]),
        ):
            at = index + len(ref) if index < 0 else index
            removed = store.splice(Q, index, delete, new)
            assert removed is not None
            assert _payloads(removed) == ref[at : at + delete]
            ref[at : at + delete] = new
            assert _contents(store) == ref

    # -- splice: refusals that change nothing ------------------------------------------------

    @pytest.mark.parametrize(
        ("index", "delete"), [(6, 0), (-6, 0), (5, 1), (4, 2), (0, 6), (-1, 2)]
    )
    def test_splice_out_of_range_raises_index_error_and_changes_nothing(
        self, store: Store, index: int, delete: int
    ) -> None:
        ids = store.push(Q, _ABC)
        with pytest.raises(IndexError):
            store.splice(Q, index, delete, [b"x"])
        assert [i.id for i in store.snapshot(Q)] == ids

    def test_a_refused_splice_does_not_make_the_queue(self, store: Store) -> None:
        with pytest.raises(IndexError):
            store.splice(Q, 1, 0, [b"x"])
        with pytest.raises(Full):
            store.splice(Q, 0, 0, [b"x", b"y"], maxlen=1)
        assert store.splice(Q, 0, 0, [b"x"], expect=["1"]) is None
        assert Q not in store.queues()
        assert store.splice(Q, 0, 0) == []
        assert Q not in store.queues()

    def test_rotate_and_splice_leave_leased_and_scheduled_items_alone(self, store: Store) -> None:
        store.push(Q, [b"leased", b"a", b"b", b"c"])
        (leased,) = store.reserve(Q, "w", 30, 1)
        store.push(Q, [b"later"], delay=30)
        store.rotate(Q, 1)
        store.splice(Q, 1, 1, [b"x", b"y"])
        assert _contents(store) == [b"c", b"x", b"y", b"b"]
        counts = store.counts(Q)
        assert (counts.leased, counts.scheduled) == (1, 1)
        assert store.ack(Q, [leased.id], "w") == 1

    @pytest.mark.parametrize(("index", "place"), [(99, 5), (-99, 0), (-2, 3), (5, 5), (0, 0)])
    def test_splice_with_clamp_inserts_like_list_insert(
        self, store: Store, index: int, place: int
    ) -> None:
        store.push(Q, _ABC)
        assert store.splice(Q, index, 0, [b"x"], clamp=True) == []
        assert _contents(store) == _ABC[:place] + [b"x"] + _ABC[place:]

    def test_splice_refuses_a_negative_delete_and_a_clamped_delete(self, store: Store) -> None:
        ids = store.push(Q, _ABC)
        with pytest.raises(ValueError, match="delete"):
            store.splice(Q, 0, -1)
        with pytest.raises(ValueError, match="clamp"):
            store.splice(Q, 0, 1, clamp=True)
        with pytest.raises(TypeError, match="bytes"):
            store.splice(Q, 0, 0, ["text"])  # type: ignore[list-item]
        assert [i.id for i in store.snapshot(Q)] == ids

    def test_splice_beyond_maxlen_raises_full_and_changes_nothing(self, store: Store) -> None:
        ids = store.push(Q, _ABC)
        with pytest.raises(Full):
            store.splice(Q, 2, 0, [b"x"], maxlen=5)
        with pytest.raises(Full):
            store.splice(Q, 2, 1, [b"x", b"y"], clamp=False, maxlen=5)
        assert [i.id for i in store.snapshot(Q)] == ids
        assert store.splice(Q, 2, 1, [b"x"], maxlen=5) is not None  # a replacement fits
        assert store.splice(Q, 0, 0, [b"y"], maxlen=6) == []
        assert len(store.snapshot(Q)) == 6

    # -- splice: expect ----------------------------------------------------------------------

    def test_splice_with_the_expected_prefix_applies(self, store: Store) -> None:
        ids = store.push(Q, _ABC)
        removed = store.splice(Q, 1, 1, [b"B"], expect=ids[:2])
        assert removed is not None and _payloads(removed) == [b"b"]
        assert _contents(store) == [b"a", b"B", b"c", b"d", b"e"]
        assert store.splice(Q, 0, 0, [b"0"], expect=[]) == []

    def test_splice_with_another_prefix_changes_nothing_and_returns_none(
        self, store: Store
    ) -> None:
        ids = store.push(Q, _ABC)
        store.splice(Q, 0, 1, [b"A"])  # the snapshot behind ``ids`` is out of date now
        now = [i.id for i in store.snapshot(Q)]
        assert store.splice(Q, 1, 1, [b"B"], expect=ids[:2]) is None
        assert store.splice(Q, 0, 0, [b"x"], expect=[*now, "1"]) is None  # longer than the queue
        assert store.splice(Q, 4, 1, expect=list(reversed(now))) is None
        assert [i.id for i in store.snapshot(Q)] == now
        assert _contents(store) == [b"A", b"b", b"c", b"d", b"e"]

    # -- waiting -----------------------------------------------------------------------------

    def test_a_splice_insert_wakes_a_waiter(self, store: Store) -> None:
        store.push(Q, [b"a"])
        token = store.change_token()
        woke = threading.Event()

        def wait() -> None:
            if store.wait_for_change(token, 10):
                woke.set()

        waiter = threading.Thread(target=wait)
        waiter.start()
        store.splice(Q, 1, 0, [b"b"])
        waiter.join(15)
        assert woke.is_set()
        assert _contents(store) == [b"a", b"b"]
