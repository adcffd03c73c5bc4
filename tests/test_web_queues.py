"""Queues through the API: reads make none, only a queue in use or declared can be paused, an
empty one can be deleted, names are checked (422, not 404), job ids must be written as the
store writes them, and the busy slots are those held now."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import httpx
import pytest

from baozi import App

from ._helpers import wait_for, working


def test_reading_the_jobs_of_a_queue_makes_no_queue(app: App, client: httpx.Client) -> None:
    for queue in ("ghost", "other ghost"):
        answer = client.get("/api/jobs", params={"queue": queue})
        assert answer.status_code == 200 and answer.json()["jobs"] == []
        assert client.get("/api/jobs", params={"queue": queue, "status": "failed"}).json()
    assert app.store.queues() == []
    names = [q["name"] for q in client.get("/api/queues").json()["queues"]]
    assert names == ["small"]  # only the queue the app declares


def test_a_queue_nobody_uses_cannot_be_paused(app: App, client: httpx.Client) -> None:
    answer = client.post("/api/queues/ghost/pause")
    assert answer.status_code == 404 and "never held a job" in answer.json()["error"]
    assert client.post("/api/queues/ghost/resume").status_code == 404
    assert app.store.queues() == []


def test_a_declared_queue_can_be_paused_before_its_first_job(
    app: App, client: httpx.Client
) -> None:
    for name in ("small", "default"):  # declared with app.queue; a task's queue
        answer = client.post(f"/api/queues/{name}/pause")
        assert answer.status_code == 200 and answer.json() == {"name": name, "paused": True}
        assert app.is_paused(name)


def test_a_queue_that_held_a_job_can_be_paused(app: App, client: httpx.Client) -> None:
    client.post("/api/jobs", json={"task": "add", "args": [1, 1], "queue": "elsewhere"})
    assert client.post("/api/queues/elsewhere/pause").json()["paused"] is True


@pytest.mark.parametrize("name", [".", "..", "a/../b", "%2e%2e"])
def test_any_queue_name_can_be_paused_through_the_query(
    app: App, client: httpx.Client, name: str
) -> None:
    client.post("/api/jobs", json={"task": "add", "args": [1, 1], "queue": name})
    answer = client.post("/api/queues/pause", params={"name": name})
    assert answer.status_code == 200 and answer.json() == {"name": name, "paused": True}
    assert app.is_paused(name)
    assert client.post("/api/queues/resume", params={"name": name}).json()["paused"] is False


def test_an_empty_queue_can_be_deleted(app: App, client: httpx.Client) -> None:
    job = client.post("/api/jobs", json={"task": "add", "args": [1, 1], "queue": "q/1"}).json()
    path = f"/api/queues/{quote('q/1', safe='')}"
    busy = client.delete(path)
    assert busy.status_code == 409 and "purge it first" in busy.json()["error"]
    assert app.store.clear("q/1") == 1 and client.get(job["url"]).status_code == 404
    deleted = client.delete(path)
    assert deleted.status_code == 200 and deleted.json() == {"name": "q/1", "deleted": True}
    assert not app.store.has_queue("q/1")
    assert client.delete(path).status_code == 404
    assert "q/1" not in [q["name"] for q in client.get("/api/queues").json()["queues"]]


BAD_NAMES = [
    "a\nb",  # a newline (Cc)
    "a\x85b",  # NEL (Cc)
    "a\u202eb",  # right-to-left override (Cf)
    "a\u200bb",  # zero-width space (Cf)
    "a\u2066b",  # left-to-right isolate (Cf)
    "a\ufeffb",  # zero-width no-break space (Cf)
    "a\u2028b",  # line separator (Zl)
    "a\u2029b",  # paragraph separator (Zp)
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_queue_names_refuse_control_format_and_separator_characters(
    memory_app: App, memory_client: httpx.Client, name: str
) -> None:
    posted = memory_client.post("/api/jobs", json={"task": "add", "args": [1, 1], "queue": name})
    assert posted.status_code == 422 and posted.json()["field"] == "queue"
    listed = memory_client.get("/api/jobs", params={"queue": name})
    assert listed.status_code == 422 and listed.json()["field"] == "queue"
    for path in (f"/api/queues/{quote(name, safe='')}/pause", "/api/queues/pause"):
        paused = memory_client.post(path, params={} if "%" in path else {"name": name})
        assert paused.status_code == 422 and paused.json()["field"] == "name", path
    deleted = memory_client.delete(f"/api/queues/{quote(name, safe='')}")
    assert deleted.status_code == 422
    assert memory_app.store.queues() == []


def test_names_in_other_scripts_are_welcome(memory_client: httpx.Client) -> None:
    for name in ("包子", "café au lait", "очередь"):
        posted = memory_client.post(
            "/api/jobs", json={"task": "add", "args": [1, 1], "queue": name}
        )
        assert posted.status_code == 202, name


@pytest.mark.parametrize("twin", ["1_0", "+10", " 10", "10 ", "010", "１０", "١٠"])
def test_a_job_id_must_be_written_as_the_store_writes_it(
    memory_app: App, memory_client: httpx.Client, twin: str
) -> None:
    ids = [
        memory_client.post("/api/jobs", json={"task": "add", "args": [i, 1]}).json()["id"]
        for i in range(10)
    ]
    assert "10" in ids  # the job the twin would have named
    for method, path in (
        ("GET", f"/api/jobs/{quote(twin)}"),
        ("DELETE", f"/api/jobs/{quote(twin)}"),
        ("POST", f"/api/jobs/{quote(twin)}/retry"),
    ):
        answer = memory_client.request(method, path)
        assert answer.status_code == 404, (method, path)
    assert memory_client.get("/api/jobs/10").status_code == 200


def test_busy_slots_are_those_held_now_not_at_the_last_heartbeat(
    app: App, client: httpx.Client
) -> None:
    gate = threading.Event()
    app.task(name="hold")(lambda: gate.wait(30))

    def busy() -> int:
        workers = client.get("/api/workers").json()["workers"]
        return int(workers[0]["busy"]) if workers else -1

    with working(app, concurrency=2):
        wait_for(lambda: busy() == 0)  # its first heartbeat: idle
        client.post("/api/jobs", json={"task": "hold"})
        started = time.monotonic()
        wait_for(lambda: busy() == 1)
        gate.set()
        wait_for(lambda: busy() == 0)
        # The heartbeat comes every lease / 3 seconds (10 s here): this was well before it.
        assert time.monotonic() - started < app.lease / 3
        metrics = client.get("/metrics").text
        assert 'baozi_worker_slots{state="idle"} 2.0' in metrics
