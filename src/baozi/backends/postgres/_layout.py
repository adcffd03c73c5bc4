"""The PostgreSQL store's tables, functions and triggers, made in its schema on first use.

* ``items`` is the hot table: only live items -- ready (state 0), leased (1), scheduled (2),
  waiting for the jobs they depend on (-1, ``due`` the end of its delay, ``pending`` how many of
  them have not ended) -- with a partial index in queue order for ready ones and one on the due
  time for the rest. It is kept small, so its indexes stay in memory and vacuum has little to do.
  ``kids`` marks a job that others depend on: the one-statement settle leaves it to the settle
  that releases them (see ``_workflow``).
* ``deps`` holds each dependency, child to parent in the order given (``pos``); ``waiting`` until
  the parent ends. A child's rows go with its record; a parent's stay as the child's parents.
* ``done`` holds finished job records until they expire: a job's row moves there when it ends
  (succeeded, failed, cancelled), and back to ``items`` when it is requeued, keeping its id,
  priority and order number, so it returns to its original place.
* ``ready`` holds how many ready items each bucket of the queue order has: a bucket is one
  priority and 1,024 consecutive order numbers. A statement trigger keeps it, aggregated per
  statement, in rows of the writing connection's own (``pg_backend_pid()``): no two connections
  ever update the same row, so no write waits for another. ``position()`` sums the buckets ahead
  of an item and counts the item's own bucket exactly: a few thousand rows at most at any depth.
* ``totals`` counts job events (:data:`~baozi.backends.base.COUNTED`), per statement and per
  connection in the same way. Rows of connections that have gone are folded into shard 0.
* ``marks`` holds the publish-pending marks (see :mod:`baozi.backends.contract.jobs`), at most
  one per job, whether its row is in ``items`` or ``done``; whatever deletes a job's record
  (forget, purge, clear, ack, discard, pop, splice) deletes its mark in the same statement.
* ``signal()`` notifies the store's channel when some process waits (a row in ``waiting``): a
  commit that notifies takes PostgreSQL's notify lock, so nothing is sent while nobody listens.

The layout version is the ``layout`` row of ``meta``. A new schema is made at the latest layout;
an older one is migrated when a process opens it, one step of :data:`MIGRATIONS` at a time, each
in one transaction under the schema's lock that reads the version again first, so processes that
open it at once migrate it once. A layout newer than this baozi's is refused, the schema left
untouched. A change to the tables is a new step (its SQL written out in full, never shared with
:data:`TABLES`, so the step stays what it was) and the same change in :data:`TABLES`.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable

import psycopg

from ..._dictkeys import rewrite_old_entries
from ...errors import NotABaoziStore, StoreError

log = logging.getLogger("baozi.postgres")


def _dict_keys_to_3(conn: psycopg.Connection, s: str) -> None:
    """Layout 2 -> 3: baozi.Dict keys by their canonical text (see baozi._dictkeys), each value
    a record that starts with the key. A layout-2 Dict (a namespace "dict:NAME") keeps each key
    as ``json.dumps(key)``; keys that are now one key (``1``, ``1.0``, ``true``) are merged,
    and the one whose old text sorts first (as Python orders str) wins, key and value. The
    tables do not change."""
    rows = conn.execute(f"SELECT ns, key, value FROM {s}.kv WHERE left(ns, 5) = 'dict:'")
    spaces: dict[str, dict[str, bytes]] = {}
    for ns, key, value in rows.fetchall():
        spaces.setdefault(ns, {})[key] = bytes(value)
    with conn.cursor() as cur:
        for ns, entries in spaces.items():
            cur.execute(f"DELETE FROM {s}.kv WHERE ns = %s", (ns,))
            cur.executemany(
                f"INSERT INTO {s}.kv VALUES (%s, %s, %s)",
                [(ns, key, record) for key, record in rewrite_old_entries(entries).items()],
            )


MIGRATIONS: dict[int, str | Callable[[psycopg.Connection, str], None]] = {
    # 1 -> 2: unique keys, dependencies (the waiting state, -1) and the ``deps`` table.
    1: """
ALTER TABLE {s}.items ADD COLUMN unique_key text, ADD COLUMN unique_while text,
    ADD COLUMN unique_for double precision, ADD COLUMN on_dep text, ADD COLUMN pending integer,
    ADD COLUMN kids boolean NOT NULL DEFAULT false;
ALTER TABLE {s}.done ADD COLUMN unique_key text, ADD COLUMN unique_while text,
    ADD COLUMN unique_for double precision, ADD COLUMN on_dep text;
CREATE INDEX items_unique ON {s}.items (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX items_waiting ON {s}.items (qid) WHERE state < 0;
CREATE INDEX done_unique ON {s}.done (unique_key) WHERE unique_key IS NOT NULL;
CREATE TABLE {s}.deps (
    child bigint NOT NULL,
    parent bigint NOT NULL,
    pos integer NOT NULL,
    waiting boolean NOT NULL,
    PRIMARY KEY (child, pos)
);
CREATE INDEX deps_parent ON {s}.deps (parent);
""",
    # 2 -> 3: baozi.Dict keys by their canonical text (see _dict_keys_to_3).
    2: _dict_keys_to_3,
    # 3 -> 4: publish-pending marks.
    3: """
CREATE TABLE IF NOT EXISTS {s}.marks (item bigint PRIMARY KEY, qid integer NOT NULL,
                                      at double precision NOT NULL);
CREATE INDEX IF NOT EXISTS marks_due ON {s}.marks (qid, at);
""",
    # 4 -> 5: the owner of a job's last run that ended (JobRecord.worker), live and done; and
    # done_queue ends in the id, so that a queue's records of one outcome are read in id order
    # (a page of records_page), at no more cost to a settle.
    4: """
ALTER TABLE {s}.items ADD COLUMN IF NOT EXISTS worker text;
ALTER TABLE {s}.done ADD COLUMN IF NOT EXISTS worker text;
DROP INDEX IF EXISTS {s}.done_queue;
CREATE INDEX done_queue ON {s}.done (qid, outcome, id);
""",
}
"""The step from each layout to the next, run in one transaction: SQL with ``{s}`` the schema,
or a function of the connection and the quoted schema."""


def latest() -> int:
    """The layout this code writes and reads; an older one is migrated, a newer one refused."""
    return 1 + len(MIGRATIONS)


_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(name: str, url: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid schema={name!r} in {url!r}: use lower-case letters, digits and _ "
            "(at most 63, not starting with a digit), such as ?schema=baozi"
        )
    return name


# Bucket of an item in the queue order (see the module docstring): front pushes (seq < 0) by
# their order number, the rest by their id.
_SB = "CASE WHEN seq <> 0 THEN seq >> 10 ELSE 0 END"
_IB = "CASE WHEN seq <> 0 THEN 0 ELSE id >> 10 END"

TABLES = """
CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.queues (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    options text NOT NULL DEFAULT '{{}}',
    paused boolean NOT NULL DEFAULT false,
    bounded boolean NOT NULL DEFAULT false,
    listed boolean NOT NULL DEFAULT true
);
CREATE SEQUENCE {s}.ids;
CREATE TABLE {s}.items (
    id bigint PRIMARY KEY,
    qid integer NOT NULL,
    state smallint NOT NULL,
    priority numeric NOT NULL,
    pfloat boolean NOT NULL DEFAULT false,
    seq bigint NOT NULL DEFAULT 0,
    due double precision,
    owner text,
    deliveries integer NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    payload bytea NOT NULL,
    task text,
    created_at double precision,
    started_at double precision,
    error text,
    progress text,
    unique_key text,
    unique_while text,
    unique_for double precision,
    on_dep text,
    pending integer,
    kids boolean NOT NULL DEFAULT false,
    worker text
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0,
        autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX items_ready ON {s}.items (qid, priority, seq, id) WHERE state = 0;
CREATE INDEX items_due ON {s}.items (qid, due) WHERE state > 0;
CREATE INDEX items_unique ON {s}.items (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX items_waiting ON {s}.items (qid) WHERE state < 0;
CREATE TABLE {s}.done (
    id bigint PRIMARY KEY,
    qid integer NOT NULL,
    task text,
    outcome text NOT NULL,
    priority numeric NOT NULL,
    pfloat boolean NOT NULL DEFAULT false,
    seq bigint NOT NULL DEFAULT 0,
    payload bytea NOT NULL,
    deliveries integer NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    created_at double precision,
    started_at double precision,
    finished_at double precision,
    expires_at double precision,
    result bytea,
    error text,
    progress text,
    unique_key text,
    unique_while text,
    unique_for double precision,
    on_dep text,
    worker text
) WITH (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX done_expires ON {s}.done (expires_at);
CREATE INDEX done_queue ON {s}.done (qid, outcome, id);
CREATE INDEX done_unique ON {s}.done (unique_key) WHERE unique_key IS NOT NULL;
CREATE TABLE {s}.deps (
    child bigint NOT NULL,
    parent bigint NOT NULL,
    pos integer NOT NULL,
    waiting boolean NOT NULL,
    PRIMARY KEY (child, pos)
);
CREATE INDEX deps_parent ON {s}.deps (parent);
CREATE TABLE {s}.ready (
    qid integer NOT NULL,
    priority numeric NOT NULL,
    sb bigint NOT NULL,
    ib bigint NOT NULL,
    shard integer NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (qid, priority, sb, ib, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE {s}.totals (
    qid integer NOT NULL,
    task text NOT NULL,
    event text NOT NULL,
    shard integer NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (qid, task, event, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE {s}.marks (item bigint PRIMARY KEY, qid integer NOT NULL,
                        at double precision NOT NULL);
CREATE INDEX marks_due ON {s}.marks (qid, at);
CREATE TABLE {s}.waiters (slot text NOT NULL, item bigint NOT NULL, PRIMARY KEY (slot, item));
CREATE TABLE {s}.kv (ns text NOT NULL, key text NOT NULL, value bytea NOT NULL,
                     PRIMARY KEY (ns, key));
CREATE TABLE {s}.slots (name text NOT NULL, holder text NOT NULL,
                        expires double precision NOT NULL, PRIMARY KEY (name, holder));
CREATE TABLE {s}.workers (id text PRIMARY KEY, info text NOT NULL,
                          seen double precision NOT NULL, expires double precision NOT NULL);
CREATE TABLE {s}.waiting (listener text PRIMARY KEY, expires double precision NOT NULL);
CREATE TABLE {s}.junk (at double precision NOT NULL, tbl text NOT NULL, reason text NOT NULL,
                       row_data text NOT NULL);
"""

FUNCTIONS = f"""
CREATE FUNCTION {{s}}.now() RETURNS double precision LANGUAGE sql STABLE
    AS $$ SELECT extract(epoch FROM statement_timestamp())::double precision $$;

-- Wakes the processes waiting on this store, if any. The shared lock is held to the commit and
-- taken before ``waiting`` is read (a volatile function reads with a new snapshot), so a waiter
-- that registers (under the exclusive lock) either sees this write or is seen by it.
CREATE FUNCTION {{s}}.signal() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({{lock}});
    IF EXISTS (SELECT 1 FROM {{s}}.waiting WHERE expires > {{s}}.now()) THEN
        PERFORM pg_notify({{channel}}, '');
    END IF;
END $$;

CREATE FUNCTION {{s}}.count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{s}}.ready AS r
        SELECT qid, priority, {_SB}, {_IB}, pg_backend_pid(), count(*)
        FROM added WHERE state = 0 GROUP BY 1, 2, 3, 4
    ON CONFLICT (qid, priority, sb, ib, shard) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION {{s}}.count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{s}}.ready AS r
        SELECT qid, priority, {_SB}, {_IB}, pg_backend_pid(), -count(*)
        FROM removed WHERE state = 0 GROUP BY 1, 2, 3, 4
    ON CONFLICT (qid, priority, sb, ib, shard) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION {{s}}.count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{s}}.ready AS r
        SELECT qid, priority, sb, ib, pg_backend_pid(), sum(d) FROM (
            SELECT qid, priority, {_SB} AS sb, {_IB} AS ib, 1 AS d FROM added WHERE state = 0
            UNION ALL
            SELECT qid, priority, {_SB}, {_IB}, -1 FROM removed WHERE state = 0
        ) AS x GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0
    ON CONFLICT (qid, priority, sb, ib, shard) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER items_added AFTER INSERT ON {{s}}.items REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.count_added();
CREATE TRIGGER items_removed AFTER DELETE ON {{s}}.items REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.count_removed();
CREATE TRIGGER items_changed AFTER UPDATE ON {{s}}.items
    REFERENCING NEW TABLE AS added OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.count_changed();
"""


def lock_key(schema: str) -> int:
    """The advisory lock key of the store's change signal (stable across processes)."""
    return zlib.crc32(f"baozi:{schema}".encode()) - 2**31


def channel(schema: str) -> str:
    return f"baozi_{schema}"


def create(conn: psycopg.Connection, schema: str, url: str) -> None:
    """Make the store's schema and tables at the latest layout unless they exist, and migrate an
    older layout in place; refuse a schema that is no baozi store, or whose layout is newer than
    this baozi's, leaving it untouched. Each transaction runs under the schema's lock, so racing
    openers make it, and migrate it, once."""
    s = f'"{schema}"'
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema) ^ 0x5A5A,))
            version = _version(conn, schema, url)
            if version is None:
                _make(conn, schema, url)
                return
            if version == latest():
                return
            if version > latest():
                raise StoreError(
                    f"schema {schema!r} in {url!r} holds baozi layout {version}, and this baozi "
                    f"reads layouts up to {latest()}: a newer baozi migrated it. Upgrade baozi "
                    "where this process runs to open it (a store is never migrated back); baozi "
                    "left it untouched"
                )
            step = MIGRATIONS[version]
            if isinstance(step, str):
                conn.execute(step.replace("{s}", s))
            else:
                step(conn, s)
            conn.execute(
                f"UPDATE {s}.meta SET value = %s WHERE key = 'layout'", (str(version + 1),)
            )
        log.info("migrated the baozi store %s (schema %s) to layout %d", url, schema, version + 1)


def _version(conn: psycopg.Connection, schema: str, url: str) -> int | None:
    """The layout the schema records, or None when it holds no tables at all."""
    s = f'"{schema}"'
    found = conn.execute("SELECT to_regclass(%s)", (f"{s}.meta",)).fetchone()
    if found is None or found[0] is None:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname=%s", (schema,)
        ).fetchone()
        if tables is not None and tables[0]:
            raise NotABaoziStore(
                f"schema {schema!r} in {url!r} holds tables that are not a baozi store; "
                "use another ?schema="
            )
        return None
    row = conn.execute(f"SELECT value FROM {s}.meta WHERE key='layout'").fetchone()
    value = row[0] if row is not None else None
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0):
        raise NotABaoziStore(
            f"schema {schema!r} in {url!r} has baozi's tables but records no layout version "
            f"baozi wrote (meta 'layout' is {value!r}; this baozi writes {latest()}); baozi left "
            "it untouched"
        )
    return int(value)


def _make(conn: psycopg.Connection, schema: str, url: str) -> None:
    s = f'"{schema}"'
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    ddl = TABLES + FUNCTIONS
    ddl = ddl.replace("{s}", s).replace("{{s}}", s)
    ddl = ddl.replace("{lock}", str(lock_key(schema))).replace("{channel}", f"'{channel(schema)}'")
    ddl = ddl.replace("{{", "{").replace("}}", "}")
    conn.execute(ddl)
    conn.execute(f"INSERT INTO {s}.meta VALUES ('layout', %s)", (str(latest()),))
