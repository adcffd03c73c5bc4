"""Store fixtures: every queue test runs on every store baozi has."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baozi import App
from baozi.backends import open_store
from baozi.backends.base import Store

from ._redisserver import PrivateRedis

STORES = ["memory", "sqlite", "redis"]
SHARED_STORES = ["sqlite", "redis"]  # stores that other processes can open

REDIS_URL = os.environ.get("BAOZI_TEST_REDIS", "redis://127.0.0.1:6379/15")
"""The Redis server and database the tests use; each test works under its own key prefix."""

RUN = os.environ.setdefault("BAOZI_TEST_RUN", uuid.uuid4().hex[:8])
"""This test run's mark in every key prefix. Set in the controlling process before pytest-xdist
starts its workers, which inherit it, so that the end of the run can find whatever any test left."""


def fresh_prefix() -> str:
    """A Redis key prefix no other test (nor another run sharing the database) uses."""
    return f"test-{RUN}-{uuid.uuid4().hex[:12]}"


def _redis_keys(pattern: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def redis_or_skip() -> None:
    """Skip (or, under CI, fail) a test when the test Redis server does not answer."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        reason = f"no Redis at {REDIS_URL} ({exc}); set BAOZI_TEST_REDIS or start redis-server"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def drop_redis_prefix(prefix: str) -> None:
    """Remove every key of a test's store, and check that none comes back: a key written after
    this (by a worker or a connection the test left running) is a leak the test must fix."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])
    client.close()
    left = _redis_keys(f"{prefix}:*")
    assert not left, f"keys written under {prefix} after the test ended: {left[:5]}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """At the end of the run (in the controlling process under xdist): no test left a key behind.
    Whatever is found is removed, and the run fails naming it."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller checks once every worker has finished
    try:
        left = _redis_keys(f"test-{RUN}-*")
    except Exception:  # noqa: BLE001 -- no Redis: the Redis tests were skipped, nothing to check
        return
    if not left:
        return
    for prefix in sorted({key.split(b":", 1)[0].decode() for key in left}):
        drop_redis_prefix(prefix)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "Redis keys left behind", red=True)
        reporter.write_line(f"the tests left {len(left)} Redis key(s), now removed: {left[:5]}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def make_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if kind == "redis":
        redis_or_skip()
        return f"{REDIS_URL}?prefix={fresh_prefix()}"
    raise AssertionError(kind)


def _fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = make_url(request.param, tmp_path)
    yield url
    if request.param == "redis":
        drop_redis_prefix(url.rsplit("prefix=", 1)[1])


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL for each kind of store."""
    yield from _fresh(request, tmp_path)


@pytest.fixture(params=SHARED_STORES)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL that several processes can share."""
    yield from _fresh(request, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = open_store(url)
    yield s
    s.close()


# -- the web tests' app and client (used by more than one test_web_* module) -----------------


@pytest.fixture
def app(url: str) -> App:
    """The web tests' app on each store (a module with an ``app`` fixture of its own uses that)."""
    from ._web import make_app

    return make_app(url)


@pytest.fixture
def client(app: App) -> Iterator[httpx.Client]:
    """An HTTP client of the app, served by uvicorn on loopback."""
    from ._web import served

    with served(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http


@pytest.fixture
def memory_app() -> App:
    """The web tests' app on a fresh memory store: for checks made before any store call."""
    from ._web import make_app

    return make_app(f"memory://{uuid.uuid4().hex}")


@pytest.fixture
def memory_client(memory_app: App) -> Iterator[httpx.Client]:
    from ._web import served

    with served(memory_app) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the slow soak tests out unless they are asked for (``-m slow``), as the marker says."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run it with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()
