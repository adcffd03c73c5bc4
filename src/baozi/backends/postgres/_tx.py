"""The caller's own connection, for enqueueing inside the caller's transaction.

Accepted: a psycopg 3 connection; a SQLAlchemy ``Connection`` or ``Session`` on the psycopg 3
driver (``postgresql+psycopg://``); and anything whose ``.connection`` is a psycopg 3
connection (Django's ``django.db.connection`` once connected).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ...errors import NotSupported

_ACCEPTED = (
    "a psycopg 3 connection, a SQLAlchemy Connection or Session on the psycopg 3 driver "
    "(postgresql+psycopg://), or Django's connection on psycopg 3"
)


def driver_connection(connection: object, where: str) -> psycopg.Connection[Any]:
    """The psycopg 3 connection behind ``connection``; NotSupported naming what is accepted."""
    if isinstance(connection, psycopg.Connection):
        return connection
    inner: Any = None
    kind = type(connection)
    if kind.__module__.startswith("sqlalchemy"):
        # A Session hands out its Connection; a Connection wraps the driver's connection.
        if callable(getattr(connection, "connection", None)):
            connection = connection.connection()  # type: ignore[attr-defined]
        pooled = getattr(connection, "connection", None)
        inner = getattr(pooled, "driver_connection", None)
        in_transaction = getattr(connection, "in_transaction", None)
        if isinstance(inner, psycopg.Connection) and callable(in_transaction):
            if not in_transaction():
                # Begun through SQLAlchemy, so that its commit() and rollback() end what runs
                # here (only once the driver is known to be psycopg 3).
                connection.begin()  # type: ignore[attr-defined]
    else:
        ensure = getattr(connection, "ensure_connection", None)
        if callable(ensure):  # Django connects at its first query
            ensure()
        inner = getattr(connection, "connection", None)
    if isinstance(inner, psycopg.Connection):
        return inner
    raise NotSupported(
        f"enqueueing in a transaction of {kind.__module__}.{kind.__qualname__}",
        where,
        f"it is not a psycopg 3 connection (psycopg2 cannot be used): pass {_ACCEPTED}",
    )


def check_same_database(conn: psycopg.Connection[Any], conninfo: str, where: str) -> None:
    """ValueError unless ``conn`` reaches the store's database (its name and port)."""
    store = conninfo_to_dict(conninfo)
    want_db = store.get("dbname") or store.get("user")
    want_port = str(store.get("port") or 5432)
    info = conn.info
    if (want_db and info.dbname != want_db) or str(info.port) != want_port:
        raise ValueError(
            f"connection= reaches database {info.dbname!r} on port {info.port}, but the store "
            f"is {where}: pass a connection to the store's own database"
        )
