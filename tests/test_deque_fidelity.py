"""baozi.Deque against collections.deque: seeded random runs of every method and operator, side by
side, comparing after each step the returned value or raised exception type, the contents and len."""

from __future__ import annotations

import collections
import copy
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baozi import Deque

from .conftest import _fresh

# Equal but different values (1, 1.0, True), strings that look like them, and None: a step that
# returned or kept the wrong one of equal values is caught by comparing reprs, not ==.
POOL: list[Any] = [0, 1, 1.0, True, 2, "a", "b", "1", None]
STEPS = 300
CAP = 24  # past this length only shrinking operations are drawn, so the deques stay small

Op = Callable[[Any], Any]


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def fidelity_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _fresh(request, tmp_path)


def _strict(x: Any) -> Any:
    """A value as compared here: type and repr, so 1, 1.0 and True differ, and deques of both
    kinds (copies, sums) are their items and maxlen."""
    if isinstance(x, (collections.deque, Deque)):
        return ("deque", [_strict(v) for v in x], x.maxlen)
    if isinstance(x, list):
        return [_strict(v) for v in x]
    return (type(x).__name__, repr(x))


def _assign(t: Any, i: int, v: Any) -> None:
    t[i] = v


def _delete(t: Any, i: int) -> None:
    del t[i]


def _iadd(t: Any, values: list[Any]) -> None:
    t += values


def _imul(t: Any, n: int) -> None:
    t *= n


def _set_maxlen(t: Any) -> None:
    t.maxlen = 3


def _growing(r: random.Random) -> list[tuple[str, Op]]:
    v, vs, n = r.choice(POOL), r.choices(POOL, k=r.randint(0, 4)), r.randint(-2, 3)
    i = r.randint(-8, 8)
    return [
        ("append", lambda t: t.append(v)),
        ("appendleft", lambda t: t.appendleft(v)),
        ("extend", lambda t: t.extend(vs)),
        ("extendleft", lambda t: t.extendleft(vs)),
        ("insert", lambda t: t.insert(i, v)),
        ("+=", lambda t: _iadd(t, vs)),
        ("*=", lambda t: _imul(t, n if len(t) <= 6 else 1)),
    ]


def _shrinking(r: random.Random) -> list[tuple[str, Op]]:
    v, i = r.choice(POOL), r.randint(-8, 8)
    clear, empty = r.random() < 0.2, r.choice([0, -1])
    return [
        ("pop", lambda t: t.pop()),
        ("popleft", lambda t: t.popleft()),
        ("remove", lambda t: t.remove(v)),
        ("del", lambda t: _delete(t, i)),
        ("clear", lambda t: t.clear() if clear else None),
        ("*=0", lambda t: _imul(t, empty)),
    ]


def _others(r: random.Random) -> list[tuple[str, Op]]:
    v, i, n = r.choice(POOL), r.randint(-8, 8), r.randint(-10, 10)
    start, stop = r.randint(-8, 8), r.randint(-8, 8)
    other = collections.deque(r.choices(POOL, k=r.randint(0, 5)), r.choice([None, 2, 6]))
    k = r.randint(-1, 3)
    return [
        ("rotate", lambda t: t.rotate(n)),
        ("rotate()", lambda t: t.rotate()),
        ("reverse", lambda t: t.reverse()),
        ("set", lambda t: _assign(t, i, v)),
        ("get", lambda t: t[i]),
        ("get slice", lambda t: t[0:1]),
        ("get str", lambda t: t["0"]),
        ("count", lambda t: t.count(v)),
        ("index", lambda t: t.index(v)),
        ("index start", lambda t: t.index(v, start)),
        ("index start stop", lambda t: t.index(v, start, stop)),
        ("in", lambda t: v in t),
        ("len", len),
        ("bool", bool),
        ("iter", list),
        ("reversed", lambda t: list(reversed(t))),
        ("copy", lambda t: t.copy()),
        ("copy.copy", copy.copy),
        ("+", lambda t: t + other),
        ("+ list", lambda t: t + list(other)),
        ("*", lambda t: t * k),
        ("rmul", lambda t: k * t),
        ("==", lambda t: t == other),
        ("!=", lambda t: t != other),
        ("<", lambda t: t < other),
        ("<=", lambda t: t <= other),
        (">", lambda t: t > other),
        (">=", lambda t: t >= other),
        ("< list", lambda t: t < list(other)),
        ("hash", hash),
        ("maxlen", lambda t: t.maxlen),
        ("set maxlen", _set_maxlen),
        ("rotate str", lambda t: t.rotate("1")),
        ("insert str", lambda t: t.insert("0", v)),
    ]


def _run(op: Op, target: Any) -> tuple[str, Any]:
    try:
        return "returned", _strict(op(target))
    except Exception as exc:  # the type is what is compared
        return "raised", type(exc).__name__


def _play(url: str, seed: int, maxlen: int | None) -> set[str]:
    r = random.Random(seed)
    ref: collections.deque[Any] = collections.deque(maxlen=maxlen)
    seen = set()
    with Deque(f"fidelity-{seed}", url=url, maxlen=maxlen) as d:
        for step in range(STEPS):
            choices = _shrinking(r)
            if len(ref) <= CAP:
                choices += _growing(r) + _others(r)
            name, op = r.choice(choices)
            expected, got = _run(op, ref), _run(op, d)
            where = f"seed {seed}, maxlen {maxlen}, step {step}: {name}"
            assert got == expected, where
            assert _strict(list(d)) == _strict(list(ref)), where
            assert len(d) == len(ref), where
            seen.add(name if expected[0] == "returned" else f"{name} raised")
        assert d == list(ref) and d == ref and d == d  # contents compare with lists too
    return seen


@pytest.mark.parametrize("maxlen", [None, 5])
def test_deque_behaves_like_collections_deque_step_by_step(
    fidelity_url: str, maxlen: int | None
) -> None:
    seen: set[str] = set()
    for seed in range(8):
        seen |= _play(fidelity_url, seed * 100 + (maxlen or 0), maxlen)
    # the runs reached the failures they are meant to compare, not only the successes
    for failure in ("pop", "popleft", "remove", "del", "get", "index start stop", "hash"):
        assert f"{failure} raised" in seen
    if maxlen:
        assert "insert raised" in seen


def test_a_deque_equals_a_list_of_its_contents_unlike_collections_deque(url: str) -> None:
    with Deque("d", url=url) as d:
        d.extend([1, "a"])
        assert d == [1, "a"] and [1, "a"] == d
        assert d != [1] and d != ("a", 1) and d != (1, "a")
        assert collections.deque([1, "a"]) != [1, "a"]
