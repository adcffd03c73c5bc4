"""The public surface: everything exported is listed, and the errors subclass the stdlib's."""

from __future__ import annotations

import inspect
import queue as stdlib_queue
import subprocess
import sys
import types

import pytest

import baozi
from baozi import backends, errors, executor, middleware
from baozi.backends import base


def test_all_lists_every_public_name() -> None:
    # The names are imported on first use: every one resolves, and nothing else is public.
    assert all(hasattr(baozi, name) for name in baozi.__all__)
    public = {
        name
        for name in dir(baozi)
        if not name.startswith("_") and not isinstance(getattr(baozi, name), types.ModuleType)
    }
    assert public == set(baozi.__all__) - {"__version__"}
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        baozi.nothing_here  # noqa: B018


def test_importing_the_package_imports_no_public_module_until_asked() -> None:
    code = (
        "import sys, baozi; "
        "print(sorted(m for m in ('baozi.app', 'baozi.worker', 'baozi.sync') if m in sys.modules)); "
        "baozi.Queue; print('baozi.queues' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out


def test_the_package_exports_what_users_need_and_nothing_by_accident() -> None:
    for name in ("open_store", "Store", "JobExecutor", "TaskOptions", "current_job", "Task"):
        assert name in baozi.__all__
    assert baozi.JobExecutor is executor.JobExecutor
    assert baozi.Store is base.Store and baozi.open_store is backends.open_store
    for accident in ("version", "PackageNotFoundError", "metadata"):
        assert not hasattr(baozi, accident)
    assert isinstance(baozi.__version__, str)


def test_the_middleware_api_is_exported_from_its_one_module() -> None:
    for name in ("Middleware", "Hold", "Message", "Run"):
        assert name in baozi.__all__
        assert getattr(baozi, name) is getattr(middleware, name)
    assert not hasattr(baozi, "OpenTelemetry")  # an extra: imported from baozi.middleware.otel


def test_the_coordination_primitives_take_a_name_then_keywords() -> None:
    for cls in (
        baozi.Lock,
        baozi.Semaphore,
        baozi.Event,
        baozi.Condition,
        baozi.Dict,
        baozi.Queue,
        baozi.LifoQueue,
        baozi.PriorityQueue,
        baozi.Deque,
    ):
        params = list(inspect.signature(cls).parameters.values())
        assert params[0].name == "name", cls
        assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, cls
        assert params[1].name == "url" and params[1].default is None, cls
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), cls


def test_array_and_value_take_multiprocessings_arguments_after_the_name_then_keywords() -> None:
    shapes = {
        baozi.Array: ["name", "typecode_or_type", "size_or_initializer"],
        baozi.Value: ["name", "typecode_or_type", "value"],
    }
    for cls, positional in shapes.items():
        params = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in params[:3]] == positional, cls
        assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[:3]), cls
        assert params[3].name == "url" and params[3].default is None, cls
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[3:]), cls
    assert inspect.signature(baozi.Value).parameters["value"].default == 0


def test_every_error_has_the_one_root() -> None:
    for name in set(errors.__all__) - {"Cancelled"}:
        assert issubclass(getattr(errors, name), errors.BaoziError)
    # Raised inside a job's code to stop it, like asyncio.CancelledError: not an Exception, so
    # that an `except Exception:` in the job does not swallow it.
    assert issubclass(baozi.Cancelled, BaseException)
    assert not issubclass(baozi.Cancelled, Exception)
    assert issubclass(baozi.Empty, stdlib_queue.Empty)
    assert issubclass(baozi.Full, stdlib_queue.Full)


def test_unknown_task_is_public_and_a_lookup_error() -> None:
    assert "UnknownTask" in baozi.__all__ and "UnknownTask" in errors.__all__
    assert baozi.UnknownTask is errors.UnknownTask
    assert issubclass(baozi.UnknownTask, LookupError)
    assert "UnknownTask" in (errors.__doc__ or "")
