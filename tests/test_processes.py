"""Queues shared by processes: exactly-once delivery, kill -9, restarts and cross-process wake-ups."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from baozi import Queue

from . import _procs

spawn = multiprocessing.get_context("spawn")


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_four_producers_and_four_consumers_move_10000_items_exactly_once(
    shared_url: str, tmp_path: Path
) -> None:
    producers = [
        spawn.Process(target=_procs.produce, args=(shared_url, i * 2500, 2500)) for i in range(4)
    ]
    outs = [tmp_path / f"consumer{i}.json" for i in range(4)]
    consumers = [
        spawn.Process(target=_procs.consume_until_stop, args=(shared_url, str(o))) for o in outs
    ]
    for p in producers + consumers:
        p.start()
    for p in producers:
        p.join(120)
        assert p.exitcode == 0
    with Queue("work", url=shared_url) as q:
        q.put_many(["STOP"] * 4)
        for p in consumers:
            p.join(120)
            assert p.exitcode == 0
        assert q.qsize() == 0
    got = Counter(x for o in outs for x in json.loads(o.read_text()))
    assert sum(got.values()) == 10_000
    assert set(got) == set(range(10_000))
    assert max(got.values()) == 1
    assert all(json.loads(o.read_text()) for o in outs), "every consumer took part"


def test_an_item_held_by_a_killed_consumer_is_delivered_again(
    shared_url: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    with Queue("work", url=shared_url) as q:
        q.put_many(["first", "second", "third"])
        child = spawn.Process(
            target=_procs.hold_one_item_forever, args=(shared_url, 0.5, str(ready))
        )
        child.start()
        assert json.loads(wait_for_file(ready)) == "first"
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert q.get(timeout=10) == "second"
        assert q.get(timeout=10) == "third"
        assert q.get(timeout=10) == "first"  # back in its place once the lease ran out
        q.task_done(3)
        assert q.qsize() == 0


def test_every_put_that_returned_survives_a_kill_9_of_the_producer(
    shared_url: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    child = spawn.Process(target=_procs.put_then_wait, args=(shared_url, 100, str(ready)))
    child.start()
    wait_for_file(ready)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    with Queue("work", url=shared_url) as q:
        assert q.get_many(1000) == list(range(110))


def test_contents_survive_closing_and_reopening(shared_url: str) -> None:
    with Queue("work", url=shared_url) as q:
        q.put_many([("a", 1), {"b": 2}])
        q.put(3)
    child = spawn.Process(target=_procs.produce, args=(shared_url, 100, 2))
    child.start()
    child.join()
    with Queue("work", url=shared_url) as q:
        assert q.get_many(10) == [("a", 1), {"b": 2}, 3, 100, 101]


def test_a_blocked_get_wakes_when_another_process_puts(shared_url: str) -> None:
    child = spawn.Process(target=_procs.put_after, args=(shared_url, 0.5, "from child"))
    with Queue("work", url=shared_url) as q:
        child.start()
        start = time.monotonic()
        assert q.get(timeout=30) == "from child"
        assert time.monotonic() - start < 25
    child.join()


def test_a_blocked_get_in_another_process_wakes_on_our_put(shared_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    child = spawn.Process(target=_procs.get_one, args=(shared_url, str(out)))
    child.start()
    time.sleep(0.5)
    with Queue("work", url=shared_url) as q:
        q.put({"hello": "child"})
    child.join(30)
    item, pid = json.loads(wait_for_file(out))
    assert item == {"hello": "child"} and pid == child.pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_uses_its_own_connections_and_owner(shared_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with Queue("work", url=shared_url) as q:
        q.put_many(["for parent", "for child"])
        assert q.get() == "for parent"
        fork = multiprocessing.get_context("fork")
        child = fork.Process(target=_procs.get_one, args=(shared_url, str(out)))
        child.start()
        child.join(30)
        assert json.loads(wait_for_file(out))[0] == "for child"
        q.task_done()
        assert q.qsize() == 0


def test_a_forked_child_can_use_its_parents_queue_handle(shared_url: str, tmp_path: Path) -> None:
    out, ready = tmp_path / "out.txt", tmp_path / "ready"

    with Queue("work", url=shared_url) as q:
        q.put_many(["for parent", "for child"])
        assert q.get() == "for parent"
        q.task_done()

        def child() -> None:
            first = q.get(timeout=10)
            q.task_done()
            ready.write_text("1")
            late = q.get(timeout=10)  # blocks until the parent puts: the child is woken
            q.task_done()
            out.write_text(f"{first}|{late}")

        fork = multiprocessing.get_context("fork")
        proc = fork.Process(target=child)
        proc.start()
        wait_for_file(ready)
        time.sleep(0.2)
        q.put("late")
        proc.join(30)
        assert proc.exitcode == 0
        assert out.read_text() == "for child|late"
        assert q.qsize() == 0
