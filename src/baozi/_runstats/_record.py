"""A worker's side of the run statistics: each run counted in memory as it is settled, and
added to the store's shared buckets and attempt logs every few seconds by a thread of its own."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from typing import Any

from .._outage import outage
from ..backends.base import Item, Store
from ._layout import STEP, attempts_ns, hist_index, hour_of, kept_from, merge, runs_ns
from ._prune import prune

__all__ = ["FLUSH_EVERY", "RunStats"]

log = logging.getLogger("baozi.worker")

FLUSH_EVERY = 3.0
"""How often a worker adds what it counted to the store, in seconds."""
PRUNE_EVERY = 600.0
PRUNE_HOURS = 6
"""Hours of each family a prune clears at most: a few calls every ten minutes, more than the
one hour that ages out in that time."""
"""How often a worker's flusher prunes the namespaces that have aged out, in seconds."""
KEPT_ATTEMPTS = 100
"""The most entries a job's attempt log keeps: its latest."""
_MESSAGE = 1000  # characters of an error message kept in an attempt log

_OUTCOMES = {"succeeded": "succeeded", "failed": "failed", "retry": "retried"}
_COLUMN = {"succeeded": 0, "failed": 1, "retry": 1}


class _Counts:
    """One bucket's runs of one task: succeeded, failed (retried or not), retried, run times."""

    __slots__ = ("counts", "hist")

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.hist: dict[int, int] = {}


class RunStats:
    """The runs a worker settled, by 10-second bucket (of the time the run ended), queue and
    task, and the attempt log entries it has yet to write. :meth:`ran` is all the worker's loop
    calls: a dict update under a lock, with no store call."""

    def __init__(self, store: Store, worker_id: str, *, flush_every: float = FLUSH_EVERY) -> None:
        self.store = store
        self.worker_id = worker_id
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._runs: dict[tuple[int, str, str], _Counts] = {}
        self._attempts: list[tuple[str, dict[str, Any]]] = []
        # The flusher's own: what it has yet to write (a write that failed is tried again).
        self._flushing = threading.Lock()
        self._pending_runs: dict[tuple[str, int], Any] = {}  # (resolution, bucket): counts
        self._pending_logs: dict[tuple[int, str], list[dict[str, Any]]] = {}  # (hour, job)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The first prune comes a while after the start, as the next ones do: a worker that
        # starts (or idles) makes no burst of store calls for it.
        self._pruned = time.monotonic()  # monotonic time of the last prune
        self._who = f"worker {worker_id}, writing run statistics"
        self._wall = time.time() - time.monotonic()  # the wall clock less the monotonic one

    # -- counting (the worker's loop) ---------------------------------------------------------

    def ran(
        self,
        queue: str,
        item: Item,
        status: str,
        started: float,
        seconds: float | None,
        error: str | None,
    ) -> None:
        """Count one settled run of ``item``: ``status`` is its outcome's ("succeeded", "failed",
        "retry"; a "deferred" job did not run and counts nothing). ``started`` is when it began
        (``time.monotonic()``), ``seconds`` how long it ran; None for a job refused without
        running, which counts as failed with no run time. A run that did not succeed, or a job's
        run after an earlier attempt, is entered in the job's attempt log as well."""
        column = _COLUMN.get(status)
        if column is None:
            return
        # When it ended, by the wall clock (it may have ended a moment before it was settled).
        ran_for = seconds or 0.0
        finished = started + ran_for + self._wall
        key = (int(finished) // 10 * 10, queue, item.task or "")
        index = hist_index(seconds) if seconds is not None else None
        with self._lock:
            counts = self._runs.get(key)
            if counts is None:
                counts = self._runs[key] = _Counts()
            counts.counts[column] += 1
            if status == "retry":
                counts.counts[2] += 1
            if index is not None:
                counts.hist[index] = counts.hist.get(index, 0) + 1
        if status != "succeeded" or item.failures or item.deliveries > 1:
            entry = {
                "attempt": item.deliveries,
                "worker": self.worker_id,
                "started_at": finished - ran_for,
                "finished_at": finished,
                "outcome": _OUTCOMES[status],
                "error": _error(error) if status != "succeeded" else None,
            }
            with self._lock:
                self._attempts.append((item.id, entry))

    # -- flushing (a thread of its own) -------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="baozi-runstats", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the flusher, and add what is left to the store (once: a store that fails now
        loses these counts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():  # stuck in a call to a store that does not answer
                log.warning("worker %s: its last run statistics are not written", self.worker_id)
                return
            self._thread = None
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 -- logged; the counts are only statistics
            log.warning(
                "worker %s: writing its last run statistics failed: %s", self.worker_id, exc
            )
        outage(self.store.url).withdraw(self._who)

    def _run(self) -> None:
        health = outage(self.store.url)
        while not self._stop.wait(self.flush_every):
            try:
                self.flush()
                if time.monotonic() - self._pruned >= PRUNE_EVERY:
                    prune(self.store, limit=PRUNE_HOURS)
                    self._pruned = time.monotonic()
                health.ok(self._who)
            except Exception as exc:  # the store may be back at the next flush
                health.failed(exc, self._who)

    def flush(self, now: float | None = None) -> None:
        """Add every count and attempt log entry taken so far to the store. A write that fails
        is kept for the next flush; raises the store's error."""
        self._wall = time.time() - time.monotonic()  # (set again: the wall clock may be set)
        now = time.time() if now is None else now
        with self._flushing:  # (close() flushes too, should the flusher still be at it)
            with self._lock:
                runs, self._runs = self._runs, {}
                attempts, self._attempts = self._attempts, []
            for at, delta in _by_bucket(runs).items():
                was = self._pending_runs.get(at)
                self._pending_runs[at] = delta if was is None else _add_runs(was, delta)
            if attempts:
                self._log_attempts(attempts, now)
            self._write(now)

    def _log_attempts(self, attempts: list[tuple[str, dict[str, Any]]], now: float) -> None:
        try:  # the namespace goes by when the job was made: its record says
            records = self.store.records_of(sorted({job for job, _ in attempts}))
        except Exception:
            with self._lock:
                self._attempts[:0] = attempts
            raise
        oldest = kept_from("attempts", now)
        for job, entry in attempts:
            record = records.get(job)
            if record is None:  # gone already: nobody can ask for its log
                continue
            hour = hour_of(record.created_at)
            if hour >= oldest:  # (an older job's log would land in an hour already pruned)
                self._pending_logs.setdefault((hour, job), []).append(entry)

    def _write(self, now: float) -> None:
        for (resolution, bucket), delta in list(self._pending_runs.items()):
            hour = hour_of(bucket)
            if hour < kept_from(f"runs.{resolution}", now):  # its hour is pruned, or soon
                written = True
            else:
                add = functools.partial(_add_runs, delta=delta)
                written = merge(self.store, runs_ns(resolution, hour), str(bucket), add)
            if written:
                del self._pending_runs[(resolution, bucket)]
        for (hour, job), entries in list(self._pending_logs.items()):
            add = functools.partial(_add_entries, delta=entries)
            if merge(self.store, attempts_ns(hour), job, add):
                del self._pending_logs[(hour, job)]


def _error(text: str | None) -> dict[str, str] | None:
    """The type and message of an error as the store keeps it (JSON; see ``error_text``)."""
    if text is None:
        return None
    try:
        found = json.loads(text)
        return {"type": str(found["type"]), "message": str(found["message"])[:_MESSAGE]}
    except (ValueError, KeyError, TypeError):
        return {"type": "", "message": text[:_MESSAGE]}


def _by_bucket(runs: dict[tuple[int, str, str], _Counts]) -> dict[tuple[str, int], Any]:
    """The counts as the store keeps them: per resolution and bucket start, JSON-ready
    ``{queue: {task: [succeeded, failed, retried, {bin: count}]}}``."""
    out: dict[tuple[str, int], Any] = {}
    for (bucket, queue, task), c in runs.items():
        value = [*c.counts, {str(i): n for i, n in c.hist.items()}]
        for resolution, step in STEP.items():
            at = out.setdefault((resolution, bucket // step * step), {})
            _add_runs(at, {queue: {task: value}})
    return out


def _add_runs(old: Any, delta: Any) -> Any:
    """``old`` (a bucket's value, or None) with the counts of ``delta`` added (in place)."""
    out = old if old is not None else {}
    for queue, tasks in delta.items():
        here = out.setdefault(queue, {})
        for task, (s, f, r, hist) in tasks.items():
            was = here.setdefault(task, [0, 0, 0, {}])
            was[0] += s
            was[1] += f
            was[2] += r
            for i, n in hist.items():
                was[3][i] = was[3].get(i, 0) + n
    return out


def _add_entries(old: Any, delta: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A job's attempt log with ``entries`` added, in attempt order, the latest kept."""
    log_ = list(old or []) + delta
    log_.sort(key=lambda e: (e["attempt"], e["started_at"]))
    return log_[-KEPT_ATTEMPTS:]
