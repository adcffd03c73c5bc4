"""PriorityQueue orders by every priority the standard library's can compare, on every store."""

from __future__ import annotations

import queue as stdlib_queue
import random
from typing import Any

import pytest

from baozi import PriorityQueue, Queue


def drain(q: PriorityQueue) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except stdlib_queue.Empty:
            return out
        q.task_done()


def test_tuples_str_and_bytes_order_as_python_compares_them(url: str) -> None:
    cases = {
        "tuples": [(("x", 2), "a"), (("x", 1), "b"), (("a", 9), "c"), (("x",), "d")],
        "str": ["pear", "apple", "Zed", "äpfel", "", "apple pie"],
        "bytes": [b"\xff", b"", b"\x00", b"\x00\x00", b"ab", b"a"],
        "nested": [(((2, "b"), b"z"), 1), (((2, "a"), b"z"), 2), (((1, "z"),), 3)],
        "mixed numbers": [((1.5, "a"), 1), ((1, "b"), 2), ((2**80, "c"), 3), ((-0.25, "d"), 4)],
    }
    for name, items in cases.items():
        with PriorityQueue(f"q-{name.replace(' ', '-')}", url=url) as q:
            for item in items:
                q.put(item)
            got = drain(q)
            assert [type(i) for i in got] == [type(i) for i in sorted(items)]
            assert got == sorted(items), name


def test_the_priority_is_the_first_element_or_the_item(url: str) -> None:
    with PriorityQueue("tuples", url=url) as q:
        q.put((("x", 1), "job"))
        q.put((("a", 2), "job"))
        assert [item.priority for item in q._store.snapshot("tuples")] == [("a", 2), ("x", 1)]
    with PriorityQueue("strings", url=url) as q:
        q.put(("x", "job"))
        q.put("abc")
        assert [item.priority for item in q._store.snapshot("strings")] == ["abc", "x"]
        assert drain(q) == ["abc", ("x", "job")]


def test_equal_priorities_come_out_in_put_order(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        q.put_many([(("k", 1), i) for i in range(5)])
        q.put((("k", 1.0), 5))  # 1.0 == 1: the same priority
        q.put((("j", 2), "first"))
        q.put_many([(("k", 1), i) for i in range(6, 8)])
        assert drain(q) == [(("j", 2), "first"), *[(("k", 1), i) for i in range(8)]]


def test_an_int_and_a_float_inside_tuples_compare_exactly(url: str) -> None:
    big = 2**53 + 1  # no float equals it
    items = [((float(2**53), "f"), 0), ((big, "i"), 1), ((2**53, "j"), 2), ((0.1, "k"), 3)]
    with PriorityQueue("q", url=url) as q:
        q.put_many(items)
        assert drain(q) == [((0.1, "k"), 3), ((float(2**53), "f"), 0), ((2**53, "j"), 2), items[1]]


@pytest.mark.parametrize(
    "held, bad, kinds",
    [
        ([1, 2], ("x", "job"), ("str", "number")),
        (["a"], 3, ("number", "str")),
        ([(("x", 1), "job")], ((1, 1), "job"), ("number", "str")),
        ([b"z"], "z", ("str", "bytes")),
        ([(("x",), "j")], ((("y",),), "j"), ("tuple", "str")),
    ],
)
def test_a_priority_of_another_kind_is_refused_naming_both_and_nothing_is_stored(
    url: str, held: list[Any], bad: Any, kinds: tuple[str, str]
) -> None:
    with PriorityQueue("q", url=url) as q:
        q.put_many(held)
        before = q._store.snapshot("q")
        with pytest.raises(TypeError) as info:
            q.put(bad)
        message = str(info.value)
        assert f"a {kinds[0]}" in message and f"have a {kinds[1]}" in message
        with pytest.raises(TypeError):
            q.put_many([held[0], bad])
        assert q._store.snapshot("q") == before
        assert drain(q) == sorted(held)


def test_one_batch_of_two_kinds_is_refused(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        with pytest.raises(TypeError, match="the other items put with it"):
            q.put_many(["a", 1])
        assert q.qsize() == 0


def test_a_leased_item_still_counts_for_the_kind_and_an_empty_queue_takes_any(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        q.put(1)
        assert q.get() == 1  # leased, not acknowledged: it is still in the queue
        with pytest.raises(TypeError):
            q.put("a")
        q.task_done()
        q.put("a")  # empty now: as queue.PriorityQueue, a new kind is fine
        q.put("b")
        with pytest.raises(TypeError):
            q.put(2)
        assert drain(q) == ["a", "b"]
        q.put((1, "x"))
        assert drain(q) == [(1, "x")]


def test_a_queue_of_numbers_from_before_refuses_another_kind(url: str) -> None:
    with Queue("q", url=url) as plain:
        plain.put("x")  # numbers (priority 0), with nothing recorded about their kind
    with PriorityQueue("q", url=url) as q:
        with pytest.raises(TypeError, match="number"):
            q.put("a")
        q.put(5)
        assert q.qsize() == 2


def test_rank_peek_and_counts_follow_the_order(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        store = q._store
        ids = store.push("q", [b"c", b"a", b"b", b"a2"], ["c", "a", "b", "a"])
        assert [store.rank("q", i) for i in ids] == [3, 0, 2, 1]
        assert store.peek("q", 0).priority == "a" and store.peek("q", -1).priority == "c"
        assert [i.payload for i in store.snapshot("q")] == [b"a", b"a2", b"b", b"c"]
        got = store.reserve("q", "me", 30.0, 1)
        assert got[0].payload == b"a"
        assert [store.rank("q", i) for i in ids] == [2, None, 1, 0]
        assert store.counts("q").ready == 3
        store.release("q", [got[0].id], "me")
        assert [store.rank("q", i) for i in ids] == [3, 0, 2, 1]
        assert [i.payload for i in store.pop("q", 2)] == [b"a", b"a2"]
        assert [i.payload for i in store.pop("q", 1, back=True)] == [b"c"]


def test_a_deep_tuple_queue_ranks_right(url: str) -> None:
    with PriorityQueue("q", url=url) as q:
        keys = [(f"k{i % 7}", i % 3, b"x" * (i % 2)) for i in range(40)]
        ids = q._store.push("q", [str(i).encode() for i in range(40)], keys)
        order = sorted(range(40), key=lambda i: (keys[i], i))
        assert [q._store.rank("q", ids[i]) for i in order] == list(range(40))


def test_a_differential_run_against_the_stdlib_priority_queue(url: str) -> None:
    rng = random.Random(2026)
    for kind in ("int", "str", "tuple"):
        ref: stdlib_queue.PriorityQueue[Any] = stdlib_queue.PriorityQueue()
        with PriorityQueue(f"diff-{kind}", url=url) as q:
            serial = 0
            for _ in range(300):
                if rng.random() < 0.6 or ref.empty():
                    if kind == "int":
                        prio: Any = rng.randint(-5, 5)
                    elif kind == "str":
                        prio = rng.choice(["", "a", "ab", "b", "\x00", "é"])
                    else:
                        prio = (rng.choice(["a", "b"]), rng.choice([1, 1.5, -2, 2**70]))
                    item = (prio, serial)  # the serial makes the stdlib's order FIFO on ties
                    serial += 1
                    ref.put(item)
                    q.put([prio, item[1]])
                else:
                    assert tuple(q.get_nowait()) == ref.get_nowait()
                    q.task_done()
            assert q.qsize() == ref.qsize()
            assert [tuple(i) for i in drain(q)] == [ref.get_nowait() for _ in range(ref.qsize())]


def test_get_async_keeps_the_priority_order(url: str) -> None:
    import asyncio

    async def main() -> list[Any]:
        with PriorityQueue("q", url=url) as q:
            for item in [("b", 1), ("a", 2), ("c", 3)]:
                await q.put_async(item)
            out = [await q.get_async() for _ in range(3)]
            q.task_done(3)
            return out

    assert asyncio.run(main()) == [("a", 2), ("b", 1), ("c", 3)]


def test_put_async_refuses_a_priority_of_another_kind(url: str) -> None:
    import asyncio

    async def main() -> None:
        with PriorityQueue("q", url=url) as q:
            await q.put_async(1)
            with pytest.raises(TypeError, match="a str where they have a number"):
                await q.put_async(("x", "job"))
            assert q.qsize() == 1

    asyncio.run(main())


def test_a_priority_of_the_largest_size_goes_in_and_a_larger_one_is_refused(url: str) -> None:
    from baozi.backends._order import MAX_ENCODED, encode

    longest = "x" * (MAX_ENCODED - 3)  # a tag, the text and two end bytes
    later = "x" * (MAX_ENCODED - 4) + "y"
    assert len(encode(longest)) == len(encode(later)) == MAX_ENCODED
    with PriorityQueue("q", url=url) as q:
        q.put_many([later, longest, "a"])
        with pytest.raises(ValueError, match=f"at most {MAX_ENCODED} bytes"):
            q.put(longest + "x")
        assert drain(q) == ["a", longest, later]


def test_priorities_whose_encoding_ends_in_many_zero_bytes_come_back(url: str) -> None:
    # A whole number's big-endian bytes end in zeros, and so does every encoding (its end marks):
    # a store that keeps the encoding as a number drops them, and must give them all back.
    from baozi.backends._order import MAX_ENCODED, encode

    widest = (2 ** (8 * 480),)  # nearly all of MAX_ENCODED is zero bytes
    assert len(encode(widest)) <= MAX_ENCODED
    prios = [(2**400,), (2**401,), (1e300,), (-1e300,), (2**1000,), (5e-324,), (-(2**400),), widest]
    with PriorityQueue("q", url=url) as q:
        q.put_many([(p, i) for i, p in enumerate(prios)])
        assert drain(q) == sorted((p, i) for i, p in enumerate(prios))
