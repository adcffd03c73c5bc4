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

from . import _pgserver, _rabbitserver
from ._pgserver import PrivatePostgres
from ._rabbitserver import PrivateRabbit
from ._redisserver import PrivateRedis

STORES = ["memory", "sqlite", "redis", "postgres"]
SHARED_STORES = ["sqlite", "redis", "postgres"]  # stores that other processes can open

REDIS_URL = os.environ.get("BAOZI_TEST_REDIS", "redis://127.0.0.1:6379/15")
"""The Redis server and database the tests use; each test works under its own key prefix."""

POSTGRES_URL = os.environ.get("BAOZI_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
"""The PostgreSQL database the tests use; each test works in a schema of its own."""

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
        schemas = _postgres_schemas(f"test_{RUN}_%")
    except Exception:  # noqa: BLE001 -- no PostgreSQL: its tests were skipped
        schemas = []
    for schema in schemas:  # the test that made it failed before it could drop it
        drop_postgres_schema(schema)
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


def postgres_or_skip() -> None:
    """Skip (or, under CI, fail) a test when the test PostgreSQL does not answer."""
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001 -- psycopg missing, or no server
        reason = f"no PostgreSQL at {POSTGRES_URL} ({exc}); set BAOZI_TEST_POSTGRES or start it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def fresh_schema() -> str:
    """A PostgreSQL schema name no other test (nor another run sharing the database) uses."""
    return f"test_{RUN}_{uuid.uuid4().hex[:12]}"


def drop_postgres_schema(schema: str, url: str = POSTGRES_URL) -> None:
    """Drop a test's schema and all it holds. A lock the drop cannot get within 60 s (a worker or
    a transaction the test left open) fails the test with that reason, before its timeout."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = '60s'")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _postgres_schemas(pattern: str) -> list[str]:
    import psycopg

    with psycopg.connect(POSTGRES_URL, connect_timeout=2) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)
        ).fetchall()
    return [r[0] for r in rows]


def make_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if kind == "redis":
        redis_or_skip()
        return f"{REDIS_URL}?prefix={fresh_prefix()}"
    if kind == "postgres":
        postgres_or_skip()
        return f"{POSTGRES_URL}?schema={fresh_schema()}"
    raise AssertionError(kind)


def _fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = make_url(request.param, tmp_path)
    yield url
    if request.param == "redis":
        drop_redis_prefix(url.rsplit("prefix=", 1)[1])
    if request.param == "postgres":
        drop_postgres_schema(url.rsplit("schema=", 1)[1])


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


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh Redis store URL with a key prefix of its own, for the tests of Redis alone; its
    keys are dropped after the test."""
    redis_or_skip()
    prefix = fresh_prefix()
    yield f"{REDIS_URL}?prefix={prefix}"
    drop_redis_prefix(prefix)


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


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of the test's own (see tests/_rabbitserver.py), removed after."""
    reason = _rabbitserver.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = PrivateRabbit()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def private_postgres_or_skip() -> None:
    """Skip (or, under CI, fail) a test when no private PostgreSQL cluster can run here."""
    reason = _pgserver.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own (tests/_pgserver.py), to stop, restart and kill;
    killed and removed after the test, however it ends."""
    private_postgres_or_skip()
    with PrivatePostgres() as server:
        yield server
