"""The default serializer round-trips the common types exactly and refuses the rest at put time."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import namedtuple
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baozi import Queue
from baozi.serialize import JsonSerializer, PickleSerializer, get_serializer

codec = JsonSerializer()

EXACT = [
    None,
    True,
    False,
    0,
    -1,
    2**100,
    1.5,
    float("inf"),
    float("-inf"),
    "",
    "héllo ✓",
    b"",
    b"\x00\xff",
    [],
    [1, [2]],
    (),
    (1, (2, 3)),
    {},
    {"a": 1},
    {1: "int key", (1, 2): "tuple key"},
    {"__baozi__": "looks tagged"},
    set(),
    {1, 2},
    frozenset({"a"}),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    dt.date(2024, 2, 29),
    dt.time(12, 30, 15, 7),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    dt.datetime(2024, 1, 1, fold=1),
    dt.time(1, fold=1),
    Decimal("1.10"),
    Decimal("-0"),
    uuid.UUID(int=12345),
]


@pytest.mark.parametrize("value", EXACT, ids=repr)
def test_round_trips_exactly_with_types(value: object) -> None:
    back = codec.loads(codec.dumps(value))
    assert back == value and type(back) is type(value)
    if isinstance(value, dt.datetime):
        assert back.tzinfo == value.tzinfo and back.fold == value.fold


def test_nan_round_trips() -> None:
    back = codec.loads(codec.dumps([float("nan")]))
    assert back[0] != back[0]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.timedeltas(),
    lambda children: (
        st.lists(children)
        | st.tuples(children, children)
        | st.dictionaries(st.text() | st.integers(), children)
        | st.frozensets(st.integers())
    ),
    max_leaves=20,
)


def _shape(value: object) -> object:
    """The value's types, all the way down (so a list where a tuple was would show)."""
    if isinstance(value, (list, tuple)):
        return (type(value), [_shape(v) for v in value])
    if isinstance(value, dict):
        return (dict, sorted((repr(_shape(k)), repr(_shape(v))) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value), sorted(repr(_shape(v)) for v in value))
    return type(value)


@given(json_values)
def test_any_nesting_round_trips(value: object) -> None:
    back = codec.loads(codec.dumps(value))
    assert back == value
    assert _shape(back) == _shape(value)


Point = namedtuple("Point", "x y")


class Custom:
    pass


@pytest.mark.parametrize(
    "value", [Custom(), Point(1, 2), object(), [1, Custom()], {"k": {1, Custom()}}]
)
def test_refuses_other_types_naming_the_type_and_the_way_out(value: object) -> None:
    with pytest.raises(TypeError, match="serializer='pickle'"):
        codec.dumps(value)


def test_a_refused_item_is_refused_at_put_and_nothing_is_stored(url: str) -> None:
    with Queue("q", url=url) as q:
        q.put("kept")
        with pytest.raises(TypeError, match="Custom"):
            q.put(Custom())
        with pytest.raises(TypeError):
            q.put_many(["fine", Custom()])
        assert q.get_many(10) == ["kept"]


def test_pickle_is_opt_in_per_queue(url: str) -> None:
    with Queue("q", url=url, serializer="pickle") as q:
        q.put(Point(1, 2))
        assert q.get() == Point(1, 2)


def test_pickle_serializer_reports_unpicklable_objects_as_type_errors() -> None:
    with pytest.raises(TypeError):
        PickleSerializer().dumps(lambda: 1)


def test_serializer_lookup() -> None:
    assert get_serializer("json").name == "json"
    with pytest.raises(ValueError, match="unknown serializer"):
        get_serializer("xml")
    with pytest.raises(TypeError):
        get_serializer(42)  # type: ignore[arg-type]
