"""``delay``, ``apply_async`` and ``map`` check their arguments against the task's signature at
the call site, as calling the function would, and enqueue nothing when they do not fit."""

from __future__ import annotations

import httpx
import pytest

from baozi import App

from . import jobtasks


def _kw_only(a: int, *, b: int, c: int = 0) -> int:
    return a + b + c


def _many(a: int, /, *rest: int, **named: int) -> int:
    return a + sum(rest) + sum(named.values())


def _queued(app: App) -> int:
    return sum(app.store.job_counts("default").values())


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((1,), {}, "missing a required argument: 'b'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1, 2), {"c": 2}, "unexpected keyword argument 'c'"),
        ((1, 2), {"a": 1}, "multiple values for argument 'a'"),
    ],
)
def test_delay_refuses_arguments_the_function_cannot_take(
    url: str, args: tuple[int, ...], kwargs: dict[str, int], problem: str
) -> None:
    app = App(url)
    add = app.task(jobtasks.add)
    with pytest.raises(TypeError) as caught:
        add.delay(*args, **kwargs)
    message = str(caught.value)
    assert "task tests.jobtasks.add(a, b): " in message and problem in message
    assert "nothing was enqueued" in message
    with pytest.raises(TypeError, match="missing a required argument"):
        add.apply_async(args[:1])
    assert _queued(app) == 0


def test_map_checks_every_item_before_enqueueing_any(url: str) -> None:
    app = App(url)
    add = app.task(jobtasks.add)
    with pytest.raises(TypeError, match=r"item 2 of map\): missing a required argument"):
        add.map([(1, 2), (3, 4), (5,)])
    assert _queued(app) == 0
    assert len(add.map([(1, 2), (3, 4)])) == 2


def test_keyword_only_and_variadic_signatures_are_checked_too(url: str) -> None:
    app = App(url)
    kw_only, many = app.task(_kw_only), app.task(_many)
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        kw_only.delay(1)
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        many.delay()
    assert _queued(app) == 0
    kw_only.delay(1, b=2)
    many.delay(1, 2, 3, x=4)
    assert _queued(app) == 2


def test_the_web_api_answers_422_for_arguments_the_task_cannot_take(
    memory_app: App, memory_client: httpx.Client
) -> None:
    answer = memory_client.post("/api/jobs", json={"task": "add", "args": [1]})
    assert answer.status_code == 422 and answer.json()["field"] == "args"
    assert "missing a required argument" in answer.json()["error"]
    assert memory_app.store.queues() == []
