"""``baozi workers | schedules``: the workers a store knows, and the periodic tasks of an app."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from .._time import age, iso
from ..backends.base import Store, WorkerInfo
from ..beat import Schedule, ScheduleRuns, schedule_runs
from ._tables import whole_table_console
from .loading import existing_app, load_app
from .options import app_url_option, url_option

STALE_AFTER = 20.0
"""Seconds without a heartbeat after which a worker is marked stale: a worker beats every third
of its app's lease, so at the default lease (30 s) this is two missed beats."""


def _pid_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process
        return False
    return False


def worker_state(info: WorkerInfo, now: float, stale_after: float, host: str) -> str:
    """``dead`` (on this host, its process is gone), ``stale`` (no heartbeat for
    ``stale_after`` seconds) or ``alive``."""
    if info.host == host and _pid_gone(info.pid):
        return "dead"
    return "stale" if now - info.last_seen > stale_after else "alive"


def _worker_rows(store: Store, stale_after: float) -> list[dict[str, Any]]:
    found = sorted(store.workers(), key=lambda w: (w.host, w.pid, w.id))
    queues = sorted({q for w in found for q in w.queues})
    held = store.lease_holders(queues) if queues else {}  # now, where a heartbeat may be old
    now, host = time.time(), socket.gethostname()
    return [
        {
            "id": w.id,
            "host": w.host,
            "pid": w.pid,
            "pool": w.pool,
            "busy": min(held.get(w.id, 0), w.concurrency),
            "slots": w.concurrency,
            "queues": list(w.queues),
            "started_at": iso(w.started_at),
            "last_heartbeat": iso(w.last_seen),
            "heartbeat_age": round(max(now - w.last_seen, 0.0), 3),
            "state": worker_state(w, now, stale_after, host),
        }
        for w in found
    ]


@click.command()
@click.option(
    "--stale-after",
    type=click.FloatRange(min=0, min_open=True),
    default=STALE_AFTER,
    show_default=True,
    metavar="S",
    help="Mark a worker stale when its last heartbeat is older than S seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the workers as a JSON array.")
@url_option
def workers(stale_after: float, as_json: bool, url: str | None) -> None:
    """List the workers registered in the store: where they run, how busy they are, their last
    heartbeat; a stale one has missed heartbeats, a dead one's process is gone from this host.
    A worker that stopped for good leaves the list when its heartbeat runs out (a lease)."""
    store = existing_app(url).store
    rows = _worker_rows(store, stale_after)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{len(rows)} worker(s) in {store.location}")
    table = Table()
    for col in ("id", "host", "pid", "pool", "busy", "queues", "last heartbeat", "state"):
        table.add_column(col, justify="right" if col in ("pid", "busy") else "left")
    for r in rows:
        state = {"alive": "alive", "stale": "[yellow]stale[/]", "dead": "[red]dead[/]"}[r["state"]]
        table.add_row(
            escape(r["id"]),
            escape(r["host"]),
            str(r["pid"]),
            r["pool"],
            f"{r['busy']}/{r['slots']}",
            escape(", ".join(r["queues"])),
            f"{r['last_heartbeat']} ({age(r['heartbeat_age'])} ago)",
            state,
        )
    whole_table_console(table).print(table)


def _when(schedule: Schedule) -> str:
    return schedule.describe()


def _call(schedule: Schedule) -> str:
    args = [repr(a) for a in schedule.args]
    args += [f"{k}={v!r}" for k, v in schedule.kwargs.items()]
    return f"{schedule.task.name}({', '.join(args)})"


def _schedule_row(runs: ScheduleRuns, now: float) -> dict[str, Any]:
    s = runs.schedule
    return {
        "task": s.task.name,
        "queue": s.task.queue,
        "call": _call(s),
        "cron": s.cron,
        "tz": s.tz if s.cron is not None else None,
        "every": s.every,
        "last_run": None if runs.last_run is None else iso(runs.last_run),
        "next_run": iso(runs.next_run),
        "overdue": runs.next_run < now,
        "counting_since": None if runs.counting_since is None else iso(runs.counting_since),
    }


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as a JSON array.")
@app_url_option
def schedules(app_path: str, as_json: bool, url: str | None) -> None:
    """List the periodic tasks of MODULE:APP: their schedule, and their last and next run as
    the store knows them (shared by every scheduler). A next run in the past is overdue: no
    scheduler (`baozi beat`, `baozi worker --beat`) has enqueued it."""
    app = load_app(app_path, url)
    now = time.time()
    rows = [_schedule_row(r, now) for r in schedule_runs(app, now)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{len(rows)} schedule(s) of {app_path} in {app.store.location}")
    table = Table()
    for col in ("task", "queue", "schedule", "last run", "next run"):
        table.add_column(col)
    for schedule, r in zip(app.schedules, rows, strict=True):
        table.add_row(
            escape(r["call"]),
            escape(r["queue"]),
            escape(_when(schedule)),
            r["last_run"] or "never",
            r["next_run"] + (" [red](overdue)[/]" if r["overdue"] else ""),
        )
    whole_table_console(table).print(table)
