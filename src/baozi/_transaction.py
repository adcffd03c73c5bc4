"""The database connection whose transaction enqueues join (``with app.transaction(conn):``)."""

from __future__ import annotations

from contextvars import ContextVar

ENQUEUE_CONNECTION: ContextVar[object | None] = ContextVar("baozi_enqueue_connection", default=None)
"""Set by :meth:`baozi.App.transaction` for the code inside its block (this thread or task)."""
