"""The stores baozi wrote before layouts carried a version (tests/fixtures/make_old_stores.py),
copied or written back for a test, and what that baozi read back from them."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from baozi.backends import open_store

from .conftest import REDIS_URL, drop_redis_prefix, fresh_prefix, redis_or_skip
from .fixtures.make_old_stores import HERE, dump_keys, read_back, restore_keys

__all__ = ["IDS", "READ", "old_store", "read", "redis_client", "state"]

_EXPECTED: dict[str, Any] = json.loads((HERE / "expected.json").read_text())
IDS: dict[str, dict[str, str]] = {kind: _EXPECTED[kind]["ids"] for kind in ("sqlite", "redis")}
"""Per store: the jobs' ids by what they are."""
READ: dict[str, Any] = {kind: _EXPECTED[kind]["read"] for kind in ("sqlite", "redis")}
"""Per store: what the baozi that wrote it read back."""
ADDED_TO_RECORDS = {
    "unique_key": None,
    "parents": [],
    "children": [],
    "on_dependency_failure": "cancel",
}
"""What the contract has read since that baozi, in every record of one of its jobs."""
ADDED_TO_COUNTS = {"waiting": 0}
"""What the contract has counted since, in each queue of such a store (and in its jobs)."""


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


@contextmanager
def old_store(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a copy of the old ``kind`` store ("sqlite" or "redis"), removed afterwards."""
    if kind == "sqlite":
        path = tmp_path / "old.db"
        shutil.copyfile(HERE / "store.db", path)
        yield f"sqlite:///{path}"
        return
    redis_or_skip()
    prefix = fresh_prefix()
    client = redis_client()
    try:
        restore_keys(client, json.loads((HERE / "redis.json").read_text()), prefix)
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        client.close()
        drop_redis_prefix(prefix)


def state(url: str) -> Any:
    """Everything the store holds, as stored: an SQLite file's rows, or a Redis prefix's keys."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return list(conn.iterdump())
        finally:
            conn.close()
    client = redis_client()
    try:
        return dump_keys(client, url.rsplit("prefix=", 1)[1])
    finally:
        client.close()


def read(url: str, kind: str) -> Any:
    """What this baozi reads back from the old ``kind`` store at ``url``, as :data:`READ` has it:
    the fields the contract has gained since are left out, once checked to read as they must
    for the store's jobs and queues (no unique keys, no dependencies, none waiting)."""
    with open_store(url) as store:
        got = read_back(store, IDS[kind])
    for record in got["jobs"].values():
        _leave_out(record, ADDED_TO_RECORDS)
        due = record.pop("due_at")  # added since too: a scheduled job's, decades ahead
        assert (due is not None and due > time.time() + 3e8) == (record["status"] == "scheduled")
        # Added since as well: the running job's lease owner; no other run ended where a layout
        # kept its owner.
        running = record["status"] == "running"
        assert record.pop("worker") == ("gone-worker" if running else None)
    for queue in got["queues"].values():
        _leave_out(queue["counts"], ADDED_TO_COUNTS)
        _leave_out(queue["jobs"], ADDED_TO_COUNTS)
    for ns, entries in got["kv"].items():
        if ns.startswith("dict:"):  # each Dict entry now starts with its key (str keys here)
            for key, record in entries.items():
                head, _, entries[key] = record.partition("\n")
                assert head == key, f"{ns} {key} reads {record!r}"
    return got


def _leave_out(read: dict[str, Any], added: dict[str, Any]) -> None:
    for key, value in added.items():
        held = read.pop(key)
        assert held == value, f"{key} reads {held!r}, not {value!r}"
