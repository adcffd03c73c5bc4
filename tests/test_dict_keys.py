"""baozi.Dict keys, on every store: every hashable kind the safe serializer keeps comes back as
it went in, and keys Python holds equal are one key, the first one written kept."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import baozi
from baozi._dictkeys import key_text
from tests import _coordprocs
from tests.test_sync import _parallel

UTC = dt.UTC
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))

KEYS = [
    (1, "a"),
    ((1, (2, ("deep",))), None),
    frozenset({1, "b", (2, 3)}),
    frozenset({frozenset({1}), frozenset()}),
    dt.datetime(2020, 1, 2, 3, 4, 5, 6),
    dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=PLUS_ONE),
    dt.datetime(2020, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    dt.date(2020, 1, 2),
    dt.time(12, 30, 1, 5),
    dt.timedelta(days=-1, seconds=5),
    Decimal("0.1"),
    Decimal("1E+40"),
    b"\x00bytes\n",
    uuid.UUID(int=12345),
    "text with\na newline",
    -2.5,
    float("inf"),
    2**63 + 1,
    (),
]


def test_every_kind_of_key_comes_back_exactly(url: str) -> None:
    d = baozi.Dict("kinds", url=url)
    for i, key in enumerate(KEYS):
        d[key] = i
    again = baozi.Dict("kinds", url=url)
    assert len(again) == len(KEYS)
    back = again.keys()
    assert sorted(map(repr, back)) == sorted(map(repr, KEYS))  # the same kinds, not just equal
    for key, got in zip(sorted(KEYS, key=repr), sorted(back, key=repr), strict=True):
        assert type(got) is type(key) and got == key
        if isinstance(key, dt.datetime):
            assert got.tzinfo == key.tzinfo and got.fold == key.fold
    assert [again[k] for k in KEYS] == list(range(len(KEYS)))
    assert again.copy() == {k: i for i, k in enumerate(KEYS)}
    assert again == {k: i for i, k in enumerate(KEYS)}


EQUAL = [
    [1, 1.0, True, Decimal(1), Decimal("1.000")],
    [0, 0.0, -0.0, False, Decimal("-0"), Decimal("0E+5")],
    [0.5, Decimal("0.5")],
    [10**30, float(10**30) if float(10**30) == 10**30 else 10**30, Decimal("1E+30")],
    [(1, "a"), (1.0, "a"), (True, "a")],
    [frozenset({1, 2, 3}), frozenset({3.0, 2, 1}), frozenset([2, True, 3])],
    [
        dt.datetime(2020, 1, 1, tzinfo=UTC),
        dt.datetime(2020, 1, 1, 1, tzinfo=PLUS_ONE),
        dt.datetime(2019, 12, 31, 19, tzinfo=ZoneInfo("America/New_York")),
    ],
    [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, fold=1)],
    [float("inf"), Decimal("Infinity")],
]

UNEQUAL = [
    2**53 + 1,
    float(2**53 + 1),
    0.1,
    Decimal("0.1"),
    "a",
    b"a",
    "1",
    None,
    dt.datetime(2020, 1, 1),  # naive: never equal to an aware one
    dt.datetime(2020, 1, 1, tzinfo=UTC),
    dt.date(2020, 1, 1),
    (1,),
    frozenset({1}),
    (1, 2),
    (2, 1),
    -float("inf"),
    10**30 + 1,
]


def test_the_key_texts_follow_python_equality() -> None:
    for group in EQUAL:
        assert len(set(group)) == 1  # the premise: Python holds them equal
        assert len({key_text(k) for k in group}) == 1, group
    assert len(set(UNEQUAL)) == len(UNEQUAL)
    assert len({key_text(k) for k in UNEQUAL}) == len(UNEQUAL)
    firsts = [group[0] for group in EQUAL]
    assert len({key_text(k) for k in firsts}) == len(firsts)


def test_equal_keys_are_one_key_and_the_first_is_kept(url: str) -> None:
    d = baozi.Dict("equal", url=url)
    for group in EQUAL:
        for i, key in enumerate(group):
            d[key] = i
    assert len(d) == len(d.items()) == len(EQUAL)
    expected = {group[0]: len(group) - 1 for group in EQUAL}
    assert d.copy() == expected
    kept = {repr(k) for k in d.keys()}
    assert kept == {repr(group[0]) for group in EQUAL}  # 1, not 1.0 nor True
    for group in EQUAL:
        assert all(k in d and d[k] == len(group) - 1 and d.get(k) == len(group) - 1 for k in group)


def test_writes_through_an_equal_key_keep_the_first_key(url: str) -> None:
    d = baozi.Dict("first", url=url)
    d[1] = "a"
    d[1.0] = "b"
    assert d.items() == [(1, "b")] and type(d.keys()[0]) is int
    assert d.setdefault(True, "c") == "b"
    assert d.incr(2.0) == 1 and d.incr(Decimal(2), 2) == 3 and d.incr(2) == 4
    assert sorted(d.items(), key=repr) == [(1, "b"), (2.0, 4)]
    assert d.pop(True) == "b" and 1 not in d
    d[True] = "t"
    assert d.keys() == [2.0, True] or d.keys() == [True, 2.0]
    key, value = d.popitem()
    assert (key, value) in [(True, "t"), (2.0, 4)]
    d.clear()
    d.update({1.0: "x", (1, 2): "y"})
    d.update({(1.0, 2.0): "z"})
    assert len(d) == 2 and d[(1, 2)] == "z" and sorted(d.keys(), key=repr) == [(1, 2), 1.0]
    del d[True]
    assert len(d) == 1 and True not in d


class _Fixed(dt.tzinfo):
    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=2)


def test_nan_and_unhashable_keys_are_refused_and_change_nothing(url: str) -> None:
    d = baozi.Dict("refused", url=url)
    d["kept"] = 1
    before = d.copy()
    for bad in (float("nan"), Decimal("NaN"), (1, float("nan")), frozenset({math.nan})):
        with pytest.raises(ValueError, match="NaN"):
            d[bad] = 2
        with pytest.raises(ValueError, match="NaN"):
            d.incr(bad)
        with pytest.raises(ValueError, match="NaN"):
            d.setdefault(bad, 3)
        assert bad not in d
    for bad in ([1], {"a": 1}, (1, [2]), {1}):
        with pytest.raises(TypeError, match="unhashable type"):
            d[bad] = 2
        with pytest.raises(TypeError, match="unhashable type"):
            d[bad]  # noqa: B018
        with pytest.raises(TypeError, match="unhashable type"):
            bad in d  # noqa: B015
    for bad in (object(), 1j, dt.time(1, tzinfo=UTC), (1, object())):
        with pytest.raises(TypeError, match="key cannot be of type .*: use one of None, bool"):
            d[bad] = 2
        assert bad not in d
    with pytest.raises(TypeError, match="tzinfo"):  # the serializer's own refusal
        d[dt.datetime(2020, 1, 1, tzinfo=_Fixed())] = 2
    assert d.copy() == before


def test_processes_writing_equal_keys_leave_one_key_and_lose_no_update(url: str) -> None:
    _parallel(url, _coordprocs.write_equal_keys, (150,), 4)
    d = baozi.Dict("equal", url=url)
    assert len(d) == len(d.items()) == 2
    assert d[2] == 600 and d[True] == d[1.0] == d[Decimal(1)]
    assert sorted(d.keys()) == [1, 2]


def _pool() -> list[object]:
    numbers: list[object] = [
        0, 1, -1, 2, 10**20, 10**21, 10**30, 2**53, 2**53 + 1, 2**63, -(2**63) - 1,
        0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-7, 1e21, 1e22, 1e300, 5e-324, float(2**53), float(2**63),
        float("inf"), float("-inf"), True, False,
        Decimal(0), Decimal("-0"), Decimal("1.0"), Decimal("0.5"), Decimal("0.1"), Decimal(0.1),
        Decimal("1E+21"), Decimal("1E+22"), Decimal("1E-400"), Decimal("-Infinity"),
        Decimal("123.4500"), Decimal(2**53 + 1),
    ]  # fmt: skip
    others: list[object] = [
        None, "", "0", "1", "a", b"", b"a", b"1", (), (0,), (0.0,), ((),), frozenset(),
        frozenset({0}), frozenset({(1, 2)}), frozenset({(1.0, 2.0), 3}), frozenset({3, (1, 2)}),
        dt.date(2020, 1, 1), dt.datetime(2020, 1, 1), dt.datetime(1, 1, 1, tzinfo=PLUS_ONE),
        dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 1, 1, tzinfo=PLUS_ONE),
        dt.time(0, 0), dt.time(0, 0, 0, 1), dt.timedelta(0), dt.timedelta(days=1),
        dt.timedelta(seconds=86400), uuid.UUID(int=0), uuid.UUID(int=1),
    ]  # fmt: skip
    return numbers + others + [(x, "t") for x in numbers]


def test_two_keys_share_a_text_exactly_when_python_holds_them_equal() -> None:
    pool = _pool()
    for a in pool:
        for b in pool:
            assert (key_text(a) == key_text(b)) == (a == b), (a, b)


def test_an_entry_with_no_key_is_named_and_can_be_deleted(url: str) -> None:
    d = baozi.Dict("junk", url=url)
    d["ok"] = 1
    store = d._owner.store
    store.kv_set("dict:junk", key_text(5), b"5")  # as a baozi of the layout before wrote it
    with pytest.raises(baozi.StoreError, match=r"entry '5' of 'dict:junk' holds b'5'.*with del"):
        d[5]  # noqa: B018
    with pytest.raises(baozi.StoreError, match="entry '5'"):
        d.items()
    del d[5]
    assert d.copy() == {"ok": 1}
