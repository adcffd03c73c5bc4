"""Helpers for the web tests: a real uvicorn server on a free loopback port, and Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from baozi import App
from baozi.web import create_app
from baozi.web._http import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_CONNECTIONS, protocol


def make_app(url: str) -> App:
    """The app the web tests serve: three tasks and a queue bounded at 2."""
    app = App(url)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="boom")
    def boom(message: str = "no luck") -> None:
        raise ValueError(message)

    @app.task(name="echo")
    def echo(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    app.queue("small", maxsize=2)
    return app


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def loopback_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (handed to the server: no race for the port).
    Made with IPPROTO_TCP named, so that asyncio turns Nagle off on its connections (without
    it, each keep-alive answer waits 40 ms for a delayed ACK)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with loopback_socket() as sock:
        return int(sock.getsockname()[1])


@contextmanager
def served(app: App, *, token: str | None = None, interval: float = 0.2) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread of this process; yield its base URL."""
    with served_asgi(create_app(app, token=token, interval=interval)) as base:
        yield base


@contextmanager
def served_asgi(asgi: Any) -> Iterator[str]:
    """Serve an ASGI application with uvicorn in a thread of this process; yield its base URL."""
    sock = loopback_socket()
    # baozi's own connection handling, as `baozi serve` has it (see baozi.web._http).
    http = protocol(DEFAULT_MAX_CONNECTIONS, DEFAULT_HEAD_TIMEOUT)
    config = uvicorn.Config(asgi, log_level="warning", lifespan="on", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def chromium_or_skip() -> None:
    """Skip a browser test when Chromium is missing; under CI, fail it instead."""
    if shutil.which(CHROMIUM) is None:
        reason = f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's, driven by Playwright); yields the Browser."""
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
