"""A Deque's rotate and splice write only the items they move, not the whole deque (SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baozi import Deque

N = 100_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deque]:
    path: Path = tmp_path_factory.mktemp("deque") / "store.db"
    with Deque("big", url=f"sqlite:///{path}") as d:
        d.extend(range(N))
        yield d


def _writes(d: Deque, change: Callable[[Deque], Any]) -> tuple[int, int]:
    """(rows written, rows made) by ``change``: the store's own connection's count of changed rows
    (this thread's connection, so nothing else is counted), and the rows with an id above every id
    before (ids only grow: a moved or new item is a new row). The count holds the triggers' writes
    too: each item row written moves the line's stretches (baozi_line) by at most two rows more
    (a count changed, a stretch emptied and dropped), hence the factor 3 below."""
    conn = d._store._conn  # type: ignore[attr-defined]
    (top,) = conn.execute("SELECT max(id) FROM baozi_items").fetchone()
    changes = conn.total_changes
    change(d)
    written = conn.total_changes - changes
    (made,) = conn.execute("SELECT count(*) FROM baozi_items WHERE id > ?", (top,)).fetchone()
    return written, made


@pytest.mark.parametrize(("n", "moved"), [(1, 1), (-3, 3), (2, 2), (N - 1, 1), (-(N - 2), 2)])
def test_rotate_of_a_100000_item_deque_rewrites_only_the_moved_items(
    big: Deque, n: int, moved: int
) -> None:
    first = big[0]
    written, made = _writes(big, lambda d: d.rotate(n))
    assert made <= moved
    assert written <= 3 * 2 * moved  # each moved item: one new row, one row deleted
    assert big[n % N] == first
    assert len(big) == N


def test_a_rotation_of_half_the_items_moves_half(big: Deque) -> None:
    written, made = _writes(big, lambda d: d.rotate(N // 2 + 10))
    assert made == N // 2 - 10  # done as the shorter rotation the other way
    assert written <= 3 * 2 * made


@pytest.mark.parametrize(
    ("change", "grows"),
    [
        (lambda d: d.insert(1, "x"), 1),
        (lambda d: d.insert(-1, "y"), 1),
        (lambda d: d.__delitem__(2), -1),
        (lambda d: d.__delitem__(-3), -1),
        (lambda d: d.__setitem__(-1, "z"), 0),
        (lambda d: d.__setitem__(0, "w"), 0),
    ],
    ids=["insert(1)", "insert(-1)", "del d[2]", "del d[-3]", "d[-1]=", "d[0]="],
)
def test_splices_near_either_end_write_a_handful_of_rows(
    big: Deque, change: Callable[[Deque], Any], grows: int
) -> None:
    size = len(big)
    written, made = _writes(big, change)
    assert written <= 3 * 6 and made <= 3
    assert len(big) == size + grows


def test_remove_near_the_front_writes_a_handful_of_rows(big: Deque) -> None:
    big.insert(2, "gone")
    written, made = _writes(big, lambda d: d.remove("gone"))
    assert written <= 3 * 5 and made <= 2
    assert "gone" not in big


def test_a_moved_row_copies_every_column_of_the_layout(big: Deque) -> None:
    from baozi.backends.sqlite import _deque

    conn = big._store._conn  # type: ignore[attr-defined]
    columns = {row[1] for row in conn.execute("PRAGMA table_info(baozi_items)")}
    copied = {c.strip() for c in _deque._KEPT.split(",")} | {"id", "seq", "counted"}
    assert copied == columns
