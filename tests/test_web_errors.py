"""Every refusal of the HTTP API is JSON with a message and the status the issue names: 404 for
an unknown task (nothing enqueued), 422 naming the field, 413 over 1 MiB, 429 with Retry-After
for a full queue, 415 for a body that is not JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from baozi import App
from baozi.web._wire import MAX_DEPTH


def nothing_enqueued(app: App) -> bool:
    return all(sum(app.store.job_counts(q).values()) == 0 for q in app.store.queues())


def test_an_unknown_task_is_404_and_nothing_is_enqueued(app: App, client: httpx.Client) -> None:
    answer = client.post("/api/jobs", json={"task": "no_such_task", "args": [1]})
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "no task named 'no_such_task' (known: add, boom, echo)",
        "field": "task",
    }
    assert nothing_enqueued(app)


def test_a_full_queue_is_429_with_retry_after(app: App, client: httpx.Client) -> None:
    for i in range(2):
        posted = client.post("/api/jobs", json={"task": "add", "args": [i, i], "queue": "small"})
        assert posted.status_code == 202
    full = client.post("/api/jobs", json={"task": "add", "args": [9, 9], "queue": "small"})
    assert full.status_code == 429
    assert int(full.headers["Retry-After"]) >= 1
    assert "full" in full.json()["error"]
    assert app.store.job_counts("small")["queued"] == 2


BAD_FIELDS: list[tuple[Any, str]] = [
    ({}, "task"),
    ({"task": None}, "task"),
    ({"task": 7}, "task"),
    ({"task": ""}, "task"),
    ({"task": "x" * 201}, "task"),
    ({"task": "add", "args": {"a": 1}}, "args"),
    ({"task": "add", "args": "1, 2"}, "args"),
    ({"task": "add", "kwargs": [1]}, "kwargs"),
    ({"task": "add", "queue": 5}, "queue"),
    ({"task": "add", "queue": "bad\nname"}, "queue"),
    ({"task": "add", "queue": "deque:x"}, "queue"),  # where baozi keeps its Deques
    ({"task": "add", "priority": "high"}, "priority"),
    ({"task": "add", "priority": True}, "priority"),
    ({"task": "add", "priority": 2**63}, "priority"),
    ({"task": "add", "delay": -1}, "delay"),
    ({"task": "add", "delay": "soon"}, "delay"),
    ({"task": "add", "delay": 1e300}, "delay"),
    ({"task": "add", "front": "yes"}, "front"),
    ({"task": "add", "front": 1}, "front"),
    ({"task": "add", "colour": "red"}, "colour"),
    ({"task": "add", "unique_key": 5}, "unique_key"),
    ({"task": "add", "unique_key": ""}, "unique_key"),
    ({"task": "add", "unique_key": "k" * 1025}, "unique_key"),
    ({"task": "add", "unique_key": "a\x00b"}, "unique_key"),
    ({"task": "add", "unique_while": "sometimes"}, "unique_while"),
    ({"task": "add", "unique_while": 1}, "unique_while"),
    ({"task": "add", "unique_for": -1}, "unique_for"),
    ({"task": "add", "unique_for": "5"}, "unique_for"),
    ({"task": "add", "unique_for": 1e300}, "unique_for"),
    ({"task": "add", "depends_on": "1"}, "depends_on"),
    ({"task": "add", "depends_on": [1]}, "depends_on"),
    ({"task": "add", "depends_on": [""]}, "depends_on"),
    ({"task": "add", "depends_on": ["9" * 201]}, "depends_on"),
    ({"task": "add", "depends_on": [str(i) for i in range(1001)]}, "depends_on"),
    ({"task": "add", "on_dependency_failure": "ignore"}, "on_dependency_failure"),
    ({"task": "add", "on_dependency_failure": True}, "on_dependency_failure"),
    ([1, 2], "body"),
    ("add", "body"),
]


def test_wrong_field_types_are_422_naming_the_field(
    memory_app: App, memory_client: httpx.Client
) -> None:
    for body, field in BAD_FIELDS:
        answer = memory_client.post("/api/jobs", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field, (body, answer.json())
        assert answer.json()["error"].startswith(f"{field}: ")
    assert nothing_enqueued(memory_app)


MALFORMED = [
    b"{",
    b"",
    b'{"task": "add",}',
    b'{"task": "add", "args": [NaN]}',
    b'{"task": "add", "args": [Infinity]}',
    b"\xff\xfe{}",
    b'{"task": "add", "args": ["\\ud800"]}',
    b'{"task": "add", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]


def test_malformed_json_is_422_naming_the_body(
    memory_app: App, memory_client: httpx.Client
) -> None:
    for raw in MALFORMED:
        answer = memory_client.post(
            "/api/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, (raw[:40], answer.text)
        assert answer.json()["field"] in ("body", "args"), raw[:40]
    assert nothing_enqueued(memory_app)


def test_a_body_over_one_mebibyte_is_413(memory_app: App, memory_client: httpx.Client) -> None:
    big = {"task": "add", "args": ["x" * (1024 * 1024)]}
    answer = memory_client.post("/api/jobs", json=big)
    assert answer.status_code == 413 and "1048576" in answer.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as the body streams
        yield b'{"task": "add", "args": ["'
        for _ in range(40):
            yield b"y" * 32768
        yield b'"]}'

    streamed = memory_client.post(
        "/api/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert nothing_enqueued(memory_app)
    just_under = {"task": "echo", "args": ["z" * (1024 * 1024 - 100)]}
    assert memory_client.post("/api/jobs", json=just_under).status_code == 202


def test_a_body_that_is_not_json_is_415(memory_client: httpx.Client) -> None:
    answer = memory_client.post("/api/jobs", data={"task": "add"})
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]


def test_arguments_come_back_as_the_json_that_was_sent(client: httpx.Client) -> None:
    args = ["<script>alert(1)</script>", {"nested": [None, True, 1.5, 10**30]}, "ünïcode ✓"]
    job = client.post("/api/jobs", json={"task": "echo", "args": args}).json()
    shown = client.get(job["url"])
    assert shown.headers["content-type"] == "application/json"
    assert shown.json()["args"] == args


def _nested(kind: str, depth: int) -> str:
    """JSON text of ``depth`` arrays (``kind`` "args") or objects ("kwargs"), one in another."""
    if kind == "args":
        return "[" * depth + "]" * depth
    return '{"k": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("depth", [400, 1000])
def test_deeply_nested_arguments_are_422_naming_the_field(
    memory_app: App, memory_client: httpx.Client, depth: int
) -> None:
    for field in ("args", "kwargs"):
        raw = f'{{"task": "echo", "{field}": {_nested(field, depth)}}}'
        answer = memory_client.post(
            "/api/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, (field, answer.text[:200])
        assert answer.json()["field"] == field
        assert "nested" in answer.json()["error"]
    assert nothing_enqueued(memory_app)
    for field in ("args", "kwargs"):  # as deep as is allowed: accepted
        raw = f'{{"task": "echo", "{field}": {_nested(field, MAX_DEPTH)}}}'
        answer = memory_client.post(
            "/api/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 202, (field, answer.text[:200])
