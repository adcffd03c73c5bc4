"""``--via-queue``: one job per URL, checked by workers anywhere, waited for here."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..app import App
from ..backends.base import JobRecord
from ..jobs import FINISHED, Job
from ._check import Check
from ._task import TASK, check_url

__all__ = ["check_via_queue"]

WINDOW = 500
"""Unfinished jobs asked about per store read, the oldest first: workers take jobs in their order,
so the ones that finish next are among them, and each read stays small however long the list."""

GAP = 0.01
"""Least seconds between two reads: each read then finds a batch of jobs finished, not one."""


def check_via_queue(
    app: App,
    urls: list[str],
    expect: int,
    timeout: float,
    on_done: Callable[[Check], object] | None = None,
    wait: float | None = None,
) -> list[Check]:
    """Enqueue one ``check_url`` job per URL (in one store call) and wait for workers to run them
    all; results in input order, ``on_done`` called for each as it is found finished."""
    task = app.tasks.get(TASK) or app.task(name=TASK)(check_url)
    jobs = task.map([(u, expect, timeout) for u in urls])
    store = app.store
    results: list[Check | None] = [None] * len(urls)
    pending = list(range(len(jobs)))  # places in ``urls`` of the jobs not seen finished yet
    deadline = None if wait is None else time.monotonic() + wait
    while pending:
        token = store.change_token()  # taken before the read, so no change slips between
        read = time.monotonic()
        window = pending[:WINDOW]
        statuses = store.statuses([jobs[i].id for i in window])
        # A job the store no longer has is finished (its record was purged): it is read below.
        done = [i for i in window if statuses.get(jobs[i].id, "succeeded") in FINISHED]
        if done:
            records = store.records_of([jobs[i].id for i in done])
            for i in done:
                check = results[i] = _outcome(jobs[i], urls[i], records.get(jobs[i].id))
                if on_done is not None:
                    on_done(check)
            pending = [i for i in pending if results[i] is None]
            if len(done) == len(window):
                continue  # the whole window finished: more may have, beyond it
        if not pending:
            break
        left = 60.0 if deadline is None else deadline - time.monotonic()
        if left <= 0:
            break
        store.wait_for_change(token, left)
        time.sleep(max(0.0, min(GAP - (time.monotonic() - read), left)))
    for i in pending:  # only at the deadline
        check = results[i] = Check(urls[i], False, None, 0.0, "no worker checked it in time")
        if on_done is not None:
            on_done(check)
    return [check for check in results if check is not None]  # every one by now


def _outcome(job: Job, url: str, record: JobRecord | None) -> Check:
    """The check a finished job's record holds; a job that failed in the worker is a reason too."""
    if record is None:
        return Check(url, False, None, 0.0, "its job's record is gone from the store")
    try:
        return Check(**job._outcome(record))  # what Job.result returns, from this record
    except Exception as exc:  # the job failed in the worker: still a reason, not a trace
        return Check(url, False, None, 0.0, f"the check failed in the worker: {exc}")
