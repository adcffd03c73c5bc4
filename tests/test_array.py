"""baozi.Array and baozi.Value: multiprocessing's shared types, on every store.

Where baozi means to behave as multiprocessing does, the test asks multiprocessing too.
"""

from __future__ import annotations

import array
import ctypes
import math
import multiprocessing
import pickle
import random
import threading
from pathlib import Path
from typing import Any

import pytest

import baozi
from baozi import App, Array, Value

INTEGER_CODES = "bBhHiIlLqQ"
_BITS = {c: 8 * array.array(c).itemsize for c in INTEGER_CODES}


def _range(code: str) -> tuple[int, int]:
    bits = _BITS[code]
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if code.islower() else (0, 2**bits - 1)


# -- reading and writing -----------------------------------------------------------------------


def test_a_new_array_holds_the_zeros_of_its_type(url: str) -> None:
    assert Array("i", "i", 3, url=url)[:] == [0, 0, 0]
    assert Array("d", "d", 2, url=url)[:] == [0.0, 0.0]
    assert Array("u", "u", 2, url=url)[:] == multiprocessing.Array("u", 2)[:] == "\x00\x00"
    assert len(Array("empty", "i", 0, url=url)) == 0


def test_indexes_and_negative_indexes_read_and_write(url: str) -> None:
    arr = Array("a", "i", [10, 11, 12, 13], url=url)
    arr[0] = 100
    arr[-1] = 103
    assert (arr[0], arr[1], arr[-1], arr[-4]) == (100, 11, 103, 100)
    assert len(arr) == 4 and list(arr) == [100, 11, 12, 103]


def test_slices_read_and_assign_as_multiprocessing_does(url: str) -> None:
    ours, theirs = Array("a", "i", 6, url=url), multiprocessing.Array("i", 6)
    for arr in (ours, theirs):
        arr[:] = [0, 1, 2, 3, 4, 5]
        arr[1:3] = [10, 20]
        arr[::2] = [7, 7, 7]
        arr[-1:] = [-5]
    assert ours[:] == theirs[:] == [7, 10, 7, 3, 7, -5]
    assert ours[::-2] == theirs[::-2] and ours[4:1:-1] == theirs[4:1:-1] and ours[9:] == []
    chars = Array("u", "u", "hello", url=url)
    chars[1:3] = "EL"
    assert chars[:] == "hELlo" and chars[::-1] == "olLEh"  # a slice of 'u' is a str, as in ctypes


def test_a_slice_assigned_another_length_raises_value_error_and_writes_nothing(url: str) -> None:
    arr = Array("a", "i", [1, 2, 3], url=url)
    with pytest.raises(ValueError, match="same size"):
        arr[0:2] = [9]
    with pytest.raises(ValueError):
        multiprocessing.Array("i", 3)[0:2] = [9]
    with pytest.raises(TypeError, match=r"'a'\[1\]"):
        arr[:] = [5, "x", 6]  # checked before the first write: 5 is not written either
    with pytest.raises(TypeError, match="sequence"):
        arr[0:1] = 5
    assert arr[:] == [1, 2, 3]


def test_iteration_goes_over_the_values_read_at_one_moment(url: str) -> None:
    arr = Array("a", "i", [1, 2, 3], url=url)
    seen = []
    for value in arr:
        arr[2] = 99  # written after the iteration began: not seen by it
        seen.append(value)
    assert seen == [1, 2, 3] and arr[:] == [1, 2, 99]


def test_an_index_past_the_end_raises_index_error(url: str) -> None:
    arr = Array("a", "i", 3, url=url)
    for index in (3, -4, 10**30):
        with pytest.raises(IndexError, match="out of range"):
            arr[index]
        with pytest.raises(IndexError):
            arr[index] = 1
        with pytest.raises(IndexError):
            arr.add(index, 1)
    with pytest.raises(TypeError, match="integers or slices"):
        arr["0"]  # type: ignore[index]
    assert arr[:] == [0, 0, 0]


@pytest.mark.parametrize(
    ("code", "bad"),
    [
        ("i", "x"),
        ("i", 1.5),
        ("i", None),
        ("Q", b"1"),
        ("d", "1.0"),
        ("d", None),
        ("u", 1),
        ("u", "ab"),
    ],
)
def test_a_value_of_the_wrong_type_raises_type_error_as_multiprocessing_does(
    url: str, code: str, bad: Any
) -> None:
    with pytest.raises(TypeError):
        multiprocessing.Array(code, 1)[0] = bad
    arr = Array("a", code, 1, url=url)
    before = arr[0]
    with pytest.raises(TypeError, match=rf"baozi.Array 'a'\[0\].*typecode '{code}'"):
        arr[0] = bad
    assert arr[0] == before


@pytest.mark.parametrize("code", INTEGER_CODES)
def test_a_number_out_of_range_raises_overflow_error_where_multiprocessing_wraps(
    url: str, code: str
) -> None:
    low, high = _range(code)
    theirs = multiprocessing.Array(code, 1)
    theirs[0] = high + 1
    assert theirs[0] == low  # ctypes wraps silently; a durable counter must not
    arr = Array("a", code, [high], url=url)
    for bad in (high + 1, low - 1, 2**100):
        with pytest.raises(OverflowError, match=rf"out of range for typecode '{code}'"):
            arr[0] = bad
    assert arr[0] == high
    arr[0] = low
    assert arr[0] == low


def test_every_typecode_keeps_the_ends_of_its_range_exactly(url: str) -> None:
    for code in INTEGER_CODES:
        low, high = _range(code)
        arr = Array(f"ends-{code}", code, [low, high], url=url)
        assert Array(f"ends-{code}", code, 2, url=url)[:] == [low, high]
        assert arr.add(0, 1) == low + 1 and arr.add(1, -1) == high - 1
    big = Array("double", "d", [1e308, -5e-324, -0.0], url=url)
    assert big[:] == [1e308, -5e-324, 0.0] and math.copysign(1, big[2]) == -1


def test_f_rounds_to_single_precision_as_ctypes_does(url: str) -> None:
    ours, theirs = Array("f", "f", [0.1, 1 / 3, 16777217], url=url), multiprocessing.Array("f", 3)
    theirs[:] = [0.1, 1 / 3, 16777217]
    assert ours[:] == theirs[:] and ours[0] != 0.1
    with pytest.raises(OverflowError, match="'f'"):
        ours[0] = 1e39  # past float32; ctypes would store inf
    assert ours.add(2, 1.0) == 16777216.0  # 2**24 + 1 is no float32: the sum rounds, as in C
    with pytest.raises(OverflowError, match="nothing was changed"):
        ours.add(1, 3.5e38)
    assert ours[:] == theirs[:]


def test_floats_must_be_finite(url: str) -> None:
    arr = Array("d", "d", 1, url=url)
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="finite"):
            arr[0] = bad
        with pytest.raises(ValueError, match="finite"):
            arr.add(0, bad)
    arr[0] = 3  # an int is a float here, as in ctypes
    assert arr[0] == 3.0 and isinstance(arr[0], float)


def test_ctypes_types_name_the_same_arrays_as_typecodes(url: str) -> None:
    pairs = [(ctypes.c_int, "i"), (ctypes.c_double, "d"), (ctypes.c_wchar, "u")]
    pairs += [(ctypes.c_ubyte, "B"), (ctypes.c_longlong, "q"), (ctypes.c_ulong, "L")]
    for ctype, code in pairs:
        made = Array(f"by-{code}", ctype, 2, url=url)
        made[1] = "z" if code == "u" else 7
        assert Array(f"by-{code}", code, 2, url=url)[1] == made[1]
    with pytest.raises(TypeError, match="c_char"):
        Array("c", ctypes.c_char, 1, url=url)


# -- the type and size recorded in the store ---------------------------------------------------


def test_another_typecode_or_size_raises_value_error_naming_what_is_stored(url: str) -> None:
    arr = Array("a", "i", [1, 2, 3, 4, 5], url=url)
    with pytest.raises(ValueError, match=r"stored with typecode 'i' \(i32\) and size 5.* 'd'"):
        Array("a", "d", 5, url=url)
    with pytest.raises(ValueError, match=r"stored with typecode 'i' \(i32\) and size 5.*size 6"):
        Array("a", "i", [0] * 6, url=url)
    with pytest.raises(ValueError, match=r"stored with typecode 'i'"):
        Array("a", "I", 5, url=url)
    assert arr[:] == [1, 2, 3, 4, 5]


def test_opening_an_array_again_keeps_its_values_and_only_checks_the_initializer(url: str) -> None:
    first = Array("a", "i", [1, 2, 3], url=url)
    first[0] = 50
    again = Array("a", "i", [7, 8, 9], url=url)
    assert again[:] == Array("a", "i", 3, url=url)[:] == [50, 2, 3]
    with pytest.raises(OverflowError):
        Array("a", "i", [1, 2, 2**40], url=url)


def test_a_bad_initializer_raises_at_the_call_and_stores_nothing(url: str) -> None:
    with pytest.raises(TypeError, match="item 1 of the initializer"):
        Array("a", "i", [1, "two", 3], url=url)
    with pytest.raises(OverflowError, match="item 0 of the initializer"):
        Array("a", "B", [256], url=url)
    assert Array("a", "d", 2, url=url)[:] == [0.0, 0.0]  # no record of 'i' was left


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("", "i", 1), TypeError, "name"),
        (("a", "x", 1), ValueError, "typecode"),
        (("a", "c", 1), ValueError, "typecode"),
        (("a", 4, 1), TypeError, "typecode"),
        (("a", ctypes.c_bool, 1), TypeError, "c_bool"),
        (("a", "i", -1), ValueError, "size"),
        (("a", "i", True), TypeError, "size_or_initializer"),
        (("a", "i", 2.0), TypeError, "size_or_initializer"),
    ],
)
def test_bad_arguments_raise_errors_that_name_them(
    url: str, args: tuple[Any, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Array(*args, url=url)


def test_an_array_outlives_its_store_handle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    arr = Array("kept", "q", [2**62, -1], url=url)
    arr.add(1, -1)
    arr.close()
    assert Array("kept", "q", 2, url=url)[:] == [2**62, -2]


# -- add -----------------------------------------------------------------------------------------


def test_add_returns_the_new_number_and_refuses_an_overflow_changing_nothing(url: str) -> None:
    arr = Array("a", "i", [2**31 - 3, 0], url=url)
    assert arr.add(0, 2) == 2**31 - 1 and arr.add(-1, -7) == -7
    with pytest.raises(OverflowError, match=r"adding 1 to baozi.Array 'a'\[0\].*nothing"):
        arr.add(0, 1)
    unsigned = Array("u", "H", 1, url=url)
    with pytest.raises(OverflowError):
        unsigned.add(0, -1)
    assert arr[:] == [2**31 - 1, -7] and unsigned[0] == 0
    assert Array("d", "d", [0.5], url=url).add(0, 2) == 2.5


def test_add_takes_a_number_of_the_arrays_kind(url: str) -> None:
    arr, chars = Array("a", "i", 1, url=url), Array("c", "u", 1, url=url)
    with pytest.raises(TypeError, match="takes an int"):
        arr.add(0, 1.5)
    with pytest.raises(TypeError, match="takes an int"):
        arr.add(0, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="characters"):
        chars.add(0, 1)
    assert arr[0] == 0 and chars[0] == "\x00"


# -- Value ---------------------------------------------------------------------------------------


def test_a_value_reads_writes_and_adds(url: str) -> None:
    v = Value("v", "i", 10, url=url)
    v.value -= 3
    assert v.value == 7 and v.add(-10) == -3 and v.value == -3
    assert Value("v", "i", 999, url=url).value == -3  # the first value is written once
    assert Value("zero", ctypes.c_double, url=url).value == 0.0
    assert Value("char", "u", url=url).value == multiprocessing.Value("u").value == "\x00"


def test_a_value_checks_what_it_is_given(url: str) -> None:
    v = Value("v", "b", 127, url=url)
    with pytest.raises(OverflowError, match="baozi.Value 'v'"):
        v.value = 128
    with pytest.raises(OverflowError, match="nothing was changed"):
        v.add(1)
    with pytest.raises(TypeError, match="baozi.Value 'v'"):
        v.value = "1"
    with pytest.raises(ValueError, match=r"stored with typecode 'b' \(i8\)"):
        Value("v", "B", url=url)
    with pytest.raises(OverflowError):
        Value("new", "b", 128, url=url)
    assert v.value == 127 and Value("new", "d", 1.5, url=url).value == 1.5


def test_a_value_and_an_array_of_one_name_are_two_things(url: str) -> None:
    Value("x", "i", 5, url=url)
    assert Array("x", "d", 3, url=url)[:] == [0.0, 0.0, 0.0]


# -- locks, handles and apps ---------------------------------------------------------------------


def test_get_lock_is_one_baozi_lock_for_every_handle(url: str) -> None:
    one, two = Array("a", "i", 1, url=url), Array("a", "i", 1, url=url)
    lock = one.get_lock()
    assert isinstance(lock, baozi.Lock) and isinstance(
        Value("v", "i", url=url).get_lock(), baozi.Lock
    )
    got: list[bool] = []
    with one:
        assert lock.locked()
        other = threading.Thread(target=lambda: got.append(two.get_lock().acquire(blocking=False)))
        other.start()
        other.join()
    assert got == [False] and not lock.locked()
    assert two.acquire(timeout=5)
    two.release()


def test_app_array_and_value_are_those_made_by_url(url: str) -> None:
    app = App(url)
    app.array("a", "i", [1, 2]).add(0, 5)
    app.value("v", "d", 0.5).add(1)
    assert Array("a", "i", 2, url=url)[:] == [6, 2]
    assert Value("v", "d", url=url).value == 1.5


def test_a_pickled_handle_opens_the_same_array(url: str) -> None:
    arr, v = Array("a", "h", [1, 2], url=url), Value("v", "u", "a", url=url)
    copy, vcopy = pickle.loads(pickle.dumps(arr)), pickle.loads(pickle.dumps(v))
    copy[0] = -1
    vcopy.value = "z"
    assert arr[:] == [-1, 2] and v.value == "z" and copy.typecode == "h"


def test_every_store_adds_machine_integers_as_python_does(store: baozi.Store) -> None:
    """kv_incr_as at random, near the ends of each kind's range (the Redis script keeps 64-bit
    sums in two doubles): each sum is exact, or out of range and refused."""
    rnd = random.Random(21)
    for kind in ("i8", "u16", "i32", "u32", "i64", "u64"):
        bits = int(kind[1:])
        low, high = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind[0] == "i" else (0, 2**bits - 1)
        )
        edges = [low, high, 0, low + 1, high - 1, (low + high) // 2]
        held = 0
        for _ in range(60):
            target = rnd.choice(edges) + rnd.randint(-(2**20), 2**20)
            amount = target - held if rnd.random() < 0.8 else rnd.randint(-(2**66), 2**66)
            if low <= held + amount <= high:
                assert store.kv_incr_as("rnd", kind, amount, kind) == held + amount
                held += amount
            else:
                with pytest.raises(OverflowError):
                    store.kv_incr_as("rnd", kind, amount, kind)
            assert int(store.kv_get("rnd", kind) or b"0") == held
