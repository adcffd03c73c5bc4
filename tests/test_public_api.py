"""The public surface: everything exported is listed, and the errors subclass the stdlib's."""

from __future__ import annotations

import queue as stdlib_queue
import types

import baozi
from baozi import errors


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(baozi).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"version", "PackageNotFoundError"}
    assert public <= set(baozi.__all__)
    assert all(hasattr(baozi, name) for name in baozi.__all__)


def test_every_error_has_the_one_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.BaoziError)
    assert issubclass(baozi.Empty, stdlib_queue.Empty)
    assert issubclass(baozi.Full, stdlib_queue.Full)


def test_unknown_task_is_public_and_a_lookup_error() -> None:
    assert "UnknownTask" in baozi.__all__ and "UnknownTask" in errors.__all__
    assert baozi.UnknownTask is errors.UnknownTask
    assert issubclass(baozi.UnknownTask, LookupError)
    assert "UnknownTask" in (errors.__doc__ or "")
