"""Who may use the HTTP service: a bearer token on every API and dashboard data request when the
server has one, no start on a non-loopback address without one, and answers a browser cannot
mistake for a page of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from baozi import App, Worker
from baozi.web import check_bind, create_app

from ._helpers import wait_for
from ._web import free_port, make_app, served, served_asgi

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token-of-24-chars"


def test_with_a_token_every_api_request_needs_it() -> None:
    app = make_app(f"memory://{uuid.uuid4().hex}")
    with served(app, token=TOKEN) as base, httpx.Client(base_url=base) as client:
        for method, path in [
            ("GET", "/api/queues"),
            ("GET", "/api/workers"),
            ("GET", "/api/jobs"),
            ("POST", "/api/jobs"),
            ("GET", "/api/jobs/1"),
            ("DELETE", "/api/jobs/1"),
            ("POST", "/api/jobs/1/retry"),
            ("POST", "/api/queues/default/pause"),
            ("GET", "/api/throughput"),
            ("GET", "/metrics"),
            ("GET", "/api/anything"),
        ]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                answer = client.request(method, path, headers=headers, json={"task": "add"})
                assert answer.status_code == 401, (method, path, headers)
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
                assert "token" in answer.json()["error"]
        assert app.store.queues() == []  # the refused POST enqueued nothing
        good = {"Authorization": f"Bearer {TOKEN}"}
        posted = client.post("/api/jobs", json={"task": "add", "args": [1, 2]}, headers=good)
        assert posted.status_code == 202
        assert client.get(posted.json()["url"], headers=good).json()["args"] == [1, 2]
        assert client.get("/metrics", headers=good).status_code == 200


def test_the_page_its_files_and_health_need_no_token_but_the_schema_does() -> None:
    with (
        served(make_app(f"memory://{uuid.uuid4().hex}"), token=TOKEN) as base,
        httpx.Client(base_url=base) as c,
    ):
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert c.get("/static/dashboard.js").status_code == 200
        assert c.get("/static/dashboard.css").status_code == 200
        assert c.get("/healthz").json() == {"status": "ok", "warnings": []}
        assert c.get("/openapi.json").status_code == 401  # it names every task
        doc = c.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert doc["security"] == [{"bearer": []}]
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_answer_carries_headers_that_keep_it_inert() -> None:
    with served(make_app(f"memory://{uuid.uuid4().hex}")) as base, httpx.Client(base_url=base) as c:
        for path in ("/", "/api/queues", "/api/jobs/x", "/static/dashboard.js"):
            headers = c.get(path).headers
            assert "script-src 'self'" in headers["Content-Security-Policy"], path
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
            assert headers["X-Content-Type-Options"] == "nosniff", path


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_another_address_needs_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="without a token"):
        check_bind(host, None)
    with pytest.raises(ValueError, match="without a token"):
        check_bind(host, "")
    check_bind(host, TOKEN)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_a_token_shorter_than_16_characters_is_refused_beyond_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="token of 15 characters: use at least 16"):
        check_bind(host, "x" * 15)
    check_bind(host, "x" * 16)
    check_bind("127.0.0.1", "short")  # on loopback a token is a choice, of any length


def test_baozi_serve_refuses_a_short_token_on_another_address(tmp_path: Path) -> None:
    env = _env(tmp_path, BAOZI_TOKEN="short")
    proc = _baozi("serve", "tests.webapp:app", "--host", "0.0.0.0", "--port", "0", env=env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "use at least 16" in out, out


def _baozi(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "baozi", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BAOZI_URL", "BAOZI_TOKEN")}
    return {**env, "BAOZI_TEST_URL": f"sqlite:///{tmp_path / 'web.db'}", **extra}


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    proc = _baozi("serve", "tests.webapp:app", "--host", "0.0.0.0", env=_env(tmp_path))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to serve on 0.0.0.0 without a token" in out


def _wait_until_up(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "baozi serve did not start"
        time.sleep(0.05)


def test_baozi_serve_runs_the_service_with_the_token_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, BAOZI_TOKEN=TOKEN)
    proc = _baozi("serve", "tests.webapp:app", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, base)
        assert httpx.get(f"{base}/api/queues").status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        posted = httpx.post(f"{base}/api/jobs", json={"task": "add", "args": [2, 3]}, headers=good)
        assert posted.status_code == 202 and posted.json()["position"] == 0
        app = App(env["BAOZI_TEST_URL"])  # the same store, seen from here
        assert app.store.record(posted.json()["id"]) is not None
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_mounted_under_a_prefix_it_guards_and_watches_as_at_the_root() -> None:
    app = make_app(f"memory://{uuid.uuid4().hex}")
    site = Starlette(routes=[Mount("/baozi", create_app(app, token=TOKEN, interval=0.1))])
    good = {"Authorization": f"Bearer {TOKEN}"}
    with served_asgi(site) as base, httpx.Client(base_url=f"{base}/baozi") as client:
        for path in ("/", "/static/dashboard.js", "/static/dashboard.css", "/healthz"):
            assert client.get(path).status_code == 200, path
        for path in ("/api/queues", "/api/jobs", "/metrics"):
            assert client.get(path).status_code == 401, path
        posted = client.post("/api/jobs", json={"task": "add", "args": [1, 2]}, headers=good)
        assert posted.status_code == 202
        assert posted.headers["Location"] == f"/baozi/api/jobs/{posted.json()['id']}"
        Worker(app).run(burst=True)

        def rate() -> object:  # the observer runs though a mounted app's lifespan does not
            queues = client.get("/api/queues", headers=good).json()["queues"]
            return [q["rate_per_second"] for q in queues if q["name"] == "default"][0]

        wait_for(rate, timeout=10)
        assert (
            'baozi_jobs_succeeded_total{queue="default",task="add"} 1.0'
            in client.get("/metrics", headers=good).text
        )


def test_a_body_must_say_it_is_json() -> None:
    app = make_app(f"memory://{uuid.uuid4().hex}")
    body = b'{"task": "add", "args": [1, 2]}'  # what a page may send anywhere without asking
    with served(app) as base, httpx.Client(base_url=base) as client:
        for kind in (None, "text/plain", "application/x-www-form-urlencoded"):
            headers = {} if kind is None else {"Content-Type": kind}
            answer = client.post("/api/jobs", content=body, headers=headers)
            assert answer.status_code == 415, kind
            assert "application/json" in answer.json()["error"]
        assert app.store.queues() == []
        sent = client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
        assert sent.status_code == 202


@pytest.mark.parametrize("token", [None, TOKEN])
def test_writes_from_another_sites_page_are_refused(token: str | None) -> None:
    app = make_app(f"memory://{uuid.uuid4().hex}")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    with served(app, token=token) as base, httpx.Client(base_url=base, headers=auth) as client:
        job = client.post("/api/jobs", json={"task": "boom"}).json()
        writes = [
            ("POST", "/api/jobs", {"task": "add", "args": [1, 2]}),
            ("DELETE", job["url"], None),
            ("POST", f"{job['url']}/retry", None),
            ("POST", "/api/queues/default/pause", None),
            ("POST", "/api/queues/default/resume", None),
        ]
        for method, path, body in writes:
            for foreign in (
                {"Origin": "http://evil.example"},
                {"Origin": "null"},
                {"Origin": base.replace("127.0.0.1", "localhost")},
                {"Origin": base[: base.rindex(":")] + ":1"},
                {"Sec-Fetch-Site": "cross-site"},
            ):
                answer = client.request(method, path, json=body, headers=foreign)
                assert answer.status_code == 403, (method, path, foreign)
                assert "another site" in answer.json()["error"]
        assert app.store.job_counts("default")["queued"] == 1 and not app.is_paused("default")
        # the server's own pages may write, and reads are not refused
        own = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
        new_job = {"task": "add", "args": [1, 2]}
        assert client.post("/api/jobs", json=new_job, headers=own).status_code == 202
        assert client.delete(job["url"], headers=own).status_code == 200
        assert client.post("/api/queues/default/pause", headers=own).status_code == 200
        assert client.get("/api/queues", headers={"Origin": "http://evil.example"}).is_success


def test_without_a_token_only_loopback_names_are_answered() -> None:
    app = make_app(f"memory://{uuid.uuid4().hex}")
    with served(app) as base, httpx.Client(base_url=base) as client:
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "10.0.0.1"):
            for path in ("/", "/api/queues", "/healthz"):
                answer = client.get(path, headers={"Host": host})
                assert answer.status_code == 421, (host, path)
                assert "loopback" in answer.json()["error"]
            refused = client.post("/api/jobs", json={"task": "add"}, headers={"Host": host})
            assert refused.status_code == 421
        assert app.store.queues() == []
        for host in ("127.0.0.1", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.2:1"):
            assert client.get("/api/queues", headers={"Host": host}).is_success, host
    with served(app, token=TOKEN) as base:  # with a token the name may be any
        answer = httpx.get(
            f"{base}/api/queues",
            headers={"Host": "tasks.example.org", "Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.is_success


def test_baozi_serve_listens_on_ipv6_loopback_written_in_brackets(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
            port = sock.getsockname()[1]
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    proc = _baozi(
        "serve", "tests.webapp:app", "--host", "[::1]", "--port", str(port), env=_env(tmp_path)
    )
    base = f"http://[::1]:{port}"
    try:
        _wait_until_up(proc, base)
        assert httpx.get(f"{base}/api/queues").status_code == 200  # no token: [::1] is loopback
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
