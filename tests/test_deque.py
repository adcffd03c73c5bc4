"""baozi.Deque behaves like collections.deque, on every store."""

from __future__ import annotations

import collections
import copy
import threading

import pytest

from baozi import Deque


def test_appends_pops_and_indexing(url: str) -> None:
    with Deque("d", url=url) as d:
        d.append(123)
        d.append(333)
        d.appendleft(456)
        assert len(d) == 3
        assert (d[0], d[1], d[-1], d[-3]) == (456, 123, 333, 456)
        assert list(d) == [456, 123, 333]
        assert repr(d) == "Deque('d', [456, 123, 333])"
        assert d.pop() == 333
        assert d.popleft() == 456
        assert list(d) == [123]


def test_extend_and_extendleft_match_collections_deque(url: str) -> None:
    ref: collections.deque[int] = collections.deque()
    with Deque("d", url=url) as d:
        for target in (ref, d):
            target.extend([1, 2, 3])
            target.extendleft([10, 20, 30])
            target.append(4)
            target.appendleft(0)
        assert list(d) == list(ref) == [0, 30, 20, 10, 1, 2, 3, 4]


@pytest.mark.parametrize("maxlen", [0, 1, 3])
def test_maxlen_drops_from_the_other_end_like_collections_deque(url: str, maxlen: int) -> None:
    ref: collections.deque[int] = collections.deque(maxlen=maxlen)
    with Deque("d", maxlen=maxlen, url=url) as d:
        for target in (ref, d):
            target.extend([1, 2, 3, 4])
            target.appendleft(0)
            target.append(5)
            target.extendleft([7, 8])
        assert list(d) == list(ref)
        assert len(d) == len(ref)
        assert d.maxlen == maxlen
        if maxlen:
            assert repr(d).endswith(f", maxlen={maxlen})")


def test_pop_from_empty_raises_index_error(url: str) -> None:
    with Deque("d", url=url) as d:
        with pytest.raises(IndexError):
            d.pop()
        with pytest.raises(IndexError):
            d.popleft()
        with pytest.raises(IndexError):
            d.popleft(block=True, timeout=0.05)


def test_blocking_pop_waits_for_an_item(url: str) -> None:
    with Deque("d", url=url) as d:
        threading.Timer(0.1, d.append, args=("x",)).start()
        assert d.pop(block=True, timeout=10) == "x"


def test_index_errors_and_types(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend(["a", "b"])
        with pytest.raises(IndexError):
            d[2]
        with pytest.raises(IndexError):
            d[-3]
        with pytest.raises(TypeError):
            d["0"]  # type: ignore[index]


def test_iteration_is_over_a_snapshot(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend([1, 2, 3])
        seen = []
        for x in d:
            seen.append(x)
            d.append(x * 10)
        assert seen == [1, 2, 3]
        assert len(d) == 6


def test_clear_bool_and_contains(url: str) -> None:
    with Deque("d", url=url) as d:
        assert not d
        d.extend([(1, 2), "x"])
        assert d and (1, 2) in d
        d.clear()
        assert len(d) == 0 and list(d) == []


def test_handles_share_contents(url: str) -> None:
    with Deque("d", url=url) as a, Deque("d", url=url) as b:
        a.append({"k": (1, 2)})
        assert b.pop() == {"k": (1, 2)}


def test_refuses_a_bad_maxlen(url: str) -> None:
    with pytest.raises(ValueError, match="maxlen"):
        Deque("d", maxlen=-1, url=url)


def test_a_deque_and_a_queue_of_the_same_name_are_separate(url: str) -> None:
    from baozi import Queue

    with Deque("same", url=url) as d, Queue("same", url=url) as q:
        d.append("in the deque")
        q.put("in the queue")
        assert list(d) == ["in the deque"]
        assert q.get_many(5) == ["in the queue"]


def test_rotate_insert_remove_and_reverse_change_the_stored_deque(url: str) -> None:
    with Deque("d", url=url) as d, Deque("d", url=url) as other:
        d.extend("abcde")
        d.rotate(2)
        assert list(other) == list("deabc")
        d.rotate(-3)
        assert list(other) == list("bcdea")
        d.insert(1, "x")
        d.insert(-100, "first")
        d.insert(100, "last")
        assert list(other) == ["first", "b", "x", "c", "d", "e", "a", "last"]
        d.remove("x")
        d.reverse()
        assert list(other) == ["last", "a", "e", "d", "c", "b", "first"]
        with pytest.raises(ValueError, match="'zz' is not in deque"):
            d.remove("zz")


def test_item_assignment_and_deletion(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend([1, 2, 3, 4])
        d[0], d[-1] = "one", "four"
        del d[1]
        del d[-2]
        assert list(d) == ["one", "four"]
        for bad in (2, -3):
            with pytest.raises(IndexError, match="deque index out of range"):
                d[bad] = 0
            with pytest.raises(IndexError, match="deque index out of range"):
                del d[bad]
        with pytest.raises(TypeError, match="slice"):
            d[0:1]  # type: ignore[call-overload]
        assert list(d) == ["one", "four"]


def test_insert_into_a_full_deque_raises_and_changes_nothing(url: str) -> None:
    with Deque("d", url=url, maxlen=2) as d:
        d.extend(["a", "b"])
        with pytest.raises(IndexError, match="deque already at its maximum size"):
            d.insert(1, "x")
        assert list(d) == ["a", "b"]
        with pytest.raises(AttributeError):
            d.maxlen = 5  # type: ignore[misc]
        assert d.maxlen == 2


def test_copies_and_binary_operators_are_in_memory_deques(url: str) -> None:
    with Deque("d", url=url, maxlen=4) as d:
        d.extend([1, 2, 3])
        for made in (d.copy(), copy.copy(d), d + collections.deque([4, 5]), d * 2, 2 * d):
            assert type(made) is collections.deque and made.maxlen == 4
        assert list(d + collections.deque([4, 5])) == [2, 3, 4, 5]
        assert list(d * 2) == [3, 1, 2, 3]
        assert list(d) == [1, 2, 3]
        with pytest.raises(TypeError):
            d + [4]  # type: ignore[operator]
        with pytest.raises(TypeError):
            hash(d)


def test_in_place_operators_change_the_stored_deque(url: str) -> None:
    with Deque("d", url=url) as d, Deque("d", url=url) as other:
        d += [1, 2]
        assert list(other) == [1, 2]
        d *= 3
        assert list(other) == [1, 2, 1, 2, 1, 2]
        d *= 0
        assert len(other) == 0


def test_comparisons(url: str) -> None:
    with Deque("d", url=url) as d, Deque("e", url=url) as e:
        d.extend([1, 2])
        e.extend([1, 3])
        assert d == collections.deque([1, 2]) and d == [1, 2] and d != e
        assert d < e and d <= e and e > d and e >= d and d < collections.deque([2])
        with pytest.raises(TypeError):
            _ = d < [1, 3]  # type: ignore[operator]


def test_count_index_and_reversed(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend(["a", "b", "a", "c"])
        assert d.count("a") == 2 and d.count("z") == 0
        assert d.index("a") == 0 and d.index("a", 1) == 2 and d.index("c", -2, 10) == 3
        with pytest.raises(ValueError, match="'a' is not in deque"):
            d.index("a", 3)
        assert list(reversed(d)) == ["c", "a", "b", "a"]


@pytest.mark.timeout(60)
def test_remove_and_reverse_work_on_a_deque_fuller_than_a_maxlen_recorded_later(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend([1, 2, 3, 4])
        with Deque("d", url=url, maxlen=2) as small:
            small.reverse()
            small.remove(3)
            assert list(d) == [4, 2, 1]
            small *= 1
            assert list(d) == [4, 2, 1]


def test_an_index_past_any_deque_is_an_index_error(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend([1, 2])
        for index in (2**62, -(2**62) - 1, 2**63, -(2**70)):
            with pytest.raises(IndexError):
                d[index]
            with pytest.raises(IndexError):
                d[index] = 0
            with pytest.raises(IndexError):
                del d[index]
        assert list(d) == [1, 2]


def test_deque_takes_a_type_parameter_as_collections_deque_does() -> None:
    assert Deque[int].__origin__ is Deque
