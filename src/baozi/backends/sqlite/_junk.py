"""Junk in an SQLite store: which rows can be read, and moving those that cannot aside, intact.

Anyone who can write the file can write a value of any type into any column (SQLite checks no
types). A row that baozi cannot read is copied, as it is, to a quarantine table beside its own
(``baozi_junk_items``, ``baozi_junk_workers``, ``baozi_junk_queues``, ``baozi_junk_kv``: the same
columns, declared with no type so that nothing is converted, after ``reason`` and ``moved_at``),
deleted from its table, and logged once at ERROR naming the table and the row. The quarantine
tables are made the first time something is moved.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence

log = logging.getLogger("baozi.sqlite")

_NUMBER = "typeof({c}) IN ('integer', 'real')"
_OUTCOME = "('succeeded', 'failed', 'cancelled')"
_UNIQUE_WHILE = "('queued_or_running', 'queued', 'running')"
TEXT_COLUMNS = ("task", "owner", "error", "progress", "unique_key")

CHECKS = [
    ("state is -1, 0, 1, 2 or 3", "typeof(state) = 'integer' AND state IN (-1, 0, 1, 2, 3)"),
    ("payload is a blob", "typeof(payload) = 'blob'"),
    (
        "priority is a number or an encoded one",
        f"({_NUMBER.format(c='priority')} OR (typeof(priority) = 'blob' "
        "AND hex(substr(priority, 1, 1)) IN ('20', '21', '22', '23', '30', '40', '50')))",
    ),
    ("seq is an integer", "typeof(seq) = 'integer'"),
    ("deliveries is a count", "typeof(deliveries) = 'integer' AND deliveries >= 0"),
    ("failures is a count", "typeof(failures) = 'integer' AND failures >= 0"),
    # Each failure was a delivery; more would hide deaths from max_deliveries.
    ("failures are deliveries", "failures <= deliveries"),
    ("a lease or schedule has a due time", f"(state IN (-1, 0, 3) OR {_NUMBER.format(c='due')})"),
    (
        "a waiting job's delay is a time",
        f"(state <> 3 OR due IS NULL OR {_NUMBER.format(c='due')})",
    ),
    ("a waiting job is a job", "(state <> 3 OR task IS NOT NULL)"),
    ("a finished job has an expiry", f"(state <> -1 OR {_NUMBER.format(c='expires_at')})"),
    ("a finished job has an outcome", f"(state <> -1 OR outcome IN {_OUTCOME})"),
    ("outcome is known", f"(outcome IS NULL OR outcome IN {_OUTCOME})"),
    ("a job has a created time", f"(task IS NULL OR {_NUMBER.format(c='created_at')})"),
    *(
        (f"{c} is a number", f"({c} IS NULL OR {_NUMBER.format(c=c)})")
        for c in ("created_at", "started_at", "finished_at")
    ),
    *((f"{c} is text", f"({c} IS NULL OR typeof({c}) = 'text')") for c in TEXT_COLUMNS),
    ("unique_while is known", f"(unique_while IS NULL OR unique_while IN {_UNIQUE_WHILE})"),
    ("unique_for is a number", f"(unique_for IS NULL OR {_NUMBER.format(c='unique_for')})"),
    (
        "a unique key has its terms",
        "(unique_key IS NULL OR (unique_while IS NOT NULL AND unique_for IS NOT NULL))",
    ),
    (
        "on_dep_failure is known",
        "(on_dep_failure IS NULL OR on_dep_failure IN ('cancel', 'run', 'fail'))",
    ),
    ("has_children is 0 or 1", "typeof(has_children) = 'integer' AND has_children IN (0, 1)"),
]
"""What a row of baozi_items must be for baozi to read it: (what, an SQL condition)."""

_RUN = {
    "payload is a blob",
    "priority is a number or an encoded one",
    "seq is an integer",
    "deliveries is a count",
    "failures is a count",
    "failures are deliveries",
    "task is text",
}
RUNNABLE = " AND ".join(f"({sql})" for name, sql in CHECKS if name in _RUN)
"""The part of the checks that a reserve needs (what it returns and sorts by); the rest are
checked where they are read, and by the sweeps."""

SOUND_ROW = " AND ".join(f"({sql})" for _, sql in CHECKS)
"""An SQL condition on a row of baozi_items (unqualified columns): true when baozi can read it."""

SOUND = f"{SOUND_ROW} AND EXISTS (SELECT 1 FROM baozi_queues q WHERE q.id = qid)"
"""SOUND_ROW, and its queue is there too."""

_TABLES = {
    "baozi_items": "baozi_junk_items",
    "baozi_workers": "baozi_junk_workers",
    "baozi_queues": "baozi_junk_queues",
    "baozi_kv": "baozi_junk_kv",
}
SWEEP_EVERY = 10.0
"""How often (s) at most a consumer that finds a queue short looks for junk rows in it."""


def _quarantine_table(conn: sqlite3.Connection, table: str) -> tuple[str, str]:
    """The quarantine table of ``table`` (made, or given the columns it lacks) and the columns
    they share, as a list for SQL."""
    junk = _TABLES[table]
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    conn.execute(f"CREATE TABLE IF NOT EXISTS {junk} (reason, moved_at, {', '.join(columns)})")
    held = {r[1] for r in conn.execute(f"PRAGMA table_info({junk})")}
    for column in columns:
        if column not in held:  # the table gained a column since its quarantine was made
            conn.execute(f"ALTER TABLE {junk} ADD COLUMN {column}")
    return junk, ", ".join(columns)


def move_rows(
    conn: sqlite3.Connection, table: str, key: str, values: Sequence[object], reason: str
) -> int:
    """Move the rows of ``table`` whose ``key`` column is one of ``values`` to its quarantine
    table, in the caller's transaction; return how many moved. The caller logs them (``logged``)
    once its transaction commits."""
    if not values:
        return 0
    junk, columns = _quarantine_table(conn, table)
    marks = ",".join("?" * len(values))
    conn.execute(
        f"INSERT INTO {junk} (reason, moved_at, {columns}) "
        f"SELECT ?, ?, {columns} FROM {table} WHERE {key} IN ({marks})",
        (reason, time.time(), *values),
    )
    return int(
        conn.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", tuple(values)).rowcount
    )


def logged(path: str, table: str, keys: Sequence[object], reason: str) -> None:
    """Say, once per row, that it was moved aside."""
    junk = _TABLES[table]
    for key in keys:
        log.error(
            "SQLite store %s: %s row %s could not be read (%s); it was moved, intact, to %s",
            path,
            table,
            key if isinstance(key, int) else repr(key),  # a crafted name cannot forge a line
            reason,
            junk,
        )


def unsound_items(
    conn: sqlite3.Connection, where: str, params: Sequence[object]
) -> dict[str, list[int]]:
    """The rows of baozi_items that match ``where`` and fail SOUND: their ids by what they fail."""
    checks = ", ".join(f"({sql})" for _, sql in CHECKS)
    sql = (
        f"SELECT id, EXISTS (SELECT 1 FROM baozi_queues q WHERE q.id = qid), {checks} "
        f"FROM baozi_items WHERE ({where}) AND NOT ({SOUND})"
    )
    found: dict[str, list[int]] = {}
    for row in conn.execute(sql, tuple(params)):
        passed = [bool(x) for x in row[1:]]
        names = ["its queue is there", *(name for name, _ in CHECKS)]
        reason = "not: " + ", ".join(n for n, ok in zip(names, passed, strict=True) if not ok)
        found.setdefault(reason, []).append(int(row[0]))
    return found


def bad_text(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> list[int]:
    """The ids of the rows of baozi_items that match ``where`` with a text column that is no
    UTF-8 (which SQLite cannot tell: only rows with bytes outside printable ASCII are read)."""
    odd = " OR ".join(f"{c} GLOB '*[^ -~]*'" for c in TEXT_COLUMNS)
    blobs = ", ".join(f"CAST({c} AS BLOB)" for c in TEXT_COLUMNS)
    bad = []
    for row in conn.execute(
        f"SELECT id, {blobs} FROM baozi_items WHERE ({where}) AND ({odd})", tuple(params)
    ):
        try:
            for value in row[1:]:
                text(value)
        except (UnicodeDecodeError, TypeError):
            bad.append(int(row[0]))
    return bad


def text(value: object) -> str | None:
    """A text column read as a blob (so that bytes that are no UTF-8 do not fail the whole read),
    decoded; raises UnicodeDecodeError or TypeError for junk."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"not text: {value!r}")
