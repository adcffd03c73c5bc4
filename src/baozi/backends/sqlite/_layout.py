"""The layout of a baozi SQLite file: its tables, the version it records, and the migrations that
bring a file of an older layout up to date in place.

The version is the ``schema`` row of ``baozi_meta``, which every baozi SQLite file has held since
the first one (so every baozi older than the migrations refuses a file newer than itself). A new
file is made at the latest layout at once; an older one is migrated when a process opens it, one
step at a time, each step in one transaction that reads the version again first, so processes
that open the file at once migrate it once. A layout newer than this baozi's is refused, and the
file left untouched.

A change to the tables is a new step in :data:`MIGRATIONS` (its SQL written out in full, never
shared with :data:`SCHEMA`, so that the step stays what it was) and the same change in
:data:`SCHEMA`; tests/test_layout.py checks that both give the same tables.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from ..._dictkeys import rewrite_old_entries
from ...errors import NotABaoziStore, StoreError, StoreUnavailable

log = logging.getLogger("baozi.sqlite")

SCHEMA = """
-- baozi_meta's 'schema' row is the layout version (see latest()).
CREATE TABLE baozi_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE baozi_queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    options TEXT NOT NULL DEFAULT '{}',  -- JSON: maxsize, maxlen ...
    listed INTEGER NOT NULL DEFAULT 1    -- 0 once deleted (it is listed while it holds anything)
);
CREATE TABLE baozi_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, and the last part of the key
    qid INTEGER NOT NULL,
    state INTEGER NOT NULL,                -- 0 ready, 1 leased, 2 scheduled, 3 waiting, -1 finished
    priority NUMERIC NOT NULL,
    seq INTEGER NOT NULL,                  -- 0 (back) or minus the item's own id (front)
    due REAL,                              -- lease end (leased) or ready time (scheduled, waiting)
    owner TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    -- the record a job keeps (NULL for plain queue items)
    task TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,                          -- succeeded, failed or cancelled, once finished
    result BLOB,
    error TEXT,
    progress TEXT,
    counted INTEGER,                       -- 1: the batch that added it counted it (see totals)
    unique_key TEXT,                       -- with unique_while and unique_for (see NewJob)
    unique_while TEXT,
    unique_for REAL,
    on_dep_failure TEXT,                   -- cancel, run or fail: set for a job with dependencies
    has_children INTEGER NOT NULL DEFAULT 0, -- 1 once a job depends on it (see baozi_ended)
    worker TEXT                            -- the owner of its last run that ended
);
-- Partial indexes, each row in exactly one of the first four: a push writes one index, not two.
CREATE INDEX baozi_items_ready ON baozi_items (qid, priority, seq) WHERE state = 0;
CREATE INDEX baozi_items_due ON baozi_items (qid, due) WHERE state > 0;
CREATE INDEX baozi_items_done ON baozi_items (qid, outcome, id) WHERE state < 0;
CREATE INDEX baozi_items_expiry ON baozi_items (expires_at) WHERE state < 0;
CREATE INDEX baozi_items_waiting ON baozi_items (qid) WHERE state = 3;
CREATE INDEX baozi_items_unique ON baozi_items (unique_key) WHERE unique_key IS NOT NULL;
-- Listing by queue, newest first (records_page): neither column changes once a row is written,
-- so only an insert and a delete write this index, never a reserve or a settle.
CREATE INDEX baozi_items_listed ON baozi_items (qid, id);
CREATE TABLE baozi_line (                 -- ready rows per stretch of each queue's line,
    qid INTEGER NOT NULL,                  -- so a rank sums a few stretches, not every row:
    priority NUMERIC NOT NULL,             -- the rows marked ready (state 0) with this
    seq INTEGER NOT NULL,                  -- priority and seq, and ids from blk * 256 up
    blk INTEGER NOT NULL,                  -- to blk * 256 + 255 (kept by the triggers
    n INTEGER NOT NULL,                    -- below; a stretch that empties is dropped)
    PRIMARY KEY (qid, priority, seq, blk)
) WITHOUT ROWID;
CREATE TRIGGER baozi_line_in AFTER INSERT ON baozi_items WHEN NEW.state = 0 BEGIN
    INSERT INTO baozi_line VALUES (NEW.qid, NEW.priority, NEW.seq, NEW.id >> 8, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER baozi_line_out AFTER DELETE ON baozi_items WHEN OLD.state = 0 BEGIN
    UPDATE baozi_line SET n = n - 1 WHERE qid = OLD.qid AND priority = OLD.priority
        AND seq = OLD.seq AND blk = OLD.id >> 8;
    DELETE FROM baozi_line WHERE qid = OLD.qid AND priority = OLD.priority AND seq = OLD.seq
        AND blk = OLD.id >> 8 AND n <= 0;
END;
CREATE TRIGGER baozi_line_move AFTER UPDATE OF state, qid, priority, seq ON baozi_items
WHEN OLD.state = 0 OR NEW.state = 0 BEGIN
    UPDATE baozi_line SET n = n - 1 WHERE OLD.state = 0 AND qid = OLD.qid
        AND priority = OLD.priority AND seq = OLD.seq AND blk = OLD.id >> 8;
    DELETE FROM baozi_line WHERE OLD.state = 0 AND qid = OLD.qid AND priority = OLD.priority
        AND seq = OLD.seq AND blk = OLD.id >> 8 AND n <= 0;
    INSERT INTO baozi_line SELECT NEW.qid, NEW.priority, NEW.seq, NEW.id >> 8, 1
        WHERE NEW.state = 0 ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TABLE baozi_deps (                  -- the jobs each job depends on
    child INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    pos INTEGER NOT NULL,                  -- its place in the child's depends_on
    done INTEGER NOT NULL DEFAULT 0,       -- 1 once the parent's end was counted for the child
    PRIMARY KEY (child, pos)
) WITHOUT ROWID;
CREATE INDEX baozi_deps_parent ON baozi_deps (parent);
CREATE TABLE baozi_ended (                 -- jobs with dependents ended by the write under way,
    parent INTEGER NOT NULL,               -- which releases those and empties it before it commits
    outcome TEXT
);
CREATE TABLE baozi_workers (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL,                    -- JSON: host, pid, pool, concurrency, queues, busy ...
    seen REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE baozi_kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE baozi_slots (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL,                 -- when the holder's time runs out
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE TABLE baozi_waiters (               -- jobs held back until a slot frees
    slot TEXT NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (slot, item)
) WITHOUT ROWID;
CREATE TABLE baozi_totals (                -- events of jobs, by queue and task (see COUNTED)
    qid INTEGER NOT NULL,
    task TEXT NOT NULL,
    event TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (qid, task, event)
) WITHOUT ROWID;
-- Triggers count in the statement that makes the change, so nothing can change uncounted; a
-- batch of jobs is counted once per task, in its own transaction, and marks its rows counted.
CREATE TRIGGER baozi_count_enqueued AFTER INSERT ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.counted IS NULL BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'enqueued', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER baozi_count_started AFTER UPDATE OF deliveries ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.deliveries > OLD.deliveries BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'started', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER baozi_count_finished AFTER UPDATE OF state ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.state < 0 AND OLD.state >= 0 BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, NEW.outcome, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
-- Whatever ends a job notes it if others depend on it, so the same transaction releases them.
CREATE TRIGGER baozi_note_ended AFTER UPDATE OF state ON baozi_items
WHEN NEW.has_children = 1 AND NEW.state < 0 AND OLD.state >= 0 BEGIN
    INSERT INTO baozi_ended VALUES (NEW.id, NEW.outcome);
END;
CREATE TABLE baozi_marks (                 -- publish-pending marks, at most one per job
    item INTEGER PRIMARY KEY,              -- the job's row
    qid INTEGER NOT NULL,
    at REAL NOT NULL                       -- when to publish its message (epoch seconds)
);
CREATE INDEX baozi_marks_due ON baozi_marks (qid, at);
-- A mark goes with its job's row, whatever deletes the row.
CREATE TRIGGER baozi_marks_out AFTER DELETE ON baozi_items WHEN OLD.task IS NOT NULL BEGIN
    DELETE FROM baozi_marks WHERE item = OLD.id;
END;
"""
"""The tables of a new file, at the latest layout."""


# -- the migrations: each takes a file from its layout to the next, inside the caller's transaction


def _to_2(conn: sqlite3.Connection) -> None:
    """Layout 1 -> 2: the coordination tables (keys and values, slots, jobs waiting for one)."""
    _run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS baozi_kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baozi_slots (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS baozi_waiters (
    slot TEXT NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (slot, item)
) WITHOUT ROWID;
""",
    )


def _to_3(conn: sqlite3.Connection) -> None:
    """Layout 2 -> 3: job totals with the triggers that count them (from the migration on), the
    queues' ``listed`` and the items' ``counted`` columns."""
    added = {
        "baozi_queues": ("listed", "listed INTEGER NOT NULL DEFAULT 1"),
        "baozi_items": ("counted", "counted INTEGER"),
    }
    for table, (column, declared) in added.items():
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {declared}")
    _run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS baozi_totals (
    qid INTEGER NOT NULL,
    task TEXT NOT NULL,
    event TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (qid, task, event)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS baozi_count_enqueued AFTER INSERT ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.counted IS NULL BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'enqueued', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS baozi_count_started AFTER UPDATE OF deliveries ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.deliveries > OLD.deliveries BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, 'started', 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS baozi_count_finished AFTER UPDATE OF state ON baozi_items
WHEN NEW.task IS NOT NULL AND NEW.state < 0 AND OLD.state >= 0 BEGIN
    INSERT INTO baozi_totals VALUES (NEW.qid, NEW.task, NEW.outcome, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
""",
    )


def _to_4(conn: sqlite3.Connection) -> None:
    """Layout 3 -> 4: unique keys and dependencies: the items' unique and dependency columns, the
    table of dependencies, the note of jobs with dependents that end, and their indexes."""
    added = [
        ("unique_key", "unique_key TEXT"),
        ("unique_while", "unique_while TEXT"),
        ("unique_for", "unique_for REAL"),
        ("on_dep_failure", "on_dep_failure TEXT"),
        ("has_children", "has_children INTEGER NOT NULL DEFAULT 0"),
    ]
    held = {row[1] for row in conn.execute("PRAGMA table_info(baozi_items)")}
    for column, declared in added:
        if column not in held:
            conn.execute(f"ALTER TABLE baozi_items ADD COLUMN {declared}")
    _run_script(
        conn,
        """
CREATE INDEX IF NOT EXISTS baozi_items_waiting ON baozi_items (qid) WHERE state = 3;
CREATE INDEX IF NOT EXISTS baozi_items_unique ON baozi_items (unique_key)
WHERE unique_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS baozi_deps (
    child INTEGER NOT NULL,
    parent INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (child, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS baozi_deps_parent ON baozi_deps (parent);
CREATE TABLE IF NOT EXISTS baozi_ended (
    parent INTEGER NOT NULL,
    outcome TEXT
);
CREATE TRIGGER IF NOT EXISTS baozi_note_ended AFTER UPDATE OF state ON baozi_items
WHEN NEW.has_children = 1 AND NEW.state < 0 AND OLD.state >= 0 BEGIN
    INSERT INTO baozi_ended VALUES (NEW.id, NEW.outcome);
END;
""",
    )


def _to_5(conn: sqlite3.Connection) -> None:
    """Layout 4 -> 5: baozi.Dict keys by their canonical text (see baozi._dictkeys), each value
    a record that starts with the key. A layout-4 Dict (a namespace "dict:NAME") keeps each key
    as ``json.dumps(key)``; keys that are now one key (``1``, ``1.0``, ``true``) are merged,
    and the one whose old text sorts first (as Python orders str) wins, key and value. The
    tables do not change."""
    rows = conn.execute(
        "SELECT ns, key, value FROM baozi_kv WHERE substr(ns, 1, 5) = 'dict:'"
    ).fetchall()
    spaces: dict[str, dict[str, bytes]] = {}
    for ns, key, value in rows:
        if isinstance(key, str) and isinstance(value, bytes):  # else no Dict wrote it
            spaces.setdefault(ns, {})[key] = value
    for ns, entries in spaces.items():
        conn.executemany(
            "DELETE FROM baozi_kv WHERE ns=? AND key=?", [(ns, key) for key in entries]
        )
        conn.executemany(
            "INSERT INTO baozi_kv VALUES (?, ?, ?)",
            [(ns, key, record) for key, record in rewrite_old_entries(entries).items()],
        )


def _to_6(conn: sqlite3.Connection) -> None:
    """Layout 5 -> 6: the line's stretches (baozi_line), which make a job's rank a sum over
    stretches of up to 256 ready rows rather than a count of every row ahead; filled from the
    rows ready now, then kept by three triggers."""
    _run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS baozi_line (
    qid INTEGER NOT NULL,
    priority NUMERIC NOT NULL,
    seq INTEGER NOT NULL,
    blk INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (qid, priority, seq, blk)
) WITHOUT ROWID;
DELETE FROM baozi_line;
INSERT INTO baozi_line SELECT qid, priority, seq, id >> 8, count(*) FROM baozi_items
WHERE state = 0 GROUP BY qid, priority, seq, id >> 8;
CREATE TRIGGER IF NOT EXISTS baozi_line_in AFTER INSERT ON baozi_items WHEN NEW.state = 0 BEGIN
    INSERT INTO baozi_line VALUES (NEW.qid, NEW.priority, NEW.seq, NEW.id >> 8, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS baozi_line_out AFTER DELETE ON baozi_items WHEN OLD.state = 0 BEGIN
    UPDATE baozi_line SET n = n - 1 WHERE qid = OLD.qid AND priority = OLD.priority
        AND seq = OLD.seq AND blk = OLD.id >> 8;
    DELETE FROM baozi_line WHERE qid = OLD.qid AND priority = OLD.priority AND seq = OLD.seq
        AND blk = OLD.id >> 8 AND n <= 0;
END;
CREATE TRIGGER IF NOT EXISTS baozi_line_move AFTER UPDATE OF state, qid, priority, seq
ON baozi_items WHEN OLD.state = 0 OR NEW.state = 0 BEGIN
    UPDATE baozi_line SET n = n - 1 WHERE OLD.state = 0 AND qid = OLD.qid
        AND priority = OLD.priority AND seq = OLD.seq AND blk = OLD.id >> 8;
    DELETE FROM baozi_line WHERE OLD.state = 0 AND qid = OLD.qid AND priority = OLD.priority
        AND seq = OLD.seq AND blk = OLD.id >> 8 AND n <= 0;
    INSERT INTO baozi_line SELECT NEW.qid, NEW.priority, NEW.seq, NEW.id >> 8, 1
        WHERE NEW.state = 0 ON CONFLICT DO UPDATE SET n = n + 1;
END;
""",
    )


def _to_7(conn: sqlite3.Connection) -> None:
    """Layout 6 -> 7: publish-pending marks (baozi_marks), with the trigger that removes a
    job's mark with its row."""
    _run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS baozi_marks (
    item INTEGER PRIMARY KEY,
    qid INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS baozi_marks_due ON baozi_marks (qid, at);
CREATE TRIGGER IF NOT EXISTS baozi_marks_out AFTER DELETE ON baozi_items
WHEN OLD.task IS NOT NULL BEGIN
    DELETE FROM baozi_marks WHERE item = OLD.id;
END;
""",
    )


def _to_8(conn: sqlite3.Connection) -> None:
    """Layout 7 -> 8: the items' ``worker`` column (the owner of a job's last run that ended;
    empty for the runs that ended before the step) and the index that lists a queue's rows
    newest first."""
    if "worker" not in {row[1] for row in conn.execute("PRAGMA table_info(baozi_items)")}:
        conn.execute("ALTER TABLE baozi_items ADD COLUMN worker TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS baozi_items_listed ON baozi_items (qid, id)")


Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: dict[int, Migration] = {
    1: _to_2,
    2: _to_3,
    3: _to_4,
    4: _to_5,
    5: _to_6,
    6: _to_7,
    7: _to_8,
}
"""Layout N -> the step that takes a file from N to N + 1. A step runs inside a transaction that
records N + 1 after it and commits; if it raises, the whole step is rolled back."""


def latest() -> int:
    """The layout this baozi writes: the one after the last migration."""
    return 1 + len(MIGRATIONS)


# -- opening -----------------------------------------------------------------------------------

_MAGIC = b"SQLite format 3\x00"
"""How every SQLite file begins."""


def unreadable(path: str, exc: sqlite3.DatabaseError) -> StoreError:
    """The error for a file SQLite cannot read: a damaged store when the file is (or begins as)
    an SQLite file, else something that is not a baozi store at all."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MAGIC))
    except OSError:
        head = b""
    if head and _MAGIC.startswith(head):
        return StoreError(
            f"the store file is damaged: {path} is an SQLite file that SQLite cannot read "
            f"({exc}), truncated or overwritten in part; baozi left it untouched: restore it "
            f"from a backup, or move it aside to start an empty store"
        )
    return NotABaoziStore(
        f"{path!r} is not a baozi store ({exc}); baozi left it untouched: use another file name"
    )


def open_layout(conn: sqlite3.Connection, path: str) -> None:
    """Make ``conn``'s file a baozi store at the latest layout: create the tables in an empty
    file, migrate an older layout in place; refuse a file that is no baozi store, or whose
    layout is newer than this baozi's, leaving it untouched."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise unreadable(path, exc) from exc
    if "baozi_meta" not in tables:
        tables.discard("sqlite_sequence")
        if tables:
            raise NotABaoziStore(
                f"{path!r} is an SQLite database with tables or views baozi did not create "
                f"({', '.join(sorted(tables)[:5])}); baozi left it untouched: use another file"
            )
        _create(conn, path)
    version = _version(conn, path)
    while version != latest():
        if version > latest():
            raise StoreError(
                f"the baozi store {path!r} has layout {version}, and this baozi reads layouts up "
                f"to {latest()}: a newer baozi migrated it. Upgrade baozi where this process "
                f"runs to open it (a store is never migrated back); baozi left it untouched"
            )
        version = _migrate(conn, path, version)


def _version(conn: sqlite3.Connection, path: str) -> int:
    """The layout the file records (read in the caller's transaction, if any)."""
    try:
        row = conn.execute("SELECT value FROM baozi_meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"cannot open SQLite store {path!r}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise unreadable(path, exc) from exc
    value = row[0] if row else None
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0):
        raise NotABaoziStore(
            f"{path!r} has baozi's tables but records no layout version baozi wrote "
            f"(baozi_meta 'schema' is {value!r}; this baozi writes {latest()}); baozi left it "
            f"untouched"
        )
    return int(value)


def _create(conn: sqlite3.Connection, path: str) -> None:
    try:
        # Small pages: a commit appends whole pages to the WAL, and a queue commit touches few rows.
        conn.execute("PRAGMA page_size=1024")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='baozi_meta'").fetchone():
            conn.execute("ROLLBACK")  # another process created it first
            return
        _run_script(conn, SCHEMA)
        conn.execute("INSERT INTO baozi_meta VALUES ('schema', ?)", (str(latest()),))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreUnavailable(f"cannot create a baozi store in {path!r}: {exc}") from exc


def _migrate(conn: sqlite3.Connection, path: str, version: int) -> int:
    """Run the step from ``version`` in one transaction, unless another process has moved the
    file on meanwhile; return the layout the file now records."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = _version(conn, path)  # again, under the write lock
            if now == version:
                MIGRATIONS[version](conn)
                now = version + 1
                conn.execute("UPDATE baozi_meta SET value=? WHERE key='schema'", (str(now),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreUnavailable(
            f"cannot migrate the baozi store {path!r} from layout {version} to {version + 1} "
            f"({exc}); it was left at layout {version}"
        ) from exc
    if now == version + 1:
        log.info("migrated the baozi store %s from layout %d to %d", path, version, now)
    return now


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` one by one, in the caller's transaction (a trigger's
    body holds ";" too: a statement ends at a ";" that closes its line, outside BEGIN ... END)."""
    statement: list[str] = []
    inside = False
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("--"):
            continue
        statement.append(line)
        if line.rstrip().endswith("BEGIN"):
            inside = True
        if line.rstrip().endswith(";") and (not inside or line.strip() == "END;"):
            conn.execute("\n".join(statement))
            statement, inside = [], False
    if statement:
        conn.execute("\n".join(statement))
