"""``baozi monitor`` against a local server: every kind of failure is a reason, never a trace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
        if self.path == "/hang":
            time.sleep(3)
        code = {"/ok": 200, "/missing": 404, "/error": 500, "/moved": 302}.get(self.path, 200)
        if self.path == "/hang":
            code = 200
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def urls(site: str, tmp_path: Path) -> Path:
    lines = [
        "# one of each",
        f"http://{site}/ok",
        f"http://{site}/missing",
        f"http://{site}/error",
        f"http://{site}/hang",
        f"http://{site}/moved",
        f"http://127.0.0.1:{_closed_port()}/refused",
        f"https://{site}/tls",
        "http://no-such-host.invalid/",
    ]
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _reasons(report: list[dict[str, object]]) -> dict[str, str]:
    return {str(r["url"]).rsplit("/", 1)[-1] or "dns": str(r["reason"]) for r in report}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baozi", "monitor", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_report(report: list[dict[str, object]]) -> None:
    reasons = _reasons(report)
    assert reasons["ok"] == "ok"
    assert reasons["missing"] == "HTTP 404 (expected 200)"
    assert reasons["error"] == "HTTP 500 (expected 200)"
    assert reasons["hang"] == "timed out after 1s"
    assert reasons["moved"] == "redirect (302) to /ok"
    assert reasons["refused"] == "connection refused"
    assert reasons["tls"].startswith("TLS error")
    assert reasons["dns"].startswith("DNS lookup failed")
    assert [r["ok"] for r in report] == [True] + [False] * 7


def test_the_monitor_reports_each_kind_of_failure_and_exits_non_zero(
    urls: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    done = _run(str(urls), "--timeout", "1", "-c", "50", "--json", str(out))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    _check_report(json.loads(out.read_text()))
    assert "FAILED" in done.stdout and "1 ok, 7 failed, of 8" in done.stdout


def test_all_ok_exits_zero_with_json_on_stdout(site: str, tmp_path: Path) -> None:
    path = tmp_path / "good.txt"
    path.write_text(f"http://{site}/ok\n" * 20)
    done = _run(str(path), "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report) == 20 and all(r["status"] == 200 for r in report)


def test_json_to_stdout_keeps_the_table_off_stdout(site: str, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(f"http://{site}/ok\nhttp://{site}/missing\n")
    done = _run(str(path), "--json", "-")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)  # nothing but the JSON: it pipes into jq
    assert [r["status"] for r in report] == [200, 404]
    assert "1 ok, 1 failed, of 2" in done.stderr and "FAILED" in done.stderr


@pytest.mark.parametrize("pool", ["thread", "gevent"])
def test_via_queue_gives_the_same_report(
    urls: Path, shared_url: str, tmp_path: Path, pool: str
) -> None:
    if pool == "gevent":
        pytest.importorskip("gevent")
    env = {**os.environ, "BAOZI_URL": shared_url}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baozi",
            "worker",
            "baozi.monitor:app",
            "-q",
            "-c",
            "20",
            "-P",
            pool,
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        out = tmp_path / "report.json"
        done = _run(
            str(urls),
            "--via-queue",
            "--timeout",
            "1",
            "--json",
            str(out),
            env={"BAOZI_URL": shared_url},
        )
        assert done.returncode == 1, done.stderr
        _check_report(json.loads(out.read_text()))
    finally:
        worker.terminate()
        assert worker.wait(30) == 0
