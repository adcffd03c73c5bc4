"""The monitor's pieces: processes x coroutines (Split) and the async task's per-loop session."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection

import pytest

from baozi.monitor import Check, _aio, _split, check_split
from baozi.monitor._local import Client
from baozi.monitor._split import shares
from baozi.pools.aio import AsyncPool
from baozi.pools.base import Call


class _Status(BaseHTTPRequestHandler):
    """Answers the status its path names: /404 answers 404; anything else 200."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real sites do

    def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
        name = self.path.partition("?")[0].strip("/")
        code = int(name) if name.isdigit() else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("total", "parts"), [(10, 3), (3, 5), (0, 2), (7, 1), (1000, 2)])
def test_shares_deal_everything_once_evenly_and_none_is_empty(total: int, parts: int) -> None:
    ranges = shares(total, parts)
    assert sorted(i for r in ranges for i in r) == list(range(total))
    assert len(ranges) == max(1, min(parts, total))
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert total == 0 or min(sizes) >= 1


@pytest.mark.parametrize("client", ["gevent", "aiohttp"])
def test_split_results_come_in_input_order_and_each_is_reported_once(
    site: str, client: Client
) -> None:
    if client == "gevent":
        pytest.importorskip("geventhttpclient")
    urls = [f"{site}/{200 if i % 3 else 404}?n={i}" for i in range(60)]
    seen: list[str] = []
    results = check_split(urls, 200, 10.0, 8, 3, lambda check: seen.append(check.url), client)
    assert [r.url for r in results] == urls
    assert sorted(seen) == sorted(urls)  # on_done once per URL, whichever process checked it
    assert [r.status for r in results] == [200 if i % 3 else 404 for i in range(60)]
    assert [r.ok for r in results] == [bool(i % 3) for i in range(60)]


def _dies_after_one(
    urls: list[str],
    where: range,
    expect: int,
    timeout: float,
    concurrency: int,
    pipe: Connection,
    client: str,
) -> None:
    pipe.send([(where[0], True, 200, 0.0, "ok")])
    pipe.close()
    os._exit(3)


def test_a_child_that_dies_leaves_its_unchecked_urls_failed_with_the_reason(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_split, "_child", _dies_after_one)  # forked children run this one
    urls = [f"{site}/200?n={i}" for i in range(6)]
    reported: list[Check] = []
    results = check_split(urls, 200, 5.0, 4, 2, reported.append)
    assert [r.ok for r in results] == [True, True, False, False, False, False]  # 0 and 1 first
    died = [r for r in results if not r.ok]
    assert all(r.reason == "its checking process died (exit code 3)" for r in died)
    assert len(reported) == 6


def test_the_async_task_closes_its_session_when_a_one_call_loop_ends(
    site: str, caplog: pytest.LogCaptureFixture
) -> None:
    # What the thread pool does with an async task: asyncio.run, one loop per call.
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert asyncio.run(_aio.check_url(f"{site}/200"))["ok"] is True
        gc.collect()
    assert not _aio._sessions and not _aio._holders
    assert not [r for r in caplog.records if "nclosed" in r.getMessage()]


def test_a_long_lived_loop_keeps_one_session_for_every_check(site: str) -> None:
    async def three() -> set[int]:
        ids = set()
        for _ in range(3):
            await _aio.check_url(f"{site}/200")
            ids.add(id(_aio._sessions[asyncio.get_running_loop()]))
        return ids

    assert len(asyncio.run(three())) == 1


def test_closing_the_async_pool_finalises_async_generators_its_tasks_left_open() -> None:
    closed = threading.Event()

    async def holder() -> object:
        try:
            yield
        finally:
            closed.set()

    async def start_one() -> None:
        gen = holder()
        await anext(gen)
        _kept.append(gen)  # suspended, as the monitor's session holder is

    pool = AsyncPool(2)
    pool.submit(Call(start_one, (), {})).result(timeout=30)
    assert not closed.is_set()
    pool.close()
    assert closed.is_set()


_kept: list[object] = []


def test_the_gevent_check_keeps_clients_for_the_most_recent_hosts_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    green = pytest.importorskip("baozi.monitor._green")
    from geventhttpclient.url import URL

    monkeypatch.setattr(green, "HOSTS", 2)
    monkeypatch.setattr(green, "_clients", type(green._clients)())
    a, b, c = (URL(f"http://127.0.0.1:{port}/") for port in (1, 2, 3))
    first = green._client(a, 5.0)
    green._client(b, 5.0)
    assert green._client(a, 5.0) is first  # used again: now the most recent
    green._client(c, 5.0)  # one too many: b, the least recent, goes
    assert [key[2] for key in green._clients] == [1, 3]


class _Pool:
    """A stand-in for geventhttpclient's connection pool: counts its lookups."""

    def __init__(self, fail: bool = False) -> None:
        self.lookups = 0
        self.fail = fail

    def _resolve(self) -> list[str]:
        import gevent

        self.lookups += 1
        gevent.sleep(0.01)  # a lookup takes a while: others ask meanwhile
        if self.fail:
            raise OSError(-2, "Name or service not known")
        return ["127.0.0.1"]


def test_the_gevent_check_shares_one_dns_lookup_among_new_connections() -> None:
    green = pytest.importorskip("baozi.monitor._green")
    import gevent

    client = type("Client", (), {})()
    client._connection_pool = _Pool()
    green._share_lookups(client)
    many = [gevent.spawn(client._connection_pool._resolve) for _ in range(50)]
    gevent.joinall(many, raise_error=True)
    assert [g.value for g in many] == [["127.0.0.1"]] * 50
    assert client._connection_pool.lookups == 1
    client._connection_pool._resolve()
    assert client._connection_pool.lookups == 1  # kept for DNS_TTL seconds


def test_a_failed_dns_lookup_fails_its_waiters_and_is_not_kept() -> None:
    green = pytest.importorskip("baozi.monitor._green")
    import gevent

    client = type("Client", (), {})()
    client._connection_pool = _Pool(fail=True)
    green._share_lookups(client)
    many = [gevent.spawn(client._connection_pool._resolve) for _ in range(5)]
    gevent.joinall(many)
    assert all(isinstance(g.exception, OSError) for g in many)
    assert client._connection_pool.lookups == 1
    with pytest.raises(OSError):
        client._connection_pool._resolve()
    assert client._connection_pool.lookups == 2  # a failure is not kept: the next one asks again
