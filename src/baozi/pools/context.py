"""Running a call with ``current_job()`` pointing at its job, in whatever thread or process."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from ..jobs import _current
from .base import Call


def run_with_job(call: Call) -> Any:
    """Run a plain (or, in a process, async) function as the call's job."""
    # The call itself stands for the job until current_job() asks for a handle, so a task that
    # never asks costs no Job object.
    token = _current.set(call if call.job_id else None)
    try:
        result = call.fn(*call.args, **call.kwargs)
        if inspect.iscoroutine(result):  # an async task outside the async pool: give it a loop
            result = asyncio.run(result)
        return result
    finally:
        _current.reset(token)
