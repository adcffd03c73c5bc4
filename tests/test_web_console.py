"""The API behind the dashboard, served by uvicorn on loopback, on every store: jobs filtered and
paged by keyset, the batch endpoint (all or nothing), bulk actions, queue pages, per-task
statistics, workers with their jobs, schedules, attempts, live events, and the login cookie."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from baozi import App, Worker
from baozi.backends.base import WorkerInfo

from ._helpers import wait_for
from ._web import make_app, served


def post(client: httpx.Client, **job: Any) -> dict[str, Any]:
    answer = client.post("/api/jobs", json=job)
    assert answer.status_code == 202, answer.text
    return answer.json()  # type: ignore[no-any-return]


def batch(client: httpx.Client, jobs: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/api/jobs:batch", json={"jobs": jobs})


def drain(app: App) -> None:
    Worker(app, queues=["default", "other", "small"]).run(burst=True)


def total_jobs(app: App) -> int:
    return sum(sum(app.store.job_counts(q).values()) for q in ("default", "other", "small"))


def pages(client: httpx.Client, **query: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of a listing: the ids in order, and each page's body."""
    ids, bodies, cursor = [], [], None
    for _ in range(100):
        params = {**query, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/jobs", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        bodies.append(body)
        ids += [j["id"] for j in body["jobs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, bodies
    raise AssertionError("the listing never ended")


# -- jobs: filters and keyset paging --------------------------------------------------------


def test_paging_by_cursor_gives_every_job_once_while_new_ones_arrive(
    client: httpx.Client,
) -> None:
    made = [post(client, task="add", args=[i, i])["id"] for i in range(23)]
    seen, cursor, arrived = [], None, []
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/jobs", params=params).json()
        seen += [j["id"] for j in body["jobs"]]
        arrived.append(post(client, task="add", args=[0, 0])["id"])  # lands on page one
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]  # newest first, each once, none of the new ones
    assert not set(arrived) & set(seen)


def test_the_listing_filters_by_queue_status_task_time_and_search(
    app: App, client: httpx.Client
) -> None:
    a = post(client, task="add", args=[1, 2])
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    e = post(client, task="echo", args=["x"], queue="other")
    b = post(client, task="boom", args=["no"])
    Worker(app, queues=["other"]).run(burst=True)  # the echo job succeeds

    def ids(**query: Any) -> list[str]:
        return pages(client, **query)[0]

    assert ids(queue="other") == [e["id"]]
    assert ids(status="succeeded") == [e["id"]]
    assert ids(status="queued") == [b["id"], a["id"]]
    assert ids(task="boom") == [b["id"]]
    assert ids(since=middle) == [b["id"], e["id"]]
    assert ids(until=middle) == [a["id"]]
    assert ids(q=a["id"]) == [a["id"]]  # an id, exactly
    assert ids(q="ECH") == [e["id"]]  # part of a task's name, any case
    assert ids(q="nothing-like-it") == []
    assert ids(queue="default", status="queued", task="add") == [a["id"]]


def test_bad_listing_parameters_are_named(client: httpx.Client) -> None:
    post(client, task="add", args=[1, 2])
    for query, field in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"offset": "5", "task": "add"}, "offset"),
        ({"limit": "0"}, "limit"),
    ):
        answer = client.get("/api/jobs", params=query)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["field"] == field


def test_offset_paging_still_answers_for_old_clients(client: httpx.Client) -> None:
    made = [post(client, task="add", args=[i, i])["id"] for i in range(3)]
    body = client.get("/api/jobs", params={"offset": 1, "limit": 1}).json()
    assert [j["id"] for j in body["jobs"]] == [made[1]] and body["next_offset"] == 2


# -- the batch endpoint ---------------------------------------------------------------------


def test_a_batch_files_mixed_tasks_and_queues_in_order_with_positions(
    app: App, client: httpx.Client
) -> None:
    post(client, task="add", args=[0, 0])  # one ahead in default
    answer = batch(
        client,
        [
            {"task": "add", "args": [1, 2]},
            {"task": "echo", "args": ["a"], "queue": "other"},
            {"task": "echo", "kwargs": {"k": 1}},
            {"task": "add", "args": [3, 4], "queue": "other", "priority": 0},
        ],
    )
    assert answer.status_code == 202, answer.text
    jobs = answer.json()["jobs"]
    assert [(j["task"], j["queue"], j["position"]) for j in jobs] == [
        ("add", "default", 1),
        ("echo", "other", 0),
        ("echo", "default", 2),
        ("add", "other", 1),
    ]
    assert all(j["status"] == "queued" and j["url"] == f"/api/jobs/{j['id']}" for j in jobs)
    stored = app.store.records_of([j["id"] for j in jobs])
    assert len(stored) == 4 and stored[jobs[2]["id"]].task == "echo"
    drain(app)
    assert client.get(jobs[0]["url"]).json()["result"] == 3


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"task": "add", "args": "1, 2"}, "jobs[2].args"),
        ({"task": "nope"}, "jobs[2].task"),
        ({"args": [1]}, "jobs[2].task"),
        ({"task": "add", "depends_on": ["1"]}, "jobs[2]"),
        ({"task": "add", "delay": 5}, "jobs[2]"),
        ({"task": "add", "colour": "red"}, "jobs[2].colour"),
        ("add", "jobs[2]"),
    ],
)
def test_a_bad_entry_refuses_the_whole_batch_naming_its_index_and_field(
    app: App, client: httpx.Client, entry: Any, field: str
) -> None:
    good = {"task": "add", "args": [1, 2]}
    answer = batch(client, [good, {**good, "queue": "other"}, entry, good])
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert "jobs[2]" in answer.json()["error"]
    assert total_jobs(app) == 0


def test_a_batch_over_a_full_queue_is_refused_with_retry_after_and_files_nothing(
    app: App, client: httpx.Client
) -> None:
    post(client, task="add", args=[0, 0], queue="small")  # small holds at most 2
    answer = batch(
        client,
        [
            {"task": "add", "args": [1, 1]},
            {"task": "add", "args": [1, 1], "queue": "small"},
            {"task": "add", "args": [1, 1], "queue": "small"},
        ],
    )
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert "small" in answer.json()["error"]
    assert total_jobs(app) == 1  # the one posted before; none of the batch
    one_more = batch(client, [{"task": "add", "args": [1, 1], "queue": "small"}])
    assert one_more.status_code == 202


def test_a_batch_holds_one_to_a_thousand_jobs(client: httpx.Client) -> None:
    good = {"task": "add", "args": [1, 2]}
    assert batch(client, []).status_code == 422
    over = batch(client, [good] * 1001)
    assert over.status_code == 422 and over.json()["field"] == "jobs"
    full = batch(client, [good] * 1000)
    assert full.status_code == 202 and len(full.json()["jobs"]) == 1000
    assert [j["position"] for j in full.json()["jobs"]] == list(range(1000))
    not_json = client.post("/api/jobs:batch", content=b"{}", headers={"content-type": "text/plain"})
    assert not_json.status_code == 415


# -- bulk actions ---------------------------------------------------------------------------


def test_retry_all_and_forget_all_act_on_the_failed_jobs(app: App, client: httpx.Client) -> None:
    failed = [post(client, task="boom", args=[f"no {i}"])["id"] for i in range(3)]
    other = post(client, task="boom", args=["elsewhere"], queue="other")["id"]
    kept = post(client, task="add", args=[1, 1])["id"]
    drain(app)
    assert sorted(pages(client, status="failed")[0]) == sorted([*failed, other])
    answer = client.post("/api/jobs:retry", json={"status": "failed", "queue": "default"})
    assert answer.status_code == 200 and answer.json()["retried"] == 3
    assert app.store.statuses(failed) == dict.fromkeys(failed, "queued")
    assert app.store.statuses([other]) == {other: "failed"}
    drain(app)
    answer = client.post("/api/jobs:forget", json={"status": "failed"})
    assert answer.status_code == 200 and answer.json()["forgotten"] == 4
    assert pages(client, status="failed")[0] == []
    assert app.store.statuses([kept]) == {kept: "succeeded"}


def test_bulk_actions_check_their_body(client: httpx.Client) -> None:
    for path, body, field in (
        ("/api/jobs:retry", {"status": "succeeded"}, "status"),
        ("/api/jobs:forget", {"status": "queued"}, "status"),
        ("/api/jobs:forget", {"status": "failed", "queue": 5}, "queue"),
        ("/api/jobs:retry", {"status": "failed", "all": True}, "all"),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text


# -- queues ---------------------------------------------------------------------------------


def test_a_queue_shows_its_latency_and_can_be_purged(app: App, client: httpx.Client) -> None:
    first = post(client, task="add", args=[1, 1], queue="other")
    post(client, task="add", args=[2, 2], queue="other")
    time.sleep(0.3)
    queues = {q["name"]: q for q in client.get("/api/queues").json()["queues"]}
    assert queues["other"]["latency_seconds"] >= 0.3
    assert queues["other"]["oldest_ready_at"] == pytest.approx(
        app.store.record(first["id"]).created_at  # type: ignore[union-attr]
    )
    assert queues["small"]["latency_seconds"] is None  # declared; nothing waits there
    answer = client.post("/api/queues/other/purge")
    assert answer.status_code == 200 and answer.json() == {"name": "other", "purged": 2}
    assert app.store.job_counts("other")["queued"] == 0
    assert client.post("/api/queues/never-used/purge").status_code == 404


def test_a_queue_keeps_its_depth_over_time_in_the_store(app: App) -> None:
    for i in range(3):
        app.tasks["add"].delay(i, i)
    with served(app, interval=0.1) as base, httpx.Client(base_url=base) as client:
        wait_for(
            lambda: (
                3
                in client.get("/api/queues/default/depth", params={"window": "10m"}).json()[
                    "series"
                ]["ready"]
            ),
            timeout=15,
        )
        body = client.get("/api/queues/default/depth", params={"window": "10m"}).json()
        assert body["window"] == "10m" and body["bucket_seconds"] == 10
        assert set(body["series"]) == {"ready", "scheduled", "running", "waiting"}
        assert client.get("/api/queues/default/depth?window=2d").status_code == 422
    # Another server, as after a restart, reads what the first one kept.
    with served(app, interval=60) as base, httpx.Client(base_url=base) as client:
        body = client.get("/api/queues/default/depth", params={"window": "1h"}).json()
        assert 3 in body["series"]["ready"]


# -- statistics the workers keep --------------------------------------------------------------


def test_task_statistics_and_throughput_come_from_the_store(app: App) -> None:
    for i in range(4):
        app.tasks["add"].delay(i, i)
    for i in range(2):
        app.tasks["boom"].delay(f"no {i}")
    drain(app)  # a worker that stops adds what it counted
    with served(app) as base, httpx.Client(base_url=base) as client:
        body = client.get("/api/tasks", params={"window": "1h"}).json()
        assert body["window"] == "1h"
        stats = {t["task"]: t for t in body["tasks"]}
        assert (stats["add"]["succeeded"], stats["add"]["failed"]) == (4, 0)
        assert (stats["boom"]["succeeded"], stats["boom"]["failed"]) == (0, 2)
        assert stats["boom"]["failure_rate"] == 1.0 and stats["add"]["failure_rate"] == 0.0
        assert stats["add"]["queue"] == "default"
        assert set(stats["add"]["run_ms"]) == {"p50", "p95", "p99"}
        assert stats["add"]["run_ms"]["p50"] is not None
        flow = client.get("/api/throughput", params={"window": "10m"}).json()
        assert flow["window"] == "10m" and flow["bucket_seconds"] == 10
        assert sum(flow["queues"]["default"]["succeeded"]) == 4
        assert sum(flow["queues"]["default"]["failed"]) == 2
        assert client.get("/api/tasks", params={"window": "1y"}).status_code == 422


def test_a_failed_jobs_attempts_name_their_worker(app: App, client: httpx.Client) -> None:
    job = post(client, task="boom", args=["first"])
    worker = Worker(app, queues=["default"])
    worker.run(burst=True)
    answer = client.get(f"/api/jobs/{job['id']}/attempts")
    assert answer.status_code == 200, answer.text
    attempts = answer.json()["attempts"]
    assert [a["attempt"] for a in attempts] == [1]
    assert attempts[0]["outcome"] == "failed" and attempts[0]["worker"] == worker.id
    assert attempts[0]["error"]["type"] == "ValueError"
    assert client.get(job["url"]).json()["worker"] == worker.id
    assert client.get("/api/jobs/no-such-job/attempts").status_code == 404


# -- workers and schedules ------------------------------------------------------------------


def test_workers_show_their_jobs_and_stale_or_gone_holders(app: App, client: httpx.Client) -> None:
    held = post(client, task="add", args=[1, 1])["id"]
    orphan = post(client, task="add", args=[2, 2])["id"]
    now = time.time()
    info = WorkerInfo("w-live", "here", 1, "thread", 4, ("default",), 0, now, now)
    app.store.heartbeat(info, ttl=60)
    assert [i.id for i in app.store.reserve("default", "w-live", 60)] != []
    assert [i.id for i in app.store.reserve("default", "w-dead", 60)] != []
    app.tasks["add"].apply_async((3, 3), queue="orphans")  # a queue nobody serves or declares
    stray = app.store.reserve("orphans", "w-gone", 60)[0].id
    body = client.get("/api/workers").json()
    (live,) = body["workers"]
    assert live["id"] == "w-live" and live["jobs"] == [held] and live["busy"] == 1
    assert live["stale"] is False
    assert body["gone"] == [
        {"id": "w-dead", "jobs": [orphan]},
        {"id": "w-gone", "jobs": [stray]},
    ]


def test_a_worker_that_missed_its_beats_shows_as_stale(tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'stale.db'}")
    app.lease = 0.6  # beats every 0.2 s: stale after 0.4 s without one
    old = time.time()
    app.store.heartbeat(WorkerInfo("w-slow", "here", 1, "thread", 1, ("default",), 0, old, old), 60)
    time.sleep(0.5)
    with served(app) as base, httpx.Client(base_url=base) as client:
        (slow,) = client.get("/api/workers").json()["workers"]
        assert slow["stale"] is True


def test_schedules_are_listed_with_their_last_and_next_runs(tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'beat.db'}")

    @app.periodic(every=3600, args=(1, 2))
    @app.task(name="hourly")
    def hourly(a: int, b: int) -> int:
        return a + b

    with served(app) as base, httpx.Client(base_url=base) as client:
        (entry,) = client.get("/api/schedules").json()["schedules"]
    assert entry["task"] == "hourly" and entry["queue"] == "default"
    assert entry["schedule"] == "every 3600s" and entry["args"] == [1, 2]
    assert entry["last_run"] is None and entry["next_run"] > time.time()
    assert entry["overdue"] is False


# -- live events ----------------------------------------------------------------------------


def test_events_stream_a_tick_with_the_queues(client: httpx.Client) -> None:
    post(client, task="add", args=[1, 1])
    with client.stream("GET", "/api/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event, data = None, None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "tick":
                data = json.loads(line[6:])
                break
    assert data is not None
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["default"]["ready"] == 1 and data["workers"] == 0


# -- the login cookie -----------------------------------------------------------------------


TOKEN = "a-token-long-enough-1234"


def test_the_login_form_sets_an_httponly_strict_cookie_and_logout_clears_it(
    tmp_path: Any,
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'login.db'}")
    with served(app, token=TOKEN) as base, httpx.Client(base_url=base) as client:
        assert client.get("/api/session").status_code == 401
        assert client.get("/api/jobs").status_code == 401
        wrong = client.post("/login", data={"token": "guess"})
        assert wrong.status_code == 303 and wrong.headers["location"] == "/?login=refused"
        assert "set-cookie" not in wrong.headers
        right = client.post("/login", data={"token": TOKEN})
        assert right.status_code == 303 and right.headers["location"] == "/"
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert client.get("/api/session").json() == {"auth": "cookie", "token_required": True}
        assert client.get("/api/jobs").status_code == 200
        out = client.post("/logout")
        assert out.status_code == 303
        assert client.get("/api/jobs").status_code == 401
        bearer = client.get("/api/session", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.json()["auth"] == "bearer"


def test_another_sites_page_cannot_log_in(tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'csrf.db'}")
    with served(app, token=TOKEN) as base, httpx.Client(base_url=base) as client:
        answer = client.post(
            "/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
        )
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_without_a_token_the_session_needs_no_login(client: httpx.Client) -> None:
    assert client.get("/api/session").json() == {"auth": "none", "token_required": False}


def test_a_jobs_attempts_after_a_retry_by_hand_show_every_run(
    app: App, client: httpx.Client
) -> None:
    job = post(client, task="boom", args=["again"])
    drain(app)
    assert client.post(f"/api/jobs/{job['id']}/retry").status_code == 202
    drain(app)
    attempts = client.get(f"/api/jobs/{job['id']}/attempts").json()["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (1, "failed")]
    assert attempts[0]["started_at"] < attempts[1]["started_at"]


def test_runs_nobody_told_of_are_lost() -> None:
    from baozi.backends.base import JobRecord
    from baozi.web._wire import attempt_history

    rec = JobRecord(
        id="9",
        queue="q",
        task="t",
        status="running",
        priority=0,
        payload=b"",
        attempts=3,
        failures=1,
        created_at=1.0,
        started_at=5.0,
        finished_at=None,
        result=None,
        error=None,
        progress=None,
        worker="w-3",
    )
    logged = [
        {
            "attempt": 1,
            "worker": "w-1",
            "started_at": 2.0,
            "finished_at": 3.0,
            "outcome": "retried",
            "error": {"type": "E", "message": "m"},
        }
    ]
    history = attempt_history(rec, logged)
    assert [(a["attempt"], a["outcome"], a["worker"]) for a in history] == [
        (1, "retried", "w-1"),
        (2, "lost", None),
        (3, "running", "w-3"),
    ]


def test_the_login_form_posted_under_no_referrer_is_let_in(tmp_path: Any) -> None:
    # Under Referrer-Policy: no-referrer a browser sends "Origin: null" with the form, and
    # says it is the server's own page in Sec-Fetch-Site, which no page can set.
    app = make_app(f"sqlite:///{tmp_path / 'null.db'}")
    with served(app, token=TOKEN) as base, httpx.Client(base_url=base) as client:
        own = client.post(
            "/login",
            data={"token": TOKEN},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 303 and "set-cookie" in own.headers
        other = client.post(
            "/login",
            data={"token": TOKEN},
            headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        )
        bare = client.post("/login", data={"token": TOKEN}, headers={"Origin": "null"})
        assert other.status_code == 403 and bare.status_code == 403


def test_a_server_stops_while_a_dashboard_listens_to_its_events(tmp_path: Any) -> None:
    import threading

    import uvicorn

    from baozi.web import create_app
    from baozi.web._http import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_CONNECTIONS, protocol

    from ._web import loopback_socket

    app = make_app(f"sqlite:///{tmp_path / 'events.db'}")
    sock = loopback_socket()
    http = protocol(DEFAULT_MAX_CONNECTIONS, DEFAULT_HEAD_TIMEOUT)
    config = uvicorn.Config(create_app(app), log_level="warning", lifespan="on", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ticks: list[str] = []
    with httpx.Client(base_url=base) as client, client.stream("GET", "/api/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: tick"):
                ticks.append(line)
                break
        server.should_exit = True  # as Ctrl-C does: the open stream must not hold it
        thread.join(15)
        stopped = not thread.is_alive()
    sock.close()
    assert ticks and stopped, "the server waited for the event stream's client to leave"


def test_the_login_cookie_is_no_bearer_token_and_any_token_logs_in(tmp_path: Any) -> None:
    odd = 'abc;def ghi"jkl\\mnop,q-long-enough'  # characters a cookie would have to quote
    app = make_app(f"sqlite:///{tmp_path / 'odd.db'}")
    with served(app, token=odd) as base, httpx.Client(base_url=base) as client:
        right = client.post("/login", data={"token": odd})
        assert right.status_code == 303
        value = client.cookies["baozi_session"]
        assert odd not in value and len(value) == 64
        assert client.get("/api/queues").status_code == 200  # the cookie lets the page in
        stolen = httpx.get(f"{base}/api/queues", headers={"Authorization": f"Bearer {value}"})
        assert stolen.status_code == 401  # but it is no token for the API


def test_a_login_form_past_4_kib_is_refused_even_without_a_length(tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'big.db'}")
    with served(app, token=TOKEN) as base, httpx.Client(base_url=base) as client:

        def chunks() -> Any:  # sent chunked: no Content-Length for the guard to check
            yield b"token="
            for _ in range(64):
                yield b"x" * 1024

        answer = client.post(
            "/login",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 413 and "set-cookie" not in answer.headers


def test_a_worker_whose_heartbeats_stop_shows_as_dead(client: httpx.Client, app: App) -> None:
    now = time.time()
    app.store.heartbeat(
        WorkerInfo("w-brief", "here", 7, "thread", 2, ("default",), 0, now, now), 0.5
    )
    (seen,) = client.get("/api/workers").json()["workers"]
    assert seen["id"] == "w-brief" and seen["dead"] is False
    wait_for(lambda: app.store.workers() == [], timeout=10)  # the store forgets it
    (dead,) = client.get("/api/workers").json()["workers"]
    assert dead["id"] == "w-brief" and dead["dead"] is True and dead["pid"] == 7


def test_a_batch_entry_over_a_megabyte_is_refused_as_a_single_post_is(
    app: App, client: httpx.Client
) -> None:
    big = {"task": "echo", "args": ["x" * (1024 * 1024 + 10)]}
    answer = batch(client, [{"task": "add", "args": [1, 2]}, big])
    assert answer.status_code == 413 and answer.json()["field"] == "jobs[1]"
    assert total_jobs(app) == 0


def test_a_time_range_that_ends_before_it_starts_is_refused(client: httpx.Client) -> None:
    answer = client.get("/api/jobs", params={"since": 200, "until": 100})
    assert answer.status_code == 422 and answer.json()["field"] == "until"
