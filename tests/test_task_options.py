"""TaskOptions: the one record of a task's options, checked when it is made, and the keywords of
``@app.task`` exactly."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from baozi import App, TaskOptions
from baozi.tasks import TaskKeywords

from . import jobtasks


def test_the_decorator_keywords_are_the_fields_of_task_options() -> None:
    fields = {f.name for f in dataclasses.fields(TaskOptions) if f.init}
    assert set(typing.get_type_hints(TaskKeywords)) == fields


def test_the_defaults_are_those_of_a_bare_decorator() -> None:
    app = App("memory://task-options-defaults")
    task = app.task(jobtasks.add)
    assert task.options == TaskOptions()
    assert (task.queue, task.priority, task.retries, task.max_deliveries) == ("default", 0, 0, 5)
    assert task.name == "tests.jobtasks.add"


def test_the_decorator_builds_the_options_it_was_given() -> None:
    app = App("memory://task-options-given")
    task = app.task(queue="mail", priority=-1, retries=2, timeout=5, rate_limit="10/s")(
        jobtasks.add
    )
    assert task.options == TaskOptions(
        queue="mail", priority=-1, retries=2, timeout=5, rate_limit="10/s"
    )
    assert task.rate_interval == pytest.approx(0.1) and task.limited
    assert task.retry_backoff == 1.0 and isinstance(task.retry_backoff, float)


def test_options_are_frozen() -> None:
    options = TaskOptions(retries=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.retries = 2  # type: ignore[misc]
    assert dataclasses.replace(options, retries=2).retries == 2


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries"),
        ({"retries": True}, ValueError, "retries"),
        ({"max_deliveries": 0}, ValueError, "max_deliveries"),
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": "soon"}, ValueError, "timeout"),
        ({"retry_backoff": -1}, ValueError, "retry_backoff"),
        ({"rate_limit": "fast"}, ValueError, "rate_limit must look like"),
        ({"lock": ""}, ValueError, "lock must be a non-empty str"),
        ({"queue": ""}, ValueError, "queue name"),
        ({"priority": "high"}, TypeError, "priority must be a number"),
        ({"priority": float("nan")}, ValueError, "NaN"),
        ({"priority": 2**63}, ValueError, "64 bits"),
        ({"on_success": "print"}, TypeError, "on_success must be callable"),
        ({"name": 7}, TypeError, "task name"),
        ({"retry": 3}, TypeError, "unknown task option"),
    ],
)
def test_a_bad_option_is_refused_before_anything_is_registered(
    keywords: dict[str, object], error: type[Exception], message: str
) -> None:
    app = App("memory://task-options-bad")
    with pytest.raises(error, match=message):
        app.task(**keywords)(jobtasks.add)  # type: ignore[arg-type]
    assert app.tasks == {}


def test_a_lock_template_must_name_parameters_of_the_function() -> None:
    app = App("memory://task-options-lock")
    with pytest.raises(ValueError, match="not a parameter"):
        app.task(lock="sum:{c}")(jobtasks.add)
    assert app.task(lock="sum:{a}")(jobtasks.add).lock_key((1, 2), {}) == "sum:1"
