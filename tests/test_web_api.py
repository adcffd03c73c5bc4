"""The HTTP API, served by uvicorn on loopback, on every store: a job is accepted at once with its
place in line, followed to its result, listed, cancelled and retried; every error is JSON."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import httpx
import pytest

from baozi import App, Worker
from baozi._eta import run_time
from baozi.backends.base import WorkerInfo

from ._helpers import wait_for, working
from ._web import make_app, served


def post(client: httpx.Client, **job: Any) -> httpx.Response:
    return client.post("/api/jobs", json=job)


def drain(app: App) -> None:
    Worker(app, queues=["default", "other", "small"]).run(burst=True)


def test_a_posted_job_is_accepted_at_once_with_its_place_in_line(client: httpx.Client) -> None:
    answers = [post(client, task="add", args=[i, i]) for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    body = answers[2].json()
    assert {"id", "status", "position", "eta_seconds", "url"} <= set(body)
    assert body["status"] == "queued" and body["position"] == 2
    assert body["eta_seconds"] is None  # no job of this queue has finished yet
    assert answers[2].headers["Location"] == body["url"] == f"/api/jobs/{body['id']}"
    again = client.get(body["url"]).json()
    assert again["id"] == body["id"] and again["position"] == 2 and again["args"] == [2, 2]


def test_options_reach_the_job(client: httpx.Client) -> None:
    post(client, task="add", args=[1, 1])
    front = post(client, task="add", args=[2, 2], front=True).json()
    assert front["position"] == 0
    urgent = post(client, task="add", kwargs={"a": 1, "b": 2}, priority=-5, queue="other").json()
    assert urgent["queue"] == "other" and urgent["priority"] == -5 and urgent["kwargs"]["b"] == 2
    later = post(client, task="add", args=[1, 2], delay=60).json()
    assert later["status"] == "scheduled" and later["position"] is None


def test_a_finished_job_shows_its_result_or_its_error(app: App, client: httpx.Client) -> None:
    ok = post(client, task="echo", args=[1, "two"], kwargs={"three": [3]}).json()
    bad = post(client, task="boom", args=["<b>no</b>"]).json()
    drain(app)
    done = client.get(ok["url"]).json()
    assert done["status"] == "succeeded" and done["result"] == [[1, "two"], {"three": [3]}]
    assert done["attempts"] == 1 and done["error"] is None and done["eta_seconds"] == 0
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    failed = client.get(bad["url"]).json()
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "<b>no</b>"
    assert "Traceback" in failed["error"]["traceback"]


def _expected(place: int, run: float, slots: int, free: int, rate: float | None = None) -> float:
    """The estimate for a queued job (see baozi._eta): a free slot, or waves of slots ahead."""
    behind = place - free + 1
    if behind <= 0:
        return run
    return (behind / rate if rate else math.ceil(behind / slots) * run) + run


def test_the_estimate_comes_from_the_tasks_run_time_and_the_workers_slots(
    app: App, client: httpx.Client
) -> None:
    post(client, task="add", args=[0, 1])
    drain(app)  # the worker reports the task's run time as it stops
    run = run_time(app.store, "add")
    assert run is not None
    assert post(client, task="add", args=[1, 1]).json()["eta_seconds"] is None  # no worker now
    app.store.heartbeat(WorkerInfo("idle", "host", 1, "thread", 2, ("default",)), ttl=60)
    time.sleep(0.25)  # the server holds on to "no worker" for up to 0.2 s
    waiting = [post(client, task="add", args=[i, 1]).json() for i in range(4)]
    for job in waiting:
        shown = client.get(job["url"]).json()
        place = shown["position"]
        assert shown["summary"] == f"queued, {place} ahead of it"
        assert shown["eta_seconds"] == pytest.approx(_expected(place, run, 2, 2), abs=0.002)
    listed = {j["id"]: j for j in client.get("/api/jobs?status=queued").json()["jobs"]}
    assert listed[waiting[-1]["id"]]["eta_seconds"] == pytest.approx(
        _expected(4, run, 2, 2), abs=0.002
    )


def test_the_estimate_uses_the_queues_rate_once_enough_jobs_finished(
    app: App, client: httpx.Client
) -> None:
    def default() -> dict[str, Any]:
        (queue,) = [q for q in client.get("/api/queues").json()["queues"] if q["name"] == "default"]
        return queue

    for i in range(12):
        post(client, task="add", args=[i, 1])
    drain(app)
    wait_for(lambda: default()["finished_last_minute"] == 12)
    rate = default()["rate_per_second"]
    app.store.heartbeat(WorkerInfo("idle", "host", 1, "thread", 1, ("default",)), ttl=60)
    time.sleep(0.25)  # the server holds on to "no worker" for up to 0.2 s
    run = run_time(app.store, "add")
    assert run is not None
    for job in [post(client, task="add", args=[i, 1]).json() for i in range(3)]:
        shown = client.get(job["url"]).json()
        expected = _expected(shown["position"], run, 1, 1, rate)
        assert shown["eta_seconds"] == pytest.approx(expected, rel=0.05, abs=0.002), shown


def test_a_job_out_of_line_says_what_it_waits_for(client: httpx.Client) -> None:
    before = time.time()
    later = post(client, task="add", args=[1, 2], delay=60).json()
    assert later["status"] == "scheduled" and later["position"] is None
    assert before + 60 <= later["scheduled_for"] <= time.time() + 60
    assert later["summary"].startswith("scheduled for ")
    first = post(client, task="add", args=[1, 2]).json()
    then = post(client, task="add", args=[3, 4], depends_on=[first["id"], later["id"]]).json()
    assert (then["status"], then["waiting_for"], then["summary"]) == (
        "waiting",
        2,
        "waiting for 2 jobs",
    )
    assert then["position"] is None and then["eta_seconds"] is None
    assert "None" not in str([later["summary"], first["summary"], then["summary"]])


def test_a_waiting_job_can_be_cancelled_and_a_finished_one_cannot(
    app: App, client: httpx.Client
) -> None:
    job = post(client, task="add", args=[1, 1]).json()
    cancelled = client.delete(job["url"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.delete(job["url"])
    assert again.status_code == 409 and "cancelled" in again.json()["error"]
    done = post(client, task="add", args=[1, 1]).json()
    drain(app)
    refused = client.delete(done["url"])
    assert refused.status_code == 409
    assert "only a job that has not finished can be cancelled" in refused.json()["error"]


def test_a_failed_job_can_be_retried(app: App, client: httpx.Client) -> None:
    bad = post(client, task="boom").json()
    good = post(client, task="add", args=[1, 1]).json()
    drain(app)
    retried = client.post(f"{bad['url']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert retried.headers["Location"] == bad["url"]
    refused = client.post(f"{good['url']}/retry")
    assert refused.status_code == 409 and "succeeded" in refused.json()["error"]


def test_an_unknown_job_is_404(client: httpx.Client) -> None:
    for job_id in ("424242", "abc", "9" * 30, "-1", "1.5", "%20"):
        for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/retry")):
            answer = client.request(method, f"/api/jobs/{job_id}{path}")
            assert answer.status_code == 404, (method, job_id, answer.text)
            assert "no job" in answer.json()["error"]


def test_queues_show_jobs_in_every_state(app: App, client: httpx.Client) -> None:
    post(client, task="add", args=[1, 1])
    post(client, task="boom")
    drain(app)
    post(client, task="add", args=[1, 1])
    post(client, task="add", args=[1, 1], delay=60)
    post(client, task="add", args=[1, 1], queue="small")
    queues = {q["name"]: q for q in client.get("/api/queues").json()["queues"]}
    default = queues["default"]
    assert (default["ready"], default["scheduled"], default["running"]) == (1, 1, 0)
    assert (default["succeeded"], default["failed"]) == (1, 1)
    assert queues["small"]["ready"] == 1 and queues["small"]["maxsize"] == 2


def test_workers_show_their_slots_and_heartbeat(
    memory_app: App, memory_client: httpx.Client
) -> None:
    assert memory_client.get("/api/workers").json() == {"workers": [], "gone": []}
    with working(memory_app, concurrency=3):
        wait_for(lambda: memory_client.get("/api/workers").json()["workers"])
        (worker,) = memory_client.get("/api/workers").json()["workers"]
        assert worker["pool"] == "thread" and worker["concurrency"] == 3 and worker["busy"] == 0
        assert worker["pid"] > 0 and worker["host"]
        assert time.time() - worker["last_heartbeat"] < 30


def test_jobs_are_listed_newest_first_a_page_at_a_time(app: App, client: httpx.Client) -> None:
    ids = [post(client, task="add", args=[i, i]).json()["id"] for i in range(5)]
    post(client, task="boom", queue="other")
    Worker(app, queues=["other"]).run(burst=True)
    page = client.get("/api/jobs", params={"queue": "default", "limit": 2, "offset": 0}).json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2] and page["next_offset"] == 2
    rest = client.get("/api/jobs", params={"queue": "default", "limit": 2, "offset": 4}).json()
    assert [j["id"] for j in rest["jobs"]] == [ids[0]] and rest["next_offset"] is None
    failed = client.get("/api/jobs", params={"status": "failed"}).json()["jobs"]
    assert [(j["task"], j["queue"]) for j in failed] == [("boom", "other")]
    assert failed[0]["error"]["type"] == "ValueError"
    assert client.get("/api/jobs").json()["jobs"][0]["task"] == "boom"


def test_a_bad_listing_query_is_422_naming_the_parameter(memory_client: httpx.Client) -> None:
    for query, field in (
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"queue": "a\x01b"}, "queue"),
        ({"queue": "deque:x"}, "queue"),
    ):
        answer = memory_client.get("/api/jobs", params=query)
        assert answer.status_code == 422 and answer.json()["field"] == field, query


def test_healthz_and_unknown_paths(memory_client: httpx.Client) -> None:
    assert memory_client.get("/healthz").json() == {"status": "ok", "warnings": []}
    missing = memory_client.get("/api/nothing")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    wrong = memory_client.put("/api/jobs")
    assert wrong.status_code == 405 and set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_metrics_count_jobs_by_queue_and_task(app: App, client: httpx.Client) -> None:
    for i in range(2):
        post(client, task="add", args=[i, 1])
    post(client, task="boom")
    post(client, task="add", args=[1, 1], queue="other")
    drain(app)

    def scraped() -> str:
        return client.get("/metrics").text

    wait_for(lambda: 'baozi_jobs_failed_total{queue="default",task="boom"} 1.0' in scraped())
    text = scraped()
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    for line in (
        'baozi_jobs_enqueued_total{queue="default",task="add"} 2.0',
        'baozi_jobs_enqueued_total{queue="other",task="add"} 1.0',
        'baozi_jobs_started_total{queue="default",task="add"} 2.0',
        'baozi_jobs_succeeded_total{queue="default",task="add"} 2.0',
        'baozi_jobs_cancelled_total{queue="default",task="add"} 0.0',
        'baozi_queue_depth{queue="default"} 0.0',
        'baozi_queue_jobs{queue="default",status="failed"} 1.0',
        "baozi_workers 0.0",
    ):
        assert line in text, line
    post(client, task="add", args=[1, 1])
    assert 'baozi_queue_depth{queue="default"} 1.0' in scraped()


def test_the_openapi_document_describes_every_route(memory_client: httpx.Client) -> None:
    doc = memory_client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    expected = {
        "/api/jobs": {"get", "post"},
        "/api/jobs/{job_id}": {"get", "delete"},
        "/api/jobs/{job_id}/retry": {"post"},
        "/api/jobs/{job_id}/forget": {"post"},
        "/api/jobs/{job_id}/graph": {"get"},
        "/api/queues": {"get"},
        "/api/queues/{name}": {"delete"},
        "/api/queues/{name}/pause": {"post"},
        "/api/queues/{name}/resume": {"post"},
        "/api/queues/pause": {"post"},
        "/api/queues/resume": {"post"},
        "/api/workers": {"get"},
        "/api/throughput": {"get"},
        "/api/jobs:batch": {"post"},
        "/api/jobs:retry": {"post"},
        "/api/jobs:forget": {"post"},
        "/api/jobs/{job_id}/attempts": {"get"},
        "/api/queues/{name}/purge": {"post"},
        "/api/queues/purge": {"post"},
        "/api/queues/{name}/depth": {"get"},
        "/api/queues/depth": {"get"},
        "/api/tasks": {"get"},
        "/api/schedules": {"get"},
        "/api/session": {"get"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    assert {p: set(ops) - {"parameters"} for p, ops in doc["paths"].items()} == expected
    statuses = set(doc["paths"]["/api/jobs"]["post"]["responses"])
    # no 401: no token here; 421 for a Host that is not a loopback name
    assert statuses == {"200", "202", "403", "404", "413", "415", "421", "422", "429"}


def test_the_throughput_series_counts_finished_jobs(
    memory_app: App, memory_client: httpx.Client
) -> None:
    for i in range(3):
        post(memory_client, task="add", args=[i, 1])
    drain(memory_app)
    wait_for(
        lambda: sum(memory_client.get("/api/throughput").json()["queues"].get("default", [])) == 3
    )
    series = memory_client.get("/api/throughput").json()
    assert series["bucket_seconds"] == 10 and len(series["queues"]["default"]) == 60
    # the three finished within a moment: in the newest bucket, or split across the last two
    assert sum(series["queues"]["default"][-2:]) == 3


def test_a_queue_is_paused_and_resumed(app: App, client: httpx.Client) -> None:
    assert hasattr(app, "pause"), "App.pause is part of baozi now"
    post(client, task="add", args=[1, 1])
    paused = client.post("/api/queues/default/pause")
    assert paused.status_code == 200 and paused.json() == {"name": "default", "paused": True}
    assert app.is_paused("default")
    (queue,) = [q for q in client.get("/api/queues").json()["queues"] if q["name"] == "default"]
    assert queue["pausable"] and queue["paused"]
    resumed = client.post("/api/queues/default/resume")
    assert resumed.json() == {"name": "default", "paused": False}
    assert not app.is_paused("default")
    drain(app)
    assert client.get("/api/jobs").json()["jobs"][0]["status"] == "succeeded"
    for name in ("a%01b", "deque:x"):
        for action in ("pause", "resume"):
            bad = client.post(f"/api/queues/{name}/{action}")
            assert bad.status_code == 422 and bad.json()["field"] == "name", (name, action)
    assert not app.is_paused("deque:x")


class _AppWithoutPause(App):
    """An App from before queues could be paused."""

    pause = None
    resume = None
    is_paused = None


def test_an_app_that_cannot_pause_says_so() -> None:
    app = _AppWithoutPause(f"memory://{uuid.uuid4().hex}")
    app.task(name="add")(lambda a, b: a + b)
    with served(app) as base, httpx.Client(base_url=base) as client:
        post(client, task="add", args=[1, 1])
        (queue,) = client.get("/api/queues").json()["queues"]
        assert queue["pausable"] is False and queue["paused"] is None
        refused = client.post("/api/queues/default/pause")
        assert refused.status_code == 409 and "cannot pause" in refused.json()["error"]


def test_a_store_that_is_down_is_503_not_500() -> None:
    app = make_app("redis://127.0.0.1:1/0?retry=0.2")  # nothing listens on port 1
    with served(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        for method, path in (("GET", "/healthz"), ("GET", "/api/queues"), ("GET", "/api/jobs/1")):
            answer = client.request(method, path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"].startswith("the store is unavailable")
            assert answer.headers["Retry-After"] == "5"
        assert client.post("/api/jobs", json={"task": "add", "args": [1, 2]}).status_code == 503
