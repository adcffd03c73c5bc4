"""``rotate`` and ``splice`` of a queue's ready items on the Redis and PostgreSQL stores: the same
results as ``collections.deque`` and list slicing, read back through snapshot, peek, counts,
rank and pop; bad input and refused splices change nothing; and the work done is the items
moved to an end, not the queue's length."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baozi.backends import open_store
from baozi.backends.base import Store
from baozi.errors import Full

from .conftest import _fresh

Q = "deque:d"


@pytest.fixture(params=["redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    for url in _fresh(request, tmp_path):
        s = open_store(url)
        yield s
        s.close()


def fill(store: Store, words: list[str]) -> None:
    store.push(Q, [w.encode() for w in words])


def contents(store: Store) -> list[str]:
    return [i.payload.decode() for i in store.snapshot(Q)]


def check(store: Store, expected: list[str]) -> None:
    """The queue holds ``expected``, in order, as every way of reading it says."""
    items = store.snapshot(Q)
    assert [i.payload.decode() for i in items] == expected
    assert store.counts(Q).ready == len(expected)
    assert [store.rank(Q, i.id) for i in items] == list(range(len(expected)))
    assert len({i.id for i in items}) == len(items)
    if expected:
        assert store.peek(Q, 0).payload.decode() == expected[0]
        assert store.peek(Q, -1).payload.decode() == expected[-1]
        assert store.peek(Q, len(expected) // 2).payload.decode() == expected[len(expected) // 2]
    else:
        with pytest.raises(IndexError):
            store.peek(Q, 0)


def ends_still_work(store: Store, expected: list[str]) -> None:
    """Pushes to either end land there, and pops from either end take them."""
    store.push(Q, [b"<front>"], front=True)
    store.push(Q, [b"<back>"])
    check(store, ["<front>", *expected, "<back>"])
    assert store.pop(Q)[0].payload == b"<front>"
    assert store.pop(Q, back=True)[0].payload == b"<back>"
    check(store, expected)


WORDS = [str(i) for i in range(10)]


# -- rotate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 5, 6, 9, -1, -3, -5, -6, -9, 0, 10, 13, -13, 10**30 + 7])
def test_rotate_moves_items_as_deque_rotate_does(store: Store, n: int) -> None:
    fill(store, WORDS)
    model = deque(WORDS)
    model.rotate(n % len(WORDS))  # (deque itself takes no n beyond a C ssize_t)
    store.rotate(Q, n)
    check(store, list(model))
    ends_still_work(store, list(model))


def test_rotate_keeps_item_ids_and_payloads_together(store: Store) -> None:
    fill(store, WORDS)
    before = {i.id: i.payload for i in store.snapshot(Q)}
    store.rotate(Q, 2)
    store.rotate(Q, -7)
    after = store.snapshot(Q)
    assert sorted(i.payload for i in after) == sorted(before.values())
    # Redis keeps every id; PostgreSQL gives items moved to the back new ones.
    for item in after:
        assert item.id not in before or before[item.id] == item.payload


def test_rotate_of_an_empty_or_missing_queue_does_nothing(store: Store) -> None:
    store.rotate(Q, 3)
    store.rotate("never-used", -1)
    check(store, [])
    fill(store, ["only"])
    store.rotate(Q, 5)
    check(store, ["only"])


def test_rotate_refuses_a_count_that_is_no_int(store: Store) -> None:
    fill(store, WORDS)
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match="rotate's n is an int"):
            store.rotate(Q, bad)  # type: ignore[arg-type]
    check(store, WORDS)


def test_many_rotates_and_splices_agree_with_a_list(store: Store) -> None:
    rng = random.Random(7)
    model = [f"w{i}" for i in range(40)]
    fill(store, model)
    made = 0
    for _ in range(60):
        if rng.random() < 0.4:
            n = rng.randint(-50, 50)
            store.rotate(Q, n)
            d = deque(model)
            d.rotate(n)
            model = list(d)
        else:
            index = rng.randint(0, len(model))
            delete = rng.randint(0, min(3, len(model) - index))
            new = [f"n{made + k}" for k in range(rng.randint(0, 3))]
            made += len(new)
            removed = store.splice(Q, index, delete, [w.encode() for w in new])
            assert removed is not None
            assert [i.payload.decode() for i in removed] == model[index : index + delete]
            model[index : index + delete] = new
        assert contents(store) == model
    check(store, model)
    ends_still_work(store, model)


def test_ranks_stay_exact_when_moves_span_many_order_buckets(store: Store) -> None:
    # PostgreSQL counts ready items per 1,024 order numbers (and ids); blocks this big put
    # items in buckets of their own on both sides of the ones they started in.
    model = [f"w{i}" for i in range(3000)]
    fill(store, model)
    d = deque(model)
    for n in (1100, -1300, 1499, -1499, 2):
        store.rotate(Q, n)
        d.rotate(n)
    model = list(d)
    removed = store.splice(Q, 1200, 5, [f"n{i}".encode() for i in range(1100)])
    assert removed is not None and [i.payload.decode() for i in removed] == model[1200:1205]
    model[1200:1205] = [f"n{i}" for i in range(1100)]
    items = store.snapshot(Q)
    assert [i.payload.decode() for i in items] == model
    assert store.counts(Q).ready == len(model)
    for at in [*range(0, len(model), 97), len(model) - 1]:
        assert store.rank(Q, items[at].id) == at


# -- splice ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "delete", "new"),
    [
        (0, 0, ["a"]),  # insert at the front
        (10, 0, ["a", "b"]),  # at the back
        (4, 0, ["a", "b", "c"]),  # in the middle, nearer the front
        (7, 0, ["a"]),  # nearer the back
        (0, 2, []),  # delete at the front
        (8, 2, []),  # at the back
        (3, 4, []),  # in the middle
        (0, 1, ["a"]),  # replace at the front
        (9, 1, ["a"]),  # at the back
        (5, 1, ["a"]),  # in the middle
        (2, 3, ["a", "b", "c", "d", "e"]),  # more in than out
        (6, 3, ["a"]),  # fewer
        (-3, 1, ["a"]),  # from the tail
        (-10, 2, ["a"]),
        (-1, 0, ["a"]),
        (0, 10, ["a"]),  # everything
        (10, 0, []),  # nothing at all
    ],
)
def test_splice_removes_and_inserts_as_list_slicing_does(
    store: Store, index: int, delete: int, new: list[str]
) -> None:
    fill(store, WORDS)
    model = list(WORDS)
    at = index + len(model) if index < 0 else index
    removed = store.splice(Q, index, delete, [w.encode() for w in new])
    assert removed is not None
    assert [i.payload.decode() for i in removed] == model[at : at + delete]
    model[at : at + delete] = new
    check(store, model)
    ends_still_work(store, model)


def test_splice_returns_the_removed_items_and_gives_new_items_new_ids(store: Store) -> None:
    fill(store, WORDS)
    before = store.snapshot(Q)
    removed = store.splice(Q, 4, 2, [b"x", b"y"])
    assert removed == [i._replace(task=None, failures=0) for i in before[4:6]]
    after = store.snapshot(Q)
    new_ids = {i.id for i in after if i.payload in (b"x", b"y")}
    assert len(new_ids) == 2
    assert not new_ids & {i.id for i in before}
    removed_again = store.splice(Q, 4, 1, [b"4"])  # the same payload put back: a new id
    assert removed_again is not None and removed_again[0].payload == b"x"
    assert store.peek(Q, 4).id not in {i.id for i in before} | new_ids


def test_splice_of_an_empty_queue_inserts(store: Store) -> None:
    assert store.splice(Q, 0, 0, [b"a", b"b"]) == []
    check(store, ["a", "b"])
    ends_still_work(store, ["a", "b"])


@pytest.mark.parametrize(("index", "delete"), [(11, 0), (-11, 0), (9, 2), (0, 11), (-1, 2)])
def test_splice_out_of_range_raises_index_error_and_changes_nothing(
    store: Store, index: int, delete: int
) -> None:
    fill(store, WORDS)
    before = store.snapshot(Q)
    with pytest.raises(IndexError, match=f"index {index} with delete {delete} is out of range"):
        store.splice(Q, index, delete, [b"x"])
    assert store.snapshot(Q) == before
    check(store, WORDS)


@pytest.mark.parametrize(("index", "at"), [(100, 10), (10, 10), (-100, 0), (-3, 7), (4, 4)])
def test_a_clamped_splice_inserts_as_list_insert_does(store: Store, index: int, at: int) -> None:
    fill(store, WORDS)
    assert store.splice(Q, index, 0, [b"x"], clamp=True) == []
    model = list(WORDS)
    model.insert(index, "x")
    assert model.index("x") == at
    check(store, model)


def test_bad_splice_arguments_are_refused_before_anything_changes(store: Store) -> None:
    fill(store, WORDS)
    with pytest.raises(ValueError, match="a clamped splice only inserts: pass delete=0"):
        store.splice(Q, 0, 1, [b"x"], clamp=True)
    with pytest.raises(ValueError, match="delete is how many items to remove, 0 or more"):
        store.splice(Q, 0, -1)
    with pytest.raises(TypeError, match="splice's index is an int, not float"):
        store.splice(Q, 1.0, 0, [b"x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payload 1 is str, not bytes"):
        store.splice(Q, 0, 0, [b"x", "y"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="wrap a single one in a list"):
        store.splice(Q, 0, 0, b"x")
    with pytest.raises(TypeError, match="wrap a single id in a list"):
        store.splice(Q, 0, 0, [b"x"], expect="1")
    with pytest.raises(ValueError, match="maxlen is at least 0"):
        store.splice(Q, 0, 0, [b"x"], maxlen=-1)
    check(store, WORDS)


def test_splice_with_the_expected_head_applies(store: Store) -> None:
    fill(store, WORDS)
    ids = [i.id for i in store.snapshot(Q)]
    removed = store.splice(Q, 1, 1, [b"x"], expect=ids[:3])
    assert removed is not None and [i.payload for i in removed] == [b"1"]
    check(store, ["0", "x", *WORDS[2:]])


def test_splice_with_another_head_returns_none_and_changes_nothing(store: Store) -> None:
    fill(store, WORDS)
    ids = [i.id for i in store.snapshot(Q)]
    store.pop(Q)  # someone took the head since the snapshot
    before = store.snapshot(Q)
    assert store.splice(Q, 0, 1, [b"x"], expect=ids[:2]) is None
    assert store.splice(Q, 0, 1, [b"x"], expect=[*ids[1:], "9999"]) is None  # longer than it
    assert store.snapshot(Q) == before
    store.rotate(Q, 1)  # rotated: the same items, another order
    rotated = store.snapshot(Q)
    assert store.splice(Q, 0, 1, expect=[i.id for i in before[:2]]) is None
    assert store.snapshot(Q) == rotated
    assert store.splice(Q, 0, 1, expect=[i.id for i in rotated[:2]]) is not None


def test_splice_past_maxlen_raises_full_and_changes_nothing(store: Store) -> None:
    fill(store, WORDS)
    before = store.snapshot(Q)
    with pytest.raises(Full, match="would pass its maxlen of 10; nothing was changed"):
        store.splice(Q, 3, 0, [b"x"], maxlen=10)
    with pytest.raises(Full):
        store.splice(Q, 3, 1, [b"x", b"y"], maxlen=10)
    assert store.snapshot(Q) == before
    assert store.splice(Q, 3, 1, [b"x"], maxlen=10) is not None  # replaces: still 10
    assert store.splice(Q, 3, 0, [b"y"], maxlen=11) is not None
    check(store, ["0", "1", "2", "y", "x", *WORDS[4:]])


def test_a_splice_insert_or_a_rotate_wakes_a_waiter_of_another_handle(store: Any) -> None:
    fill(store, WORDS)
    # A handle of its own connections and change signal: only the store's own notice wakes it.
    other = open_store(store.url + "&retry=2.5")
    try:
        token = other.change_token()
        assert not other.wait_for_change(token, 0.2)  # nothing changed: it waits out its timeout
        token = other.change_token()
        started, woken = threading.Event(), []

        def wait() -> None:
            started.set()
            woken.append(other.wait_for_change(token, 30))

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert started.wait(30)
        store.splice(Q, 5, 0, [b"x"])
        waiter.join(30)
        assert woken == [True]
        token = other.change_token()
        store.rotate(Q, 1)  # a rotate changes the head: waiters hear of it too
        assert other.wait_for_change(token, 30)
    finally:
        other.close()


# -- the work done ----------------------------------------------------------------------------

BIG = 100_000


def _redis_members(store: Any) -> set[bytes]:
    server = store._server
    return set(server.execute("ZRANGE", f"{server.prefix}:q:{Q}:r", 0, -1))


def _pg_rows(store: Any) -> set[tuple[str, str]]:
    """The physical versions (ctid, xmin) of the queue's rows: a row an operation rewrote, or
    wrote, has a version that was not there before."""
    qid = store._db.find_qid(Q)
    rows = store._rows(
        "versions", "SELECT ctid::text, xmin::text FROM {s}.items WHERE qid = %s", (qid,)
    )
    return {(r[0], r[1]) for r in rows}


def test_rotate_and_splice_rewrite_only_the_items_they_move(store: Any) -> None:
    fill(store, [str(i) for i in range(BIG)])
    versions = _redis_members if store.scheme == "redis" else _pg_rows
    model: deque[str] = deque(str(i) for i in range(BIG))

    def rewritten(op: Any) -> int:
        before = versions(store)
        op()
        return len(versions(store) - before)

    assert rewritten(lambda: store.rotate(Q, 1)) == 1
    assert rewritten(lambda: store.rotate(Q, -3)) == 3
    model.rotate(1)
    model.rotate(-3)
    # Near the front: the 2 items before the index move, 1 new item; 1 deleted.
    assert rewritten(lambda: store.splice(Q, 2, 1, [b"x"])) == 3
    # Near the back: the 3 items after the index move, 2 new; none deleted.
    assert rewritten(lambda: store.splice(Q, -3, 0, [b"y", b"z"])) == 5
    model[2] = "x"
    for w in ("y", "z"):
        model.insert(len(model) - 3, w)
    # A rotate of all but 2 items to the right is 2 to the left: 2 moved, not 100,000.
    assert rewritten(lambda: store.rotate(Q, len(model) - 2)) == 2
    model.rotate(len(model) - 2)
    assert store.counts(Q).ready == len(model)
    head = [store.peek(Q, i).payload.decode() for i in range(6)]
    tail = [store.peek(Q, -i).payload.decode() for i in range(6, 0, -1)]
    assert head == list(model)[:6]
    assert tail == list(model)[-6:]
    for i in (0, 1, 2, len(model) // 2, len(model) - 1):
        assert store.rank(Q, store.peek(Q, i).id) == i


# -- other queues, junk, inbox, concurrency -------------------------------------------------------


def test_rotate_and_splice_lose_nothing_on_a_queue_used_as_no_deque(store: Store) -> None:
    store.push(Q, [b"p1", b"p1b"], priorities=1)
    store.push(Q, [b"m1"], priorities=-1)
    store.push(Q, [b"z0", b"z1", b"z2"])
    leased = store.reserve(Q, "someone", 60.0)
    assert [i.payload for i in leased] == [b"m1"]
    store.rotate(Q, 2)
    store.rotate(Q, -1)
    assert store.splice(Q, 1, 1, [b"new"]) is not None
    payloads = sorted(i.payload for i in store.snapshot(Q))
    assert len(payloads) == 5 and b"new" in payloads
    assert store.counts(Q).leased == 1
    assert store.ack(Q, [leased[0].id], "someone") == 1


def test_rotate_files_a_push_still_waiting_to_be_filed(store: Store) -> None:
    fill(store, ["a", "b"])
    store.push(Q, [b"c"])  # one push to the back: Redis files it with the next script
    store.rotate(Q, 1)
    check(store, ["c", "a", "b"])


def test_head_updates_with_expect_from_threads_are_each_applied_once(store: Store) -> None:
    fill(store, ["0", "tail"])
    threads, rounds = 3, 15

    def bump() -> None:
        for _ in range(rounds):
            while True:  # read, compute, write if nobody wrote since: as Deque does
                head = store.peek(Q, 0)
                new = str(int(head.payload) + 1).encode()
                if store.splice(Q, 0, 1, [new], expect=[head.id]) is not None:
                    break

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    check(store, [str(threads * rounds), "tail"])


def test_a_rotate_moves_an_unreadable_item_aside_and_rotates_the_rest(redis_url: str) -> None:
    store: Any = open_store(redis_url)
    try:
        fill(store, WORDS)
        ids = [i.id for i in store.snapshot(Q)]
        server, prefix = store._server, redis_url.rsplit("prefix=", 1)[1]
        server.execute("DEL", f"{prefix}:i:{ids[9]}")
        server.execute("SET", f"{prefix}:i:{ids[9]}", "not a hash")
        store.rotate(Q, 2)
        check(store, ["7", "8", "0", "1", "2", "3", "4", "5", "6"])
        assert server.execute("GET", f"{prefix}:junk:i:{ids[9]}") == b"not a hash"
        server.execute("HDEL", f"{prefix}:i:{ids[0]}", "p")  # a ready item with no payload
        assert store.splice(Q, 4, 0, [b"x"]) == []
        assert contents(store) == ["7", "8", "1", "2", "x", "3", "4", "5", "6"]
        assert server.execute("EXISTS", f"{prefix}:junk:i:{ids[0]}") == 1
    finally:
        store.close()


def test_splice_takes_any_int_as_index(store: Store) -> None:
    fill(store, WORDS)
    assert store.splice(Q, 10**30, 0, [b"end"], clamp=True) == []
    assert store.splice(Q, -(10**30), 0, [b"start"], clamp=True) == []
    with pytest.raises(IndexError):
        store.splice(Q, 10**30, 0, [b"x"])
    with pytest.raises(IndexError):
        store.splice(Q, 0, 10**30)
    check(store, ["start", *WORDS, "end"])


def test_a_splice_that_only_removes_or_checks_makes_no_queue(store: Store) -> None:
    assert store.splice("nothing-here", 0, 0) == []
    assert store.splice("nothing-here", 0, 0, expect=["1"]) is None
    with pytest.raises(IndexError):
        store.splice("nothing-here", 0, 1)
    assert "nothing-here" not in store.queues()


@pytest.fixture(params=["postgres"])
def postgres_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    for url in _fresh(request, tmp_path):
        s = open_store(url)
        yield s
        s.close()


def test_a_spliced_out_row_that_cannot_be_read_goes_to_junk(
    postgres_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = postgres_store
    fill(store, WORDS)
    ids = [i.id for i in store.snapshot(Q)]
    store._rows(
        "spoil", "UPDATE {s}.items SET priority = 'NaN' WHERE id = %s RETURNING 1", (int(ids[0]),)
    )
    # NaN sorts after every number: the spoilt row is the tail, and a rotate keeps it there
    store.rotate(Q, 2)  # 9 goes to the front, the spoilt 0 stays last: 9, 1, ..., 8, 0
    removed = store.splice(Q, -2, 2)
    assert removed is not None and [i.payload for i in removed] == [b"8"]
    assert contents(store) == ["9", "1", "2", "3", "4", "5", "6", "7"]
    (reason,) = store._one("junk", "SELECT reason FROM {s}.junk")
    assert "NaN" in reason
    assert any("cannot be read" in r.getMessage() for r in caplog.records)
