"""Unique jobs, dependencies and dead letters through the HTTP API, on every store: a held unique
key answers 200 with the job that holds it, a dependent job waits and shows its links, a job's
workflow graph is drawn from its parents and children, and a finished job's record is forgotten
on request."""

from __future__ import annotations

from typing import Any

import httpx

from baozi import App, Worker

from ._helpers import wait_for


def post(client: httpx.Client, **job: Any) -> httpx.Response:
    return client.post("/api/jobs", json=job)


def drain(app: App) -> None:
    Worker(app, queues=["default", "other"]).run(burst=True)


def test_a_held_unique_key_answers_200_with_the_job_that_holds_it(
    app: App, client: httpx.Client
) -> None:
    first = post(client, task="add", args=[1, 1], unique_key="report:7")
    assert first.status_code == 202 and first.json()["deduplicated"] is False
    again = post(client, task="add", args=[2, 2], unique_key="report:7", queue="other")
    assert again.status_code == 200
    body = again.json()
    assert body["deduplicated"] is True and body["id"] == first.json()["id"]
    assert body["args"] == [1, 1] and body["position"] == 0  # the job that holds it, as it is
    assert again.headers["Location"] == body["url"]
    assert client.get(body["url"]).json()["unique_key"] == "report:7"
    assert len(client.get("/api/jobs").json()["jobs"]) == 1
    drain(app)
    after = post(client, task="add", args=[1, 1], unique_key="report:7")  # released once done
    assert after.status_code == 202 and after.json()["id"] != body["id"]


def test_unique_while_and_unique_for_say_how_long_the_key_is_held(
    app: App, client: httpx.Client
) -> None:
    running_only = post(client, task="add", args=[1, 1], unique_key="r", unique_while="running")
    second = post(client, task="add", args=[1, 1], unique_key="r", unique_while="running")
    assert (running_only.status_code, second.status_code) == (202, 202)  # queued: not held
    kept = post(client, task="add", args=[1, 1], unique_key="k", unique_for=600).json()
    drain(app)
    held = post(client, task="add", args=[1, 1], unique_key="k")
    assert held.status_code == 200 and held.json()["id"] == kept["id"]
    assert held.json()["status"] == "succeeded"


def test_a_task_declared_unique_deduplicates_posts_of_the_same_call(
    app: App, client: httpx.Client
) -> None:
    app.task(name="once", unique=True)(lambda x: x)
    first = post(client, task="once", args=[5])
    same = post(client, task="once", kwargs={"x": 5})
    other = post(client, task="once", args=[6])
    assert [a.status_code for a in (first, same, other)] == [202, 200, 202]
    assert same.json()["id"] == first.json()["id"]
    assert first.json()["unique_key"].startswith("once:")


def test_a_job_that_depends_on_others_waits_until_they_succeed(
    app: App, client: httpx.Client
) -> None:
    first = post(client, task="add", args=[1, 1]).json()
    second = post(client, task="add", args=[2, 2]).json()
    after = post(client, task="add", args=[3, 3], depends_on=[first["id"], second["id"]])
    assert after.status_code == 202
    job = after.json()
    assert job["status"] == "waiting" and job["position"] is None
    assert job["parents"] == [first["id"], second["id"]] and job["children"] == []
    assert job["on_dependency_failure"] == "cancel"
    assert client.get(first["url"]).json()["children"] == [job["id"]]
    waiting = client.get("/api/jobs", params={"status": "waiting"}).json()["jobs"]
    assert [j["id"] for j in waiting] == [job["id"]]
    (default,) = [q for q in client.get("/api/queues").json()["queues"] if q["name"] == "default"]
    assert (default["waiting"], default["ready"]) == (1, 2)
    drain(app)
    assert client.get(job["url"]).json()["status"] == "succeeded"
    assert client.get("/api/jobs", params={"status": "waiting"}).json()["jobs"] == []


def test_what_a_failed_dependency_does_is_chosen_per_job(app: App, client: httpx.Client) -> None:
    bad = post(client, task="boom").json()
    after = {
        choice: post(
            client, task="add", args=[1, 1], depends_on=[bad["id"]], on_dependency_failure=choice
        ).json()
        for choice in ("cancel", "fail", "run")
    }
    drain(app)
    shown = {choice: client.get(job["url"]).json() for choice, job in after.items()}
    assert {c: j["status"] for c, j in shown.items()} == {
        "cancel": "cancelled",
        "fail": "failed",
        "run": "succeeded",
    }
    assert shown["fail"]["error"]["type"] == "DependencyFailed"
    assert shown["fail"]["on_dependency_failure"] == "fail"


def test_an_unknown_dependency_is_422_naming_it_and_nothing_is_enqueued(
    app: App, client: httpx.Client
) -> None:
    known = post(client, task="add", args=[1, 1]).json()
    for missing in ("424242", "abc", "-1", "9" * 40):
        answer = post(client, task="add", args=[1, 1], depends_on=[known["id"], missing])
        assert answer.status_code == 422, (missing, answer.text)
        assert answer.json()["field"] == "depends_on"
        assert f"no job {missing!r}" in answer.json()["error"]
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [known["id"]]
    assert client.get(known["url"]).json()["children"] == []


def test_the_graph_holds_every_job_linked_either_way_in_layers(
    app: App, client: httpx.Client
) -> None:
    a = post(client, task="add", args=[1, 1]).json()["id"]
    b = post(client, task="add", args=[1, 2], depends_on=[a]).json()["id"]
    c = post(client, task="add", args=[1, 3], depends_on=[b]).json()["id"]
    d = post(client, task="echo", depends_on=[a], queue="other").json()["id"]
    e = post(client, task="add", args=[1, 4], depends_on=[c, d]).json()["id"]
    lone = post(client, task="add", args=[9, 9]).json()["id"]
    graph = client.get(f"/api/jobs/{c}/graph").json()
    assert graph["id"] == c and graph["truncated"] is False
    layers = {n["id"]: n["layer"] for n in graph["nodes"]}
    assert layers == {a: 0, b: 1, d: 1, c: 2, e: 3}
    assert [n["layer"] for n in graph["nodes"]] == sorted(layers.values())
    assert {(n["id"], n["task"], n["status"]) for n in graph["nodes"]} >= {
        (a, "add", "queued"),
        (d, "echo", "waiting"),
    }
    edges = {(x["parent"], x["child"]) for x in graph["edges"]}
    assert edges == {(a, b), (b, c), (a, d), (c, e), (d, e)}
    alone = client.get(f"/api/jobs/{lone}/graph").json()
    assert alone["nodes"] == [
        {"id": lone, "task": "add", "queue": "default", "status": "queued", "layer": 0}
    ]
    assert alone["edges"] == [] and alone["truncated"] is False


def test_a_forgotten_parent_stays_in_the_graph_without_a_record(
    app: App, client: httpx.Client
) -> None:
    parent = post(client, task="add", args=[1, 1]).json()
    drain(app)
    child = post(client, task="add", args=[2, 2], depends_on=[parent["id"]]).json()
    assert child["status"] == "queued"  # its dependency had already succeeded
    assert client.post(f"{parent['url']}/forget").status_code == 200
    graph = client.get(f"{child['url']}/graph").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[parent["id"]] == {
        "id": parent["id"],
        "task": None,
        "queue": None,
        "status": None,
        "layer": 0,
    }
    assert graph["edges"] == [{"parent": parent["id"], "child": child["id"]}]


def test_a_big_workflow_is_shown_in_part(app: App, client: httpx.Client) -> None:
    add = app.tasks["add"]
    root = add.delay(0, 0)
    for i in range(205):
        add.apply_async((i, i), depends_on=[root])
    graph = client.get(f"/api/jobs/{root.id}/graph").json()
    assert len(graph["nodes"]) == 200 and graph["truncated"] is True
    assert graph["nodes"][0]["id"] == root.id and len(graph["edges"]) == 199


def test_a_finished_jobs_record_is_forgotten_on_request(app: App, client: httpx.Client) -> None:
    bad = post(client, task="boom").json()
    drain(app)
    waiting = post(client, task="add", args=[1, 1]).json()
    refused = client.post(f"{waiting['url']}/forget")
    assert refused.status_code == 409
    assert "queued" in refused.json()["error"] and "finished" in refused.json()["error"]
    assert client.get(waiting["url"]).json()["status"] == "queued"
    forgotten = client.post(f"{bad['url']}/forget")
    assert forgotten.status_code == 200
    assert forgotten.json() == {"id": bad["id"], "forgotten": True}
    assert client.get(bad["url"]).status_code == 404
    assert client.post(f"{bad['url']}/forget").status_code == 404
    wait_for(lambda: not client.get("/api/jobs", params={"status": "failed"}).json()["jobs"])


def test_an_unknown_job_has_no_graph_and_nothing_to_forget(
    memory_client: httpx.Client,
) -> None:
    for job_id in ("424242", "abc", "%20"):
        assert memory_client.get(f"/api/jobs/{job_id}/graph").status_code == 404
        answer = memory_client.post(f"/api/jobs/{job_id}/forget")
        assert answer.status_code == 404 and "no job" in answer.json()["error"]
