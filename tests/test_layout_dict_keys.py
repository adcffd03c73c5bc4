"""The layout step that brings baozi.Dict keys to their canonical text (SQLite 4 -> 5, Redis
2 -> 3, PostgreSQL 2 -> 3): a store written by the layout before, whose Dicts keep each key as
``json.dumps(key)``, opens with every entry readable through its key, keys now equal merged
with the one whose old text sorts first kept, and nothing else changed."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import baozi
from baozi.backends import open_store
from baozi.backends.postgres import _layout as pg_layout
from baozi.backends.redis import _layout as redis_layout
from baozi.backends.sqlite import _layout as sqlite_layout
from baozi.serialize import get_serializer

from ._oldstores import redis_client
from .conftest import (
    POSTGRES_URL,
    REDIS_URL,
    drop_postgres_schema,
    drop_redis_prefix,
    fresh_prefix,
    fresh_schema,
    postgres_or_skip,
    redis_or_skip,
)

CODEC = get_serializer("json")
PREVIOUS = {"sqlite": 4, "redis": 2, "postgres": 2}
LATEST = {"sqlite": 8, "redis": 5, "postgres": 5}  # later: the line's stretches, marks, worker
"""The layout before the step, per store."""

OLD_KEYS: list[Any] = [
    1, 1.0, True, 0, False, -0.0, 2.5, "a", "1", "\u00e9", None, 2**53 + 1, float(2**53 + 1),
    10**30, float("inf"), float("nan"), "true",
]  # fmt: skip
"""Keys an older Dict took: str, int, float, bool, None (NaN too)."""


def _old(keys: list[Any]) -> dict[str, bytes]:
    """A layout-before Dict's entries: json.dumps(key) -> its value, here the key's place."""
    return {json.dumps(k): CODEC.dumps(i) for i, k in enumerate(keys)}


SPACES = {
    "dict:mixed": _old(OLD_KEYS),
    "dict:plain": _old(["x", "y", 7]),
    "dict:": _old([1.0]),
    "baozi.event": {"1.0": b"kept", "true": b"as it is"},  # no Dict's: left alone
}


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store at the layout before the step, holding :data:`SPACES`, never opened by this
    process's baozi."""
    kind = request.param
    if kind == "sqlite":
        yield _sqlite(tmp_path / "old.db")
    elif kind == "redis":
        redis_or_skip()
        prefix = fresh_prefix()
        _redis(prefix)
        yield f"{REDIS_URL}?prefix={prefix}"
        drop_redis_prefix(prefix)
    else:
        postgres_or_skip()
        schema = fresh_schema()
        _postgres(schema)
        yield f"{POSTGRES_URL}?schema={schema}"
        drop_postgres_schema(schema)


def _sqlite(path: Path) -> str:
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_layout._run_script(conn, sqlite_layout.SCHEMA)  # layout 5 adds no table to 4
    conn.execute("INSERT INTO baozi_meta VALUES ('schema', '4')")
    for ns, entries in SPACES.items():
        conn.executemany(
            "INSERT INTO baozi_kv VALUES (?, ?, ?)", [(ns, *e) for e in entries.items()]
        )
    conn.close()
    return f"sqlite:///{path}"


def _redis(prefix: str) -> None:
    client = redis_client()
    try:
        client.set(f"{prefix}:layout", "2")
        for ns, entries in SPACES.items():
            client.hset(f"{prefix}:kv:{ns}", mapping=entries)  # type: ignore[arg-type]
        client.set(f"{prefix}:kv:dict:not-a-hash", "left alone")
    finally:
        client.close()


def _postgres(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL) as conn:
        pg_layout.create(conn, schema, POSTGRES_URL)  # layout 3 adds no table to 2
        with conn.transaction():
            conn.execute(f"UPDATE \"{schema}\".meta SET value = '2' WHERE key = 'layout'")
            for ns, entries in SPACES.items():
                for key, value in entries.items():
                    conn.execute(f'INSERT INTO "{schema}".kv VALUES (%s, %s, %s)', (ns, key, value))


def _layout(url: str) -> int:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(
                conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()[0]
            )
        finally:
            conn.close()
    if url.startswith("redis"):
        client = redis_client()
        try:
            return int(client.get(f"{url.rsplit('prefix=', 1)[1]}:layout"))
        finally:
            client.close()
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute(f"SELECT value FROM \"{schema}\".meta WHERE key = 'layout'").fetchone()
        assert row is not None
        return int(row[0])


def test_each_store_has_the_step(old_url: str) -> None:
    assert sqlite_layout.latest() == 8 and redis_layout.latest() == 5 and pg_layout.latest() == 5
    assert _layout(old_url) == PREVIOUS[_kind(old_url)]


def test_old_dict_keys_merge_into_canonical_keys_keeping_the_first_old_text(old_url: str) -> None:
    d = baozi.Dict("mixed", url=old_url)
    place = {json.dumps(k): i for i, k in enumerate(OLD_KEYS)}
    # 1, 1.0, true: "1" sorts first; 0, false, -0.0: "-0.0" does.
    assert type(d.keys()[d.keys().index(1)]) is int
    assert d[1.0] == d[True] == d[1] == place["1"]
    assert d[0] == d[False] == place["-0.0"]
    zero = [k for k in d.keys() if k == 0]
    assert len(zero) == 1 and isinstance(zero[0], float) and math.copysign(1, zero[0]) == -1
    assert d[2**53 + 1] == place[json.dumps(2**53 + 1)]
    assert d[float(2**53 + 1)] == place[json.dumps(float(2**53 + 1))]
    assert d[10**30] == place[json.dumps(10**30)] and d[float("inf")] == place["Infinity"]
    assert d["a"] == place['"a"'] and d["1"] == place['"1"'] and d["\u00e9"] == place['"\\u00e9"']
    assert d[None] == place["null"] and d[2.5] == place["2.5"] and d["true"] == place['"true"']
    nans = [k for k in d.keys() if isinstance(k, float) and math.isnan(k)]
    assert len(nans) == 1  # kept: keys(), items() and popitem() reach it
    # 17 old keys: 1.0 and true merged into 1, false and 0 into -0.0.
    assert len(d) == len(d.items()) == len(OLD_KEYS) - 4
    assert _layout(old_url) == LATEST[_kind(old_url)]


def test_the_other_dicts_and_namespaces_read_as_before(old_url: str) -> None:
    assert baozi.Dict("plain", url=old_url).copy() == {"x": 0, "y": 1, 7: 2}
    with open_store(old_url) as store:
        assert store.kv_items("baozi.event") == SPACES["baozi.event"]
        assert store.kv_items("dict:") == {"1": b"1.0\n0"}
    if _kind(old_url) == "redis":  # a key of a Dict's name that is no hash is left alone
        client = redis_client()
        try:
            key = f"{old_url.rsplit('prefix=', 1)[1]}:kv:dict:not-a-hash"
            assert client.get(key) == b"left alone"
        finally:
            client.close()


def test_a_migrated_dict_keeps_its_first_keys_and_counts_on(old_url: str) -> None:
    d = baozi.Dict("mixed", url=old_url)
    d[1.0] = "new"
    d.incr(True + 1)  # a new key
    d.incr(2.0)
    assert d[1] == "new" and d[2] == 2
    assert 1 in d.keys() and type(d.keys()[d.keys().index(1)]) is int


def _kind(url: str) -> str:
    return (
        "sqlite" if url.startswith("sqlite") else "redis" if url.startswith("redis") else "postgres"
    )


def test_a_redis_step_asks_again_for_keys_written_while_it_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_or_skip()
    prefix = fresh_prefix()
    _redis(prefix)
    step = redis_layout.MIGRATIONS[2]
    assert isinstance(step, redis_layout.Prepared)
    asked: list[str] = []

    def answer(old: str) -> str:
        if not asked:  # an older baozi writes a new key between the two runs of the script
            client = redis_client()
            client.hset(f"{prefix}:kv:dict:late", "2.0", b'"late"')
            client.close()
        asked.append(old)
        return step.answer(old)

    monkeypatch.setitem(redis_layout.MIGRATIONS, 2, redis_layout.Prepared(step.body, answer))
    try:
        url = f"{REDIS_URL}?prefix={prefix}"
        assert baozi.Dict("late", url=url).items() == [(2.0, "late")]
        assert asked.count("2.0") == 1 and asked.count("1.0") == 1  # each asked about once
        assert baozi.Dict("mixed", url=url)[True] == OLD_KEYS.index(1)
        assert _layout(url) == redis_layout.latest()
    finally:
        drop_redis_prefix(prefix)
