"""The coordination part of the PostgreSQL store: keys and values, slots, rate limits.

A step that reads before it writes runs in one transaction under a transaction-level advisory
lock on its name, so steps on one name are serial across every process, and those on different
names never wait for each other.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from .._coord import add_as, add_number, add_to_tail, book, with_tail
from ..base import CLAIM_TTL
from .store import PostgresQueues

__all__ = ["PostgresCoordination"]

_RATES = "baozi.rate"  # the kv namespace holding each rate limit's next due time
_GRANTS = "baozi.rate-booked:"  # + the rate's name: the kv namespace of its bookings
_KV_LOCK, _SLOT_LOCK, _RATE_LOCK = 0x6B76, 0x736C74, 0x726174
_PUT = "INSERT INTO {s}.kv VALUES (%s, %s, %s) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value"

Conn = psycopg.Connection[Any]


def _seconds(raw: bytes) -> float:
    """A booked time as stored; one that cannot be read counts as long past."""
    try:
        return float(raw)
    except ValueError:
        return 0.0


class PostgresCoordination(PostgresQueues):
    def _lock(self, conn: Conn, kind: int, name: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (kind, name))

    def kv_get(self, ns: str, key: str) -> bytes | None:
        row = self._one(
            "read a key", "SELECT value FROM {s}.kv WHERE ns = %s AND key = %s", (ns, key)
        )
        return None if row is None else bytes(row[0])

    def kv_items(self, ns: str) -> dict[str, bytes]:
        rows = self._rows(
            "read keys", "SELECT key, value FROM {s}.kv WHERE ns = %s ORDER BY key", (ns,)
        )
        return {k: bytes(v) for k, v in rows}

    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        self._rows(
            "write a key",
            f"WITH w AS ({_PUT} RETURNING 1) SELECT {{signal}} FROM w",
            (ns, key, bytes(value)),
        )
        self._notify()

    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        params = {"ns": ns, "key": key, "value": bytes(value)}
        row = self._one(
            "write a key",
            "WITH w AS (INSERT INTO {s}.kv VALUES (%(ns)s, %(key)s, %(value)s) "
            "ON CONFLICT (ns, key) DO NOTHING RETURNING value) "
            "SELECT value FROM w, (SELECT {signal}) AS s UNION ALL "
            "SELECT value FROM {s}.kv WHERE ns = %(ns)s AND key = %(key)s",
            params,
        )
        if row is None:  # held by a write that committed after this statement began
            row = self._one(
                "read a key", "SELECT value FROM {s}.kv WHERE ns = %(ns)s AND key = %(key)s", params
            )
        self._notify()
        return bytes(row[0])

    def kv_delete(self, ns: str, key: str) -> bytes | None:
        row = self._one(
            "delete a key",
            "WITH d AS (DELETE FROM {s}.kv WHERE ns = %s AND key = %s RETURNING value) "
            "SELECT value, {signal} FROM d",
            (ns, key),
        )
        self._notify()
        return None if row is None else bytes(row[0])

    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        def cas(conn: Conn) -> bool:
            self._lock(conn, _KV_LOCK, f"{ns}\x1f{key}")
            row = conn.execute(
                self.sql("SELECT value FROM {s}.kv WHERE ns = %s AND key = %s"), (ns, key)
            ).fetchone()
            if (None if row is None else bytes(row[0])) != expected:
                return False
            if value is None:
                conn.execute(self.sql("DELETE FROM {s}.kv WHERE ns = %s AND key = %s"), (ns, key))
            else:
                conn.execute(self.sql(_PUT), (ns, key, bytes(value)))
            conn.execute(self.sql("SELECT {s}.signal()"))
            return True

        return bool(self._in_transaction("compare and set a key", cas))

    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        return self._incr_with(ns, key, lambda raw: add_number(raw, amount, key))

    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        return self._incr_with(ns, key, lambda raw: add_as(raw, amount, kind, key))

    def _incr_with(
        self, ns: str, key: str, add: Callable[[bytes | None], int | float]
    ) -> int | float:
        """Store ``add(the value held)`` under the key, in one transaction under the key's lock."""

        def incr(conn: Conn) -> int | float:
            self._lock(conn, _KV_LOCK, f"{ns}\x1f{key}")
            row = conn.execute(
                self.sql("SELECT value FROM {s}.kv WHERE ns = %s AND key = %s"), (ns, key)
            ).fetchone()
            total = add(None if row is None else bytes(row[0]))
            conn.execute(self.sql(_PUT), (ns, key, json.dumps(total).encode()))
            conn.execute(self.sql("SELECT {s}.signal()"))
            return total

        result: int | float = self._in_transaction("increment a key", incr)
        return result

    def kv_set_tail(self, ns: str, key: str, head: bytes, tail: bytes) -> None:
        # One statement: the row's lock orders it after any write to the key under way.
        params = {"ns": ns, "key": key, "value": with_tail(None, head, tail), "tail": bytes(tail)}
        self._rows(
            "write a key",
            "WITH w AS (INSERT INTO {s}.kv AS t VALUES (%(ns)s, %(key)s, %(value)s) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = CASE "
            "WHEN position('\\x0a'::bytea IN t.value) > 0 "
            "THEN substring(t.value FROM 1 FOR position('\\x0a'::bytea IN t.value)) || %(tail)s "
            "ELSE excluded.value END RETURNING 1) SELECT {signal} FROM w",
            params,
        )
        self._notify()

    def kv_incr_tail(self, ns: str, key: str, head: bytes, amount: int | float) -> int | float:
        def incr(conn: Conn) -> int | float:
            self._lock(conn, _KV_LOCK, f"{ns}\x1f{key}")
            while True:  # the row locked, so kv_set_tail waits; or made here, if none was
                row = conn.execute(
                    self.sql("SELECT value FROM {s}.kv WHERE ns = %s AND key = %s FOR UPDATE"),
                    (ns, key),
                ).fetchone()
                value, total = add_to_tail(
                    None if row is None else bytes(row[0]), head, amount, key
                )
                if row is not None:
                    conn.execute(
                        self.sql("UPDATE {s}.kv SET value = %s WHERE ns = %s AND key = %s"),
                        (value, ns, key),
                    )
                    break
                made = conn.execute(
                    self.sql("INSERT INTO {s}.kv VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"),
                    (ns, key, value),
                ).rowcount
                if made:  # else a kv_set_tail made the row meanwhile: add to what it wrote
                    break
            conn.execute(self.sql("SELECT {s}.signal()"))
            return total

        result: int | float = self._in_transaction("increment a key", incr)
        return result

    def kv_clear(self, ns: str) -> int:
        return self._count(
            "clear keys",
            "WITH d AS (DELETE FROM {s}.kv WHERE ns = %s RETURNING 1) "
            "SELECT 1 FROM d, (SELECT {signal}) AS s",
            (ns,),
        )

    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        def acquire(conn: Conn) -> float | None:
            self._lock(conn, _SLOT_LOCK, name)
            sql = self.sql
            conn.execute(
                sql("DELETE FROM {s}.slots WHERE name = %s AND expires <= {s}.now()"), (name,)
            )
            renew = "UPDATE {s}.slots SET expires = {s}.now() + %s WHERE name = %s AND holder = %s"
            if conn.execute(sql(renew), (ttl, name, holder)).rowcount:
                return None
            if (
                claim is not None
                and conn.execute(
                    sql(
                        "UPDATE {s}.slots SET holder = %s, expires = {s}.now() + %s "
                        "WHERE name = %s AND holder = %s"
                    ),
                    (holder, ttl, name, f"claim:{claim}"),
                ).rowcount
            ):
                return None  # the slot kept for this job when it was readied
            held, first = conn.execute(
                sql("SELECT count(*), min(expires) - {s}.now() FROM {s}.slots WHERE name = %s"),
                (name,),
            ).fetchone() or (0, None)
            if held < limit:
                conn.execute(
                    sql("INSERT INTO {s}.slots VALUES (%s, %s, {s}.now() + %s)"),
                    (name, holder, ttl),
                )
                return None
            return max(float(first or 0.0), 0.0)

        result: float | None = self._in_transaction("acquire a slot", acquire)
        return result

    def release_slot(self, name: str, holder: str) -> bool:
        def release(conn: Conn) -> bool:
            self._lock(conn, _SLOT_LOCK, name)
            sql = self.sql
            done = conn.execute(
                sql(
                    "DELETE FROM {s}.slots WHERE name = %s AND holder = %s AND expires > {s}.now()"
                ),
                (name, holder),
            ).rowcount
            conn.execute(
                sql(
                    "DELETE FROM {s}.waiters w WHERE slot = %s AND NOT EXISTS "
                    "(SELECT 1 FROM {s}.items i WHERE i.id = w.item AND i.state = 2)"
                ),
                (name,),
            )
            first = conn.execute(
                sql(
                    "SELECT i.id FROM {s}.waiters w JOIN {s}.items i ON i.id = w.item "
                    "WHERE w.slot = %s ORDER BY i.priority, i.seq, i.id LIMIT 1"
                ),
                (name,),
            ).fetchone()
            if first is not None:
                conn.execute(sql("UPDATE {s}.items SET state = 0, due = NULL WHERE id = %s"), first)
                conn.execute(
                    sql("DELETE FROM {s}.waiters WHERE slot = %s AND item = %s"), (name, first[0])
                )
                if done:
                    conn.execute(
                        sql(
                            "INSERT INTO {s}.slots VALUES (%s, %s, {s}.now() + %s) "
                            "ON CONFLICT (name, holder) DO UPDATE SET expires = excluded.expires"
                        ),
                        (name, f"claim:{first[0]}", CLAIM_TTL),
                    )
            conn.execute(sql("SELECT {s}.signal()"))
            return bool(done)

        return bool(self._in_transaction("release a slot", release))

    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        if not holders:
            return 0
        sql = self.sql(
            "UPDATE {s}.slots SET expires = {s}.now() + %s WHERE name = %s "
            "AND expires > {s}.now() AND holder = ANY(%s)"
        )
        return int(
            self._db.run(
                "renew slots", lambda c: c.execute(sql, (ttl, name, list(holders))).rowcount
            )
        )

    def slot_holders(self, name: str) -> list[str]:
        rows = self._rows(
            "read slots",
            "SELECT holder FROM {s}.slots WHERE name = %s AND expires > {s}.now() ORDER BY holder",
            (name,),
        )
        return [r[0] for r in rows]

    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        grants = f"{_GRANTS}{name}"

        def acquire(conn: Conn) -> float:
            self._lock(conn, _RATE_LOCK, name)
            sql = self.sql
            (now,) = conn.execute(sql("SELECT {s}.now()")).fetchone() or (0.0,)
            row = conn.execute(
                sql("SELECT value FROM {s}.kv WHERE ns = %s AND key = %s"), (_RATES, name)
            ).fetchone()
            grant = None
            if ticket is not None:
                booked = conn.execute(
                    sql("DELETE FROM {s}.kv WHERE ns = %s AND key = %s RETURNING value"),
                    (grants, ticket),
                ).fetchone()
                grant = None if booked is None else float(bytes(booked[0]))
            tat = None if row is None else float(bytes(row[0]))
            wait, new_tat, keep = book(tat, grant, now, interval, burst, ticket is not None)
            if new_tat is not None:
                conn.execute(sql(_PUT), (_RATES, name, repr(new_tat).encode()))
            if keep is not None:
                conn.execute(sql(_PUT), (grants, ticket, repr(keep).encode()))
            if random.random() < 0.01:  # bookings of jobs that went away
                stale = [
                    k
                    for k, v in conn.execute(
                        sql("SELECT key, value FROM {s}.kv WHERE ns = %s"), (grants,)
                    ).fetchall()
                    if _seconds(bytes(v)) < now - 600
                ]
                conn.execute(
                    sql("DELETE FROM {s}.kv WHERE ns = %s AND key = ANY(%s)"), (grants, stale)
                )
            return wait

        result: float = self._in_transaction("acquire a rate limit", acquire)
        return result
