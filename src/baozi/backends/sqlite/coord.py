"""The coordination half of the SQLite store: keys and values, slots, rate limits.

Each step is one write transaction (``BEGIN IMMEDIATE``), so a read and the write that depends on it
are atomic across every process on the file.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import StoreError
from .._coord import add_as, add_number, add_to_tail, book, with_tail
from ..base import CLAIM_TTL
from .store import LEASED, READY, SCHEDULED, SQLiteQueues, _chunks, _sql_for

__all__ = ["SQLiteCoordination"]

_RATES = "baozi.rate"  # the kv namespace holding each rate limit's next due time
_GRANTS = "baozi.rate-booked:"  # + the rate's name: the kv namespace of its bookings


class SQLiteCoordination(SQLiteQueues):
    def _one(self, sql: str, params: Any) -> Any:
        rows = self._read(sql, params)
        return rows[0][0] if rows else None

    def kv_get(self, ns: str, key: str) -> bytes | None:
        value: bytes | None = self._one(
            "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (ns, key)
        )
        return value

    def kv_items(self, ns: str) -> dict[str, bytes]:
        rows = self._read(
            "SELECT CAST(key AS BLOB), value FROM baozi_kv WHERE ns=? ORDER BY key", (ns,)
        )
        out, bad = {}, []
        for key, value in rows:
            try:
                out[key.decode()] = value
            except (UnicodeDecodeError, AttributeError):
                bad.append(key)
        if bad:  # a key no one can name: moved aside, so the others can be listed
            self._move("baozi_kv", "CAST(key AS BLOB)", bad, "the key is no UTF-8 text")
        return out

    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO baozi_kv VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value=excluded.value",
                (ns, key, bytes(value)),
            )

    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO baozi_kv VALUES (?, ?, ?)", (ns, key, bytes(value)))
            row = conn.execute(
                "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (ns, key)
            ).fetchone()
        held: bytes = row[0]
        return held

    def kv_delete(self, ns: str, key: str) -> bytes | None:
        with self._write() as conn:
            row = conn.execute(
                "DELETE FROM baozi_kv WHERE ns=? AND key=? RETURNING value", (ns, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (ns, key)
            ).fetchone()
            if (None if row is None else bytes(row[0])) != expected:
                return False
            if value is None:
                conn.execute("DELETE FROM baozi_kv WHERE ns=? AND key=?", (ns, key))
            else:
                conn.execute(
                    "INSERT INTO baozi_kv VALUES (?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET value=excluded.value",
                    (ns, key, bytes(value)),
                )
            return True

    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        return self._incr_with(ns, key, lambda raw: add_number(raw, amount, key))

    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        return self._incr_with(ns, key, lambda raw: add_as(raw, amount, kind, key))

    def _incr_with(
        self, ns: str, key: str, add: Callable[[bytes | None], int | float]
    ) -> int | float:
        """Store ``add(the value held)`` under the key, in one write transaction."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (ns, key)
            ).fetchone()
            total = add(None if row is None else bytes(row[0]))
            conn.execute(
                "INSERT INTO baozi_kv VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value=excluded.value",
                (ns, key, json.dumps(total).encode()),
            )
        return total

    def kv_set_tail(self, ns: str, key: str, head: bytes, tail: bytes) -> None:
        self._put_with(ns, key, lambda raw: (with_tail(raw, head, tail), None))

    def kv_incr_tail(self, ns: str, key: str, head: bytes, amount: int | float) -> int | float:
        total: int | float = self._put_with(
            ns, key, lambda raw: add_to_tail(raw, head, amount, key)
        )
        return total

    def _put_with(
        self, ns: str, key: str, make: Callable[[bytes | None], tuple[bytes, Any]]
    ) -> Any:
        """Store the first of ``make(the value held)`` under the key, in one write transaction;
        return the second."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (ns, key)
            ).fetchone()
            value, result = make(None if row is None else bytes(row[0]))
            conn.execute(
                "INSERT INTO baozi_kv VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value=excluded.value",
                (ns, key, value),
            )
        return result

    def kv_clear(self, ns: str) -> int:
        with self._write() as conn:
            return int(conn.execute("DELETE FROM baozi_kv WHERE ns=?", (ns,)).rowcount)

    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        with self._write() as conn:
            now = time.time()
            conn.execute("DELETE FROM baozi_slots WHERE name=? AND expires<=?", (name, now))
            renewed = conn.execute(
                "UPDATE baozi_slots SET expires=? WHERE name=? AND holder=?",
                (now + ttl, name, holder),
            ).rowcount
            if renewed:
                return None
            if (
                claim is not None
                and conn.execute(
                    "UPDATE baozi_slots SET holder=?, expires=? WHERE name=? AND holder=?",
                    (holder, now + ttl, name, f"claim:{claim}"),
                ).rowcount
            ):
                return None  # the slot kept for this job when it was readied
            held, first = conn.execute(
                "SELECT count(*), min(expires) FROM baozi_slots WHERE name=?", (name,)
            ).fetchone()
            if held < limit:
                conn.execute("INSERT INTO baozi_slots VALUES (?, ?, ?)", (name, holder, now + ttl))
                return None
            return max(float(first) - now, 0.0)

    def release_slot(self, name: str, holder: str) -> bool:
        db = self._db
        try:
            conn = db.conn()
            waiting = conn.execute(
                "SELECT 1 FROM baozi_waiters WHERE slot=? LIMIT 1", (name,)
            ).fetchone()
            if waiting is None:  # a job that parks after this finds the slot free as it settles
                done = conn.execute(  # one statement: atomic by itself
                    "DELETE FROM baozi_slots WHERE name=? AND holder=? AND expires>?",
                    (name, holder, time.time()),
                ).rowcount
                if done:
                    db.signal.notify()
                return bool(done)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc
        return self._release_to_waiter(name, holder)

    def _release_to_waiter(self, name: str, holder: str) -> bool:
        """Release, make the first job waiting for the slot (in queue order) ready, and keep the
        freed slot for it: one step."""
        with self._write() as conn:
            now = time.time()
            done = conn.execute(
                "DELETE FROM baozi_slots WHERE name=? AND holder=? AND expires>?",
                (name, holder, now),
            ).rowcount
            conn.execute(
                "DELETE FROM baozi_waiters WHERE slot=? AND item NOT IN "
                "(SELECT id FROM baozi_items WHERE state=2)",
                (name,),
            )
            first = conn.execute(
                "SELECT i.id FROM baozi_waiters w JOIN baozi_items i ON i.id = w.item "
                "WHERE w.slot=? ORDER BY i.priority, i.seq, i.id LIMIT 1",
                (name,),
            ).fetchone()
            if first is not None:
                conn.execute("UPDATE baozi_items SET state=0, due=NULL WHERE id=?", first)
                conn.execute("DELETE FROM baozi_waiters WHERE slot=? AND item=?", (name, first[0]))
                if done:
                    conn.execute(
                        "INSERT OR REPLACE INTO baozi_slots VALUES (?, ?, ?)",
                        (name, f"claim:{first[0]}", now + CLAIM_TTL),
                    )
        return bool(done)

    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        if not holders:
            return 0
        now = time.time()
        done = 0
        with self._write() as conn:
            for i in range(0, len(holders), 500):
                chunk = list(holders[i : i + 500])
                marks = ", ".join("?" * len(chunk))
                done += conn.execute(
                    f"UPDATE baozi_slots SET expires=? WHERE name=? AND expires>? "
                    f"AND holder IN ({marks})",
                    (now + ttl, name, now, *chunk),
                ).rowcount
        return done

    def slot_holders(self, name: str) -> list[str]:
        rows = self._read(
            "SELECT holder FROM baozi_slots WHERE name=? AND expires>? ORDER BY holder",
            (name, time.time()),
        )
        return [r[0] for r in rows]

    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        grants = f"{_GRANTS}{name}"
        put = "INSERT INTO baozi_kv VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value=excluded.value"
        with self._write() as conn:
            now = time.time()
            row = conn.execute(
                "SELECT value FROM baozi_kv WHERE ns=? AND key=?", (_RATES, name)
            ).fetchone()
            grant = None
            if ticket is not None:
                booked = conn.execute(
                    "DELETE FROM baozi_kv WHERE ns=? AND key=? RETURNING value", (grants, ticket)
                ).fetchone()
                grant = None if booked is None else float(booked[0])
            wait, tat, keep = book(
                None if row is None else float(row[0]),
                grant,
                now,
                interval,
                burst,
                ticket is not None,
            )
            if tat is not None:
                conn.execute(put, (_RATES, name, repr(tat).encode()))
            if keep is not None:
                conn.execute(put, (grants, ticket, repr(keep).encode()))
            if random.random() < 0.01:  # bookings of jobs that went away
                conn.execute(
                    "DELETE FROM baozi_kv WHERE ns=? AND CAST(value AS REAL) < ?",
                    (grants, now - 600),
                )
        return wait

    def discard(self, queue: str, ids: Sequence[str]) -> int:
        qid = self._rqid(queue)
        done = 0
        with self._write() as conn:
            now = time.time()
            for chunk in _chunks(ids):
                done += conn.execute(
                    _sql_for(
                        f"DELETE FROM baozi_items WHERE qid=? AND (state IN ({READY}, {SCHEDULED}) "
                        f"OR (state={LEASED} AND due<=?)) AND id IN ({{marks}})",
                        len(chunk),
                    ),
                    (qid, now, *chunk),
                ).rowcount
        return done
