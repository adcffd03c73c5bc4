"""What in the PostgreSQL server's state is slowing the store down: vacuum's health.

The store's hot tables (``items``, ``ready``, ``totals``) turn over their rows all the time, and
``done`` receives every finished job and loses it when it expires: each leaves a dead row behind,
which only vacuum removes. Two things keep vacuum from doing it, and a store that reserves past
thousands of dead rows slows down, job after job:

* a long-open transaction anywhere in the database: vacuum keeps every row version that such a
  transaction might still see, so while it stays open, nothing dead since it began is removed;
* autovacuum turned off (for the server, or for one of the store's tables).

:func:`vacuum_warnings` asks the server about all of them in one statement and returns a
sentence for each threat, naming what to do.
"""

from __future__ import annotations

from typing import Any

import psycopg

LONG_TRANSACTION = 60.0
"""An open transaction older than this (s) is reported: it holds back vacuum in the database."""
DEAD_ROWS = 10_000
"""A table of the store with more dead rows than this, and more than :data:`DEAD_RATIO` times
its live rows, is reported."""
DEAD_RATIO = 2.0
SHOWN = 3
"""At most this many long transactions are named, the oldest first."""
TABLES = ("items", "done", "ready", "totals")
"""The store's tables whose rows turn over with the jobs (the others change rarely)."""

_QUERY = """
SELECT current_setting('autovacuum'), current_setting('track_counts'),
    (SELECT json_agg(t ORDER BY t.age DESC) FROM (
        SELECT pid, application_name AS app, usename AS role, state,
               extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND state IS DISTINCT FROM 'idle' AND xact_start IS NOT NULL
          AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
          AND backend_type = 'client backend'
          AND xact_start < clock_timestamp() - make_interval(secs => %(long)s)
        ORDER BY xact_start LIMIT %(shown)s) AS t),
    (SELECT json_agg(p ORDER BY p.age DESC) FROM (
        SELECT gid, owner AS role,
               extract(epoch FROM clock_timestamp() - prepared)::float8 AS age
        FROM pg_prepared_xacts
        WHERE database = current_database()
          AND prepared < clock_timestamp() - make_interval(secs => %(long)s)
        ORDER BY prepared LIMIT %(shown)s) AS p),
    (SELECT json_agg(d ORDER BY d.relname) FROM (
        SELECT s.relname, s.n_live_tup AS live, s.n_dead_tup AS dead,
               extract(epoch FROM clock_timestamp()
                   - greatest(s.last_vacuum, s.last_autovacuum))::float8 AS vacuumed,
               coalesce('autovacuum_enabled=false' = ANY(c.reloptions), false) AS off
        FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
        WHERE s.schemaname = %(schema)s AND s.relname = ANY(%(tables)s)) AS d)
"""


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _session(t: dict[str, Any]) -> str:
    app = f"application {t['app']!r}" if t.get("app") else "no application_name"
    query = f", last statement: {t['query']}" if t.get("query") else ""
    return f"pid {t['pid']} ({app}, role {t['role']}, {t['state']}, open {_age(t['age'])}{query})"


def vacuum_warnings(
    conn: psycopg.Connection[Any],
    schema: str,
    where: str,
    long_transaction: float | None = None,
    dead_rows: int | None = None,
    dead_ratio: float | None = None,
) -> list[str]:
    """What keeps vacuum from cleaning the store's tables in ``schema``, a sentence for each
    threat (empty: nothing), from one statement on ``conn``. ``where`` names the server in the
    sentences. The thresholds default to the module's constants, read at each call."""
    long_transaction = LONG_TRANSACTION if long_transaction is None else long_transaction
    dead_rows = DEAD_ROWS if dead_rows is None else dead_rows
    dead_ratio = DEAD_RATIO if dead_ratio is None else dead_ratio
    row = conn.execute(
        _QUERY,
        {"long": float(long_transaction), "shown": SHOWN, "schema": schema, "tables": list(TABLES)},
    ).fetchone()
    assert row is not None
    autovacuum, track_counts, open_xacts, prepared, tables = row
    out = []
    if open_xacts:
        oldest, *others = open_xacts
        more = f"; also {'; '.join(_session(t) for t in others)}" if others else ""
        out.append(
            f"PostgreSQL at {where}: the oldest open transaction in the database is "
            f"{_age(oldest['age'])} old, {_session(oldest)}{more}. While it stays open, vacuum "
            "cannot remove the rows that jobs finished since it began leave behind, and every "
            "reserve and settle slows down. End it (commit, or SELECT pg_terminate_backend(pid)), "
            "and bound such sessions: ALTER DATABASE ... SET idle_in_transaction_session_timeout "
            "= '60s' (and statement_timeout for long queries)"
        )
    for p in prepared or ():
        out.append(
            f"PostgreSQL at {where}: prepared transaction {p['gid']!r} (role {p['role']}) has "
            f"waited {_age(p['age'])} for COMMIT PREPARED or ROLLBACK PREPARED; until it ends, "
            "vacuum cannot remove dead rows in the database. Finish it, or "
            f"ROLLBACK PREPARED '{p['gid']}'"
        )
    if autovacuum != "on" or track_counts != "on":
        setting = "autovacuum" if autovacuum != "on" else "track_counts"
        out.append(
            f"PostgreSQL at {where} has {setting} off: nothing vacuums the store's tables, so the "
            "dead rows of every finished job pile up and reserves slow down as they do. Turn it "
            f"on: ALTER SYSTEM SET {setting} = on; SELECT pg_reload_conf(); (baozi sets its own "
            "tables' autovacuum thresholds; they apply only while autovacuum runs)"
        )
    for t in tables or ():
        if t["off"]:
            out.append(
                f"PostgreSQL at {where}: autovacuum is disabled for {schema}.{t['relname']}; "
                f"turn it back on: ALTER TABLE {schema}.{t['relname']} RESET (autovacuum_enabled)"
            )
        dead, live = int(t["dead"] or 0), int(t["live"] or 0)
        if dead > dead_rows and dead > dead_ratio * live:
            held = " (and an open transaction above holds them)" if open_xacts or prepared else ""
            out.append(
                f"PostgreSQL at {where}: {schema}.{t['relname']} holds {dead:,} dead rows beside "
                f"{live:,} live ones{held}; last vacuumed {_ago(t['vacuumed'])}. Every scan of "
                f"the table reads past them: run VACUUM (ANALYZE) {schema}.{t['relname']}, and "
                "see that autovacuum keeps up (autovacuum on, no long-open transactions)"
            )
    return out
