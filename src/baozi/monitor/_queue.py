"""``--via-queue``: one job per URL, checked by workers anywhere, waited for here."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..app import App
from ._check import Check
from ._task import TASK, check_url

__all__ = ["check_via_queue"]


def check_via_queue(
    app: App,
    urls: list[str],
    expect: int,
    timeout: float,
    on_done: Callable[[Check], object] | None = None,
    wait: float | None = None,
) -> list[Check]:
    """Enqueue one ``check_url`` job per URL and wait for workers to run them all."""
    task = app.tasks.get(TASK) or app.task(name=TASK)(check_url)
    jobs = task.map([(u, expect, timeout) for u in urls])
    results: dict[str, Check] = {}
    deadline = None if wait is None else time.monotonic() + wait
    for job, url in zip(jobs, urls, strict=True):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            fields = job.result(timeout=left)
            check = Check(**fields)
        except TimeoutError:
            check = Check(url, False, None, 0.0, "no worker checked it in time")
        except Exception as exc:  # the job failed in the worker: still a reason, not a trace
            check = Check(url, False, None, 0.0, f"the check failed in the worker: {exc}")
        results[job.id] = check
        if on_done is not None:
            on_done(check)
    return [results[j.id] for j in jobs]
