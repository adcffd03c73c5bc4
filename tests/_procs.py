"""Functions run in child processes by the multi-process tests (importable, so spawn can find them)."""

from __future__ import annotations

import json
import os
import queue as stdlib_queue
import time
from pathlib import Path

from baozi import Queue


def produce(url: str, start: int, count: int) -> None:
    with Queue("work", url=url) as q:
        for i in range(start, start + count):
            q.put(i)


def consume_until_stop(url: str, out: str) -> None:
    got = []
    with Queue("work", url=url) as q:
        while True:
            item = q.get(timeout=60)
            q.task_done()
            if item == "STOP":
                break
            got.append(item)
    Path(out).write_text(json.dumps(got))


def hold_one_item_forever(url: str, lease: float, ready: str) -> None:
    q = Queue("work", url=url, lease=lease)
    item = q.get(timeout=30)
    Path(ready).write_text(json.dumps(item))
    time.sleep(3600)  # killed with SIGKILL before this ends


def put_then_wait(url: str, count: int, ready: str) -> None:
    q = Queue("work", url=url)
    q.put_many(range(count))
    for i in range(count, count + 10):
        q.put(i)
    Path(ready).write_text("done")
    time.sleep(3600)


def put_after(url: str, delay: float, item: object) -> None:
    time.sleep(delay)
    with Queue("work", url=url) as q:
        q.put(item)


def get_one(url: str, out: str) -> None:
    with Queue("work", url=url) as q:
        try:
            item = q.get(timeout=30)
            q.task_done()
        except stdlib_queue.Empty:
            item = "EMPTY"
    Path(out).write_text(json.dumps([item, os.getpid()]))


def try_put(url: str, item: object, out: str) -> None:
    """One non-blocking put into a bounded queue; record whether it went in."""
    with Queue("bounded", url=url) as q:
        try:
            q.put_nowait(item)
            ok = True
        except stdlib_queue.Full:
            ok = False
    Path(out).write_text(json.dumps(ok))


def consume_all_slowly(url: str, count: int) -> None:
    with Queue("work", url=url) as q:
        for _ in range(count):
            q.get(timeout=30)
            time.sleep(0.05)
            q.task_done()


def task_done_in_child(url: str, out: str) -> None:
    """Runs in a forked child whose parent holds an item through the same handle object."""
    from . import test_queue_edges

    q = test_queue_edges.FORKED_HANDLE
    try:
        q.task_done()
        result = "acknowledged"
    except ValueError as exc:
        result = f"ValueError: {exc}"
    Path(out).write_text(json.dumps(result))
