"""``baozi monitor`` against a local server: every kind of failure is a reason, never a trace."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that timed out (the /hang check) closes first: the late answer's broken
        # pipe is expected, not a traceback to print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def untrusted_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server whose certificate no one signed: the client must refuse it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def urls(site: str, untrusted_site: str, tmp_path: Path) -> Path:
    lines = [
        "# one of each",
        f"http://{site}/ok",
        f"http://{site}/missing",
        f"http://{site}/error",
        f"http://{site}/hang",
        f"http://{site}/moved",
        f"http://127.0.0.1:{_closed_port()}/refused",
        f"https://{site}/tls",
        f"https://{untrusted_site}/untrusted",
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
    assert reasons["tls"].startswith("TLS error")  # https to a server that speaks plain HTTP
    assert reasons["untrusted"].startswith("TLS error")
    assert "certificate" in reasons["untrusted"].lower()  # a self-signed one, not trusted
    assert reasons["dns"].startswith("DNS lookup failed")
    assert [r["ok"] for r in report] == [True] + [False] * 8


@pytest.mark.parametrize("client", ["gevent", "aiohttp"])
@pytest.mark.parametrize("processes", ["1", "2", "3"])
def test_the_monitor_reports_each_kind_of_failure_and_exits_non_zero(
    urls: Path, tmp_path: Path, processes: str, client: str
) -> None:
    if client == "gevent":
        pytest.importorskip("geventhttpclient")
    out = tmp_path / "report.json"
    args = ["--timeout", "1", "-c", "50", "-p", processes, "--client", client]
    done = _run(str(urls), *args, "--json", str(out))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    _check_report(json.loads(out.read_text()))  # one document, in the file's order
    assert "FAILED" in done.stdout and "1 ok, 8 failed, of 9" in done.stdout
    assert len(re.findall(r"\bFAILED\b", done.stdout)) == 8  # one table, every row once


def test_auto_chooses_gevent_where_it_is_installed_else_aiohttp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from baozi.monitor import _local

    assert _local.choose("aiohttp") == "aiohttp" and _local.choose("gevent") == "gevent"
    with pytest.raises(ValueError, match="no monitor client"):
        _local.choose("curl")
    monkeypatch.setattr(_local, "find_spec", lambda name: None)  # nothing but aiohttp installed
    assert _local.choose() == "aiohttp"
    if _installed("gevent") and _installed("geventhttpclient"):
        monkeypatch.undo()
        assert _local.choose() == "gevent"


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def test_all_ok_exits_zero_with_json_on_stdout(site: str, tmp_path: Path) -> None:
    path = tmp_path / "good.txt"
    path.write_text(f"http://{site}/ok\n" * 20)
    done = _run(str(path), "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report) == 20 and all(r["status"] == 200 for r in report)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_json_to_stdout_keeps_the_table_off_stdout(
    site: str, tmp_path: Path, processes: str
) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(f"http://{site}/ok\nhttp://{site}/missing\n" * 3)
    done = _run(str(path), "--json", "-", "-p", processes)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)  # nothing but the JSON: it pipes into jq
    assert done.stdout.lstrip().startswith("[") and done.stdout.rstrip().endswith("]")
    assert [r["status"] for r in report] == [200, 404] * 3
    assert "3 ok, 3 failed, of 6" in done.stderr and "FAILED" in done.stderr


def test_more_processes_than_urls_and_an_empty_list_are_fine(site: str, tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text(f"http://{site}/ok\n")
    done = _run(str(one), "-p", "4", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)] == [200]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing to check\n")
    done = _run(str(empty), "-p", "2", "--json", "-", "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_processes_and_via_queue_do_not_mix(site: str, tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text(f"http://{site}/ok\n")
    done = _run(str(path), "-p", "2", "--via-queue")
    assert done.returncode == 2 and "-p" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("pool", ["thread", "async", "gevent"])
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


def test_brackets_in_a_url_are_shown_as_text(site: str, tmp_path: Path) -> None:
    path = tmp_path / "brackets.txt"
    path.write_text(f"http://{site}/ok?q=[bold]x[/bold]\n")
    done = _run(str(path))
    assert done.returncode == 0, done.stderr
    assert "q=[bold]x[/bold]" in done.stdout.replace("\n", "")
