"""Edges of the queue interface: bounds shared by every handle, bad input, undecodable items,
forks, long-lived processes with many threads, and waits that must not spin."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import queue as stdlib_queue
import shutil
import sqlite3
import subprocess
import threading
import time
import zoneinfo
from pathlib import Path

import pytest

from baozi import Deque, NotABaoziStore, Queue, StoreError, UndecodableItem

from . import _procs
from ._helpers import abandon

spawn = multiprocessing.get_context("spawn")
FORKED_HANDLE: Queue | None = None


def test_get_many_takes_its_timeout_positionally(url: str) -> None:
    with Queue("q", url=url) as q:
        start = time.monotonic()
        with pytest.raises(stdlib_queue.Empty):
            q.get_many(5, 0.2)
        assert time.monotonic() - start < 5


def test_a_handle_without_maxsize_adopts_the_queues_bound(url: str) -> None:
    with Queue("q", maxsize=2, url=url) as bounded, Queue("q", url=url) as plain:
        assert plain.maxsize == 2
        bounded.put(1)
        plain.put(2)
        with pytest.raises(stdlib_queue.Full):
            plain.put_nowait(3)
        assert plain.full()


def test_a_deque_without_maxlen_adopts_the_deques_bound(url: str) -> None:
    with Deque("d", maxlen=2, url=url) as bounded, Deque("d", url=url) as plain:
        assert plain.maxlen == 2
        plain.extend([1, 2, 3, 4])
        assert list(bounded) == [3, 4]


def test_maxsize_holds_across_processes(shared_url: str, tmp_path: Path) -> None:
    Queue("bounded", maxsize=5, url=shared_url).close()
    outs = [tmp_path / f"{i}.json" for i in range(8)]
    procs = [
        spawn.Process(target=_procs.try_put, args=(shared_url, i, str(o)))
        for i, o in enumerate(outs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(json.loads(o.read_text()) for o in outs) == 5
    with Queue("bounded", url=shared_url) as q:
        assert q.qsize() == 5


def test_join_waits_for_items_another_process_consumes(shared_url: str) -> None:
    with Queue("work", url=shared_url) as q:
        q.put_many(range(5))
        child = spawn.Process(target=_procs.consume_all_slowly, args=(shared_url, 5))
        child.start()
        q.join()
        assert q.qsize() == 0 and q._store.counts("work").total == 0
        child.join(30)


def test_a_non_blocking_get_ignores_its_timeout_like_the_stdlib(url: str) -> None:
    with Queue("q", url=url) as q:
        with pytest.raises(stdlib_queue.Empty):
            q.get(False, -1)
        with pytest.raises(stdlib_queue.Empty):
            q.get_nowait()


def test_negative_timeouts_are_refused_everywhere_and_nothing_is_lost(url: str) -> None:
    with Queue("q", url=url) as q, Deque("d", url=url) as d:
        q.put_many(["kept", "also kept"])
        d.append("in deque")
        with pytest.raises(ValueError):
            with q.reserve(timeout=-1):
                pass
        with pytest.raises(ValueError):
            q.get_many(2, -1)
        with pytest.raises(ValueError):
            d.pop(block=True, timeout=-1)
        assert q.get_many(5) == ["kept", "also kept"] and list(d) == ["in deque"]


@pytest.mark.parametrize("count", [0, -5, 1.5, True])
def test_task_done_needs_a_positive_count(url: str, count: object) -> None:
    with Queue("q", url=url) as q:
        q.put(1)
        q.get()
        with pytest.raises(ValueError, match="count"):
            q.task_done(count)  # type: ignore[arg-type]


def test_an_item_the_serializer_cannot_read_is_moved_aside_and_the_rest_flows(url: str) -> None:
    with Queue("q", url=url, serializer="pickle") as writer:
        writer.put({1, 2})
    with Queue("q", url=url) as reader:
        reader.put("next")
        with pytest.raises(UndecodableItem, match="q.undecodable"):
            reader.get()
        assert reader.get(timeout=1) == "next"
    with Queue("q.undecodable", url=url, serializer="pickle") as aside:
        assert aside.get() == {1, 2}


def test_a_deque_item_that_cannot_be_read_is_left_in_place(url: str) -> None:
    with Deque("d", url=url, serializer="pickle") as writer:
        writer.extend([{1}, {2}])
    with Deque("d", url=url) as reader:
        with pytest.raises(UndecodableItem):
            reader.popleft()
        with pytest.raises(ValueError):
            reader.pop()
        assert len(reader) == 2
    with Deque("d", url=url, serializer="pickle") as writer:
        assert list(writer) == [{1}, {2}]


def test_a_datetime_whose_zone_has_no_name_is_refused_at_put(url: str, tmp_path: Path) -> None:
    source = Path(zoneinfo.TZPATH[0]) / "Europe" / "Paris" if zoneinfo.TZPATH else None
    if source is None or not source.exists():
        pytest.skip("no tz database file to load a zone from")
    with open(source, "rb") as f:
        zone = zoneinfo.ZoneInfo.from_file(f)
    with Queue("q", url=url) as q:
        with pytest.raises(TypeError, match="ZoneInfo"):
            q.put(dt.datetime(2024, 1, 1, tzinfo=zone))
        assert q.qsize() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cannot_acknowledge_its_parents_items(
    shared_url: str, tmp_path: Path
) -> None:
    global FORKED_HANDLE
    out = tmp_path / "out.json"
    with Queue("work", url=shared_url) as q:
        q.put("parent's")
        q.get()
        FORKED_HANDLE = q
        child = multiprocessing.get_context("fork").Process(
            target=_procs.task_done_in_child, args=(shared_url, str(out))
        )
        child.start()
        child.join(30)
        assert json.loads(out.read_text()).startswith("ValueError")
        q.task_done()  # the parent still holds it
        assert q._store.counts("work").total == 0
    FORKED_HANDLE = None


def test_short_lived_threads_do_not_leak_connections(tmp_path: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.exists():
        pytest.skip("needs /proc")
    with Queue("q", url=f"sqlite:///{tmp_path}/q.db") as q:
        q.put("warm up")
        before = len(list(fds.iterdir()))
        for i in range(200):
            t = threading.Thread(target=q.put, args=(i,))
            t.start()
            t.join()
        assert len(list(fds.iterdir())) - before < 20
        assert q.qsize() == 201


def test_a_blocked_put_does_not_spin_on_an_expired_lease(url: str) -> None:
    with Queue("q", maxsize=1, url=url, lease=0.1) as dead, Queue("q", url=url) as producer:
        dead.put("held")
        dead.get()
        abandon(dead)  # its consumer died: the lease runs out and the item counts again
        time.sleep(0.3)
        attempts = 0
        push = producer._store.push

        def counting_push(*args: object, **kwargs: object) -> list[str]:
            nonlocal attempts
            attempts += 1
            return push(*args, **kwargs)  # type: ignore[arg-type]

        producer._store.push = counting_push  # type: ignore[method-assign]
        with pytest.raises(stdlib_queue.Full):
            producer.put("more", timeout=1.0)
        assert attempts < 20


def test_a_database_with_only_views_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "views.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW v AS SELECT 1 AS one")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotABaoziStore, match="views"):
        Queue(url=f"sqlite:///{path}")
    assert path.read_bytes() == before


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_a_store_that_became_read_only_raises_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with Queue("q", url=f"sqlite:///{path}") as q:
        q.put("kept")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        with pytest.raises(StoreError):
            with Queue("other", url=f"sqlite:///{path}") as q:
                q.put("x")
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    with Queue("q", url=f"sqlite:///{path}") as q:
        assert q.get() == "kept"


def test_an_int_enum_priority_is_stored_as_its_number(url: str) -> None:
    import enum

    from baozi import App

    class Level(enum.IntEnum):
        HIGH = 1
        LOW = 5

    app = App(url)
    add = app.task(name="add")(lambda a, b: a + b)
    low = add.apply_async((1, 2), priority=Level.LOW)
    high = add.apply_async((3, 4), priority=Level.HIGH)
    assert [i.priority for i in app.store.snapshot("default")] == [1, 5]
    assert high.position() == 0 and low.position() == 1
    assert low.record().priority == 5
