"""``baozi enqueue | status | jobs | retry | cancel | forget | purge | queues``: jobs from the
shell."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from .._time import iso
from ..app import App
from ..backends.base import STATUSES, JobRecord
from ..jobs import FINISHED
from ..snapshot import JobSnapshot, snapshot_of
from ._tables import whole_table_console
from .loading import existing_app as _existing
from .loading import load_app
from .options import FAILED, NOT_FOUND, app_url_option, transport_option, url_option


def _app(url: str | None) -> App:
    return App(url)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc}") from exc


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.argument("task_name")
@click.argument("args_json", default="[]")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--priority", type=float, default=None, help="Lower runs first.")
@click.option("--delay", type=float, default=None, help="Seconds before the job becomes ready.")
@click.option("--queue", default=None, help="Queue (default: the task's).")
@click.option("--front", is_flag=True, help="Put the job at the head of its queue.")
@app_url_option
@transport_option
def enqueue(
    app_path: str,
    task_name: str,
    args_json: str,
    kwargs_json: str,
    priority: float | None,
    delay: float | None,
    queue: str | None,
    front: bool,
    url: str | None,
    transport: str | None,
) -> None:
    """Enqueue TASK_NAME of the app MODULE:APP with ARGS_JSON (a JSON array); print the job id
    and its position."""
    app = load_app(app_path, url, transport)
    task = app.tasks.get(task_name)
    if task is None:
        raise click.BadParameter(
            f"no task {task_name!r} in {app_path}; known: {', '.join(sorted(app.tasks))}"
        )
    args, kwargs = _json(args_json, "ARGS_JSON"), _json(kwargs_json, "--kwargs")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise click.BadParameter("ARGS_JSON must be a JSON array and --kwargs a JSON object")
    prio = None if priority is None else int(priority) if priority.is_integer() else priority
    job = task.apply_async(args, kwargs, queue=queue, priority=prio, delay=delay, front=front)
    snap = job.snapshot()  # its status and its place, read together
    click.echo(f"{job.id}\t{_where(snap)}")


def _where(snap: JobSnapshot) -> str:
    """Where a job stands, for the line ``enqueue`` prints: "position 3" when it is in line,
    else what it is doing ("scheduled for ...", "running", ...)."""
    if snap.status == "queued" and snap.position is not None:
        return f"position {snap.position}"
    return snap.describe()


def _eta(snap: JobSnapshot) -> str:
    if snap.eta_seconds is None:
        if snap.status == "waiting":
            return "not known yet (it waits for other jobs to end)"
        return "not known yet (no live worker serves its queue, or no run of its task is known)"
    return f"about {snap.eta_seconds:.1f} s"


@click.command()
@click.argument("job_id")
@url_option
def status(job_id: str, url: str | None) -> None:
    """Show the job JOB_ID: status, position, attempts, times, and its result or error."""
    app = _existing(url)
    place = app.store.job_snapshot(job_id)  # the record and its place, read at one moment
    if place is None:
        click.echo(f"no job {job_id!r} in {app.store.location}", err=True)
        sys.exit(NOT_FOUND)
    rec, snap = place.record, snapshot_of(app.store, place)
    lines = [
        ("store", app.store.location),
        ("job", rec.id),
        ("task", rec.task),
        ("queue", rec.queue),
        ("status", snap.describe()),
    ]
    if snap.status not in FINISHED:
        lines.append(("done in", _eta(snap)))
    lines += [
        ("attempts", str(rec.attempts)),
        ("created", iso(rec.created_at)),
        ("started", iso(rec.started_at)),
        ("finished", iso(rec.finished_at)),
    ]
    if rec.due_at is not None:
        lines.append(("due", iso(rec.due_at)))
    if rec.unique_key is not None:
        lines.append(("unique key", rec.unique_key))
    if rec.parents:
        lines.append(("depends on", ", ".join(rec.parents)))
        lines.append(("if one fails", rec.on_dependency_failure))
    if rec.children:
        lines.append(("needed by", ", ".join(rec.children)))
    if rec.status == "succeeded" and rec.result is not None:
        lines.append(("result", repr(app.codec.loads(rec.result))))
    if rec.error:
        error = json.loads(rec.error)
        lines.append(("error", f"{error.get('type')}: {error.get('message')}"))
    width = max(9, *(len(key) for key, _ in lines))
    for key, value in lines:
        click.echo(f"{key:>{width}}  {value}")


@click.command("queues")
@url_option
def queues_cmd(url: str | None) -> None:
    """A table of every queue: jobs waiting, ready, scheduled, running, failed and done."""
    app = _existing(url)
    click.echo(f"queues in {app.store.location}")  # a line of its own: a title would wrap
    table = Table()
    for col in ("queue", "waiting", "ready", "scheduled", "running", "failed", "done"):
        table.add_column(col, justify="left" if col == "queue" else "right")
    for name in app.store.queues():
        if name.startswith("deque:"):
            continue
        c = app.store.job_counts(name)
        table.add_row(
            name,
            *(str(c.get(k, 0)) for k in ("waiting", "queued", "scheduled", "running", "failed")),
            str(c["succeeded"] + c["cancelled"]),
        )
    console = whole_table_console(table)
    console.print(table)
    for warning in app.store.warnings():
        console.print(f"[bold red]warning:[/] {warning}", markup=True, highlight=False)


@click.command("jobs")
@click.option("--queue", default=None, help="Only the jobs of this queue.")
@click.option(
    "--status",
    "status_",
    type=click.Choice(STATUSES),
    default=None,
    help="Only jobs in this status.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Jobs to list at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as a JSON array.")
@url_option
def jobs_cmd(
    queue: str | None, status_: str | None, limit: int, as_json: bool, url: str | None
) -> None:
    """List jobs, newest first: when a scheduled job is due, what a waiting job waits for."""
    app = _existing(url)
    records = app.store.records(queue, status_, limit)
    parents = [p for rec in records if rec.status == "waiting" for p in rec.parents]
    ended = app.store.statuses(parents) if parents else {}
    if as_json:
        click.echo(json.dumps([_job_json(rec, ended) for rec in records], indent=2))
        return
    click.echo(f"jobs in {app.store.location}")
    table = Table()
    for col in ("id", "task", "queue", "status", "when", "attempts", "created", "error"):
        table.add_column(col)
    for rec in records:
        table.add_row(
            rec.id,
            rec.task,
            rec.queue,
            rec.status,
            _when(rec, ended),
            str(rec.attempts),
            iso(rec.created_at),
            _error_text(rec)[:80],
        )
    whole_table_console(table).print(table)


_NOT_ENDED = frozenset(STATUSES) - FINISHED


def _waits_for(rec: JobRecord, statuses: dict[str, str]) -> list[str]:
    """The jobs a waiting job still waits for: those not ended (a purged one has ended)."""
    return [p for p in rec.parents if statuses.get(p) in _NOT_ENDED]


def _when(rec: JobRecord, statuses: dict[str, str]) -> str:
    """What a job's status is waiting on: a scheduled job's due time, a waiting job's jobs."""
    if rec.due_at is not None:
        return f"due {iso(rec.due_at)}"
    if rec.status == "waiting":
        pending = _waits_for(rec, statuses)
        shown = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
        return f"waits for {len(pending)} of {len(rec.parents)} job(s): {shown}"
    return ""


def _job_json(rec: JobRecord, statuses: dict[str, str]) -> dict[str, Any]:
    return {
        "id": rec.id,
        "task": rec.task,
        "queue": rec.queue,
        "status": rec.status,
        "attempts": rec.attempts,
        "failures": rec.failures,
        "created_at": iso(rec.created_at),
        "started_at": None if rec.started_at is None else iso(rec.started_at),
        "finished_at": None if rec.finished_at is None else iso(rec.finished_at),
        "due_at": None if rec.due_at is None else iso(rec.due_at),
        "depends_on": list(rec.parents),
        "waits_for": _waits_for(rec, statuses) if rec.status == "waiting" else [],
        "error": _error_text(rec) or None,
    }


def _error_text(rec: JobRecord) -> str:
    if not rec.error:
        return ""
    error = json.loads(rec.error)
    return f"{error.get('type')}: {error.get('message')}"


@click.command()
@click.argument("job_id", required=False)
@click.option("--all-failed", is_flag=True, help="Retry every failed job.")
@click.option("--queue", default=None, help="With --all-failed: only this queue.")
@url_option
def retry(job_id: str | None, all_failed: bool, queue: str | None, url: str | None) -> None:
    """Run the failed (or cancelled) job JOB_ID again, or every failed job."""
    if all_failed == (job_id is not None):
        raise click.UsageError("give a JOB_ID or --all-failed")
    app = _existing(url)
    ids = [job_id] if job_id else [r.id for r in app.store.records(queue, "failed", 1_000_000)]
    done = sum(app.store.requeue(i) for i in ids if i)
    click.echo(f"{done} job(s) queued again in {app.store.location}")
    if job_id and not done:
        sys.exit(NOT_FOUND)


@click.command()
@click.argument("job_id")
@url_option
def cancel(job_id: str, url: str | None) -> None:
    """Cancel the job JOB_ID if it has not finished: a running one is stopped by its worker."""
    store = _existing(url).store
    if store.cancel(job_id):
        click.echo(f"job {job_id} cancelled in {store.location}")
    else:
        click.echo(
            f"job {job_id} was not cancelled in {store.location}: it is unknown or finished",
            err=True,
        )
        sys.exit(NOT_FOUND)


_BATCH = 1000


@click.command()
@click.argument("job_ids", nargs=-1, metavar="[JOB_ID]...")
@click.option("--all-failed", is_flag=True, help="Forget every failed job.")
@click.option("--queue", default=None, help="With --all-failed: only this queue.")
@url_option
def forget(job_ids: tuple[str, ...], all_failed: bool, queue: str | None, url: str | None) -> None:
    """Remove the records of finished jobs (failed jobs are kept until this), or of every
    failed job. Exits 3 if a JOB_ID is unknown, 1 if one has not finished."""
    if all_failed == bool(job_ids):
        raise click.UsageError("give JOB_IDs or --all-failed")
    if queue is not None and not all_failed:
        raise click.UsageError("--queue goes with --all-failed")
    store = _existing(url).store
    if all_failed:
        ids = [r.id for r in store.records(queue, "failed", 1_000_000)]
        done = sum(store.forget(ids[i : i + _BATCH]) for i in range(0, len(ids), _BATCH))
        click.echo(f"{done} failed job(s) forgotten in {store.location}")
        return
    ids = list(dict.fromkeys(job_ids))
    found = store.statuses(ids)
    finished = [i for i in ids if found.get(i) in FINISHED]
    done = store.forget(finished) if finished else 0
    click.echo(f"{done} job(s) forgotten in {store.location}")
    for job_id in ids:
        if job_id not in found:
            click.echo(f"no job {job_id!r} in {store.location}", err=True)
        elif found[job_id] not in FINISHED:
            click.echo(
                f"job {job_id} is {found[job_id]}: only a finished job can be forgotten "
                f"(cancel it first)",
                err=True,
            )
    if len(found) < len(ids):
        sys.exit(NOT_FOUND)
    if done < len(ids):
        sys.exit(FAILED)


@click.command()
@click.argument("queue")
@click.option(
    "--delete", is_flag=True, help="Then forget the queue too: its name, options and job totals."
)
@url_option
def purge(queue: str, delete: bool, url: str | None) -> None:
    """Remove every job of QUEUE: waiting, scheduled, running and finished."""
    store = _app(url).store
    if delete and not store.has_queue(queue):
        click.echo(f"no queue {queue!r} in {store.url}", err=True)
        sys.exit(NOT_FOUND)
    click.echo(f"{store.clear(queue)} job(s) removed")
    if not delete:
        return
    if not store.delete_queue(queue):  # a job was added meanwhile
        click.echo(f"queue {queue!r} was not deleted: a job arrived meanwhile", err=True)
        sys.exit(FAILED)
    click.echo(f"queue {queue} deleted")
