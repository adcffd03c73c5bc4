"""``postgresql://user@host:5432/db?schema=baozi``: the PostgreSQL store (psycopg 3).

Every table lives in the URL's schema (``baozi`` by default), made on first use, so one database
can hold several stores. Reservations use ``FOR UPDATE SKIP LOCKED``; a process that waits for
changes LISTENs on the store's channel, and writes NOTIFY only while some process waits.
``?retry=SECONDS`` is how long a call keeps retrying while the server is out of reach;
``?poll=SECONDS`` replaces LISTEN with a poll, for poolers that drop it (pgbouncer in
transaction mode). Other query parameters go to libpq (``sslmode``, ``application_name``, ...).
"""

from .jobs import PostgresStore

__all__ = ["PostgresStore"]
