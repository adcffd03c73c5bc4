"""Meta that a workflow step adds to the jobs it enqueues (see :mod:`baozi.workflows`)."""

from __future__ import annotations

import contextvars

__all__ = ["FEED", "WORKFLOW_META"]

FEED = "baozi.feed"
"""The meta key of a job fed its dependencies' results: "one" (the value of its single
dependency) or "list" (the values of all of them, in order)."""

WORKFLOW_META: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "baozi_workflow_meta", default=None
)
"""The meta the step being enqueued adds to its job's call: how its dependencies' results feed
it."""
