"""``baozi jobs`` (due times, waiting jobs, JSON), ``baozi workers`` and ``baozi schedules``,
run as a user would against real stores, with real worker and scheduler processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from baozi import App, Worker
from baozi.backends.base import WorkerInfo

from . import jobtasks
from ._helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent


def baozi(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAOZI_TEST_URL": url, "BAOZI_URL": url, "COLUMNS": "250"}
    done = subprocess.run(
        [sys.executable, "-m", "baozi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def start(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BAOZI_TEST_URL": url, "BAOZI_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "baozi", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def run_cli(url: str, *args: str) -> Any:
    """A command run in this process, so that it sees the same memory:// store as the test."""
    from click.testing import CliRunner

    from baozi.cli import main

    done = CliRunner().invoke(main, [*args, "--url", url], env={"COLUMNS": "250"})
    assert done.exit_code == 0, done.output
    return done


def utc(text: str) -> float:
    """The Unix time of an ISO 8601 date as the CLI writes them: in UTC, with its offset."""
    when = dt.datetime.fromisoformat(text)
    assert when.utcoffset() == dt.timedelta(0) and text.endswith("+00:00"), text
    return when.timestamp()


def test_jobs_shows_when_a_scheduled_job_is_due_and_what_a_waiting_job_waits_for(
    url: str,
) -> None:
    app = App(url)
    add = app.task(name="add")(jobtasks.add)
    before = time.time()
    later = add.apply_async((1, 2), delay=600, queue="later")
    first = add.delay(1, 1)
    then = add.apply_async((3, 4), depends_on=[first, later])
    rows = {r["id"]: r for r in json.loads(run_cli(url, "jobs", "--json").output)}
    assert before + 600 - 1 <= utc(rows[later.id]["due_at"]) <= time.time() + 600
    assert rows[first.id]["due_at"] is None and rows[then.id]["due_at"] is None
    assert rows[then.id]["status"] == "waiting"
    assert rows[then.id]["waits_for"] == [first.id, later.id]
    for row in rows.values():  # every date in the same form
        for key in ("created_at", "started_at", "finished_at", "due_at"):
            assert row[key] is None or utc(row[key]) > before - 1
    table = run_cli(url, "jobs").output
    assert f"due {rows[later.id]['due_at']}" in _row(table, later.id)
    assert "waits for 2 of 2 job(s)" in _row(table, then.id)
    Worker(app, queues=["default"]).run(burst=True)  # first succeeds: one left to wait for
    table = run_cli(url, "jobs", "--status", "waiting").output
    assert f"waits for 1 of 2 job(s): {later.id}" in _row(table, then.id)
    status = run_cli(url, "status", later.id).output
    assert f"due  {rows[later.id]['due_at']}" in status
    created = next(line for line in status.splitlines() if "created" in line)
    utc(created.split()[-1])


def _row(table: str, job_id: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"│ {job_id} "))


def test_workers_lists_a_running_worker_and_marks_it_dead_once_killed(shared_url: str) -> None:
    app = App(shared_url)
    proc = start(shared_url, "worker", "tests.listapp:app", "-c", "2", "-q")
    try:
        job = app.task(name="sleep")(jobtasks.sleep).delay(60)
        wait_for(lambda: job.status == "running")
        (row,) = json.loads(baozi(shared_url, "workers", "--json").stdout)
        assert (row["pid"], row["pool"], row["busy"], row["slots"]) == (proc.pid, "thread", 1, 2)
        assert row["queues"] == ["beat", "default"] or row["queues"] == ["default", "beat"]
        assert row["state"] == "alive" and 0 <= row["heartbeat_age"] < 20
        assert abs(utc(row["last_heartbeat"]) - (time.time() - row["heartbeat_age"])) < 2
        table = baozi(shared_url, "workers").stdout
        assert "1 worker(s)" in table and f"│ {row['id']} " in table and "1/2" in table
        assert f"{row['last_heartbeat']} (" in table and "alive" in table
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    (dead,) = json.loads(baozi(shared_url, "workers", "--json").stdout)  # its heartbeat lasts
    assert dead["id"] == row["id"] and dead["state"] == "dead"
    assert "dead" in baozi(shared_url, "workers").stdout


def test_workers_marks_one_that_missed_its_heartbeats_stale(shared_url: str) -> None:
    store = App(shared_url).store
    far = WorkerInfo("far:7:abc", "far-away-host", 7, "process", 4, ("q",), 0, time.time())
    store.heartbeat(far, ttl=60)
    time.sleep(1.1)
    (row,) = json.loads(baozi(shared_url, "workers", "--json", "--stale-after", "1").stdout)
    assert (row["host"], row["state"], row["busy"], row["slots"]) == (
        "far-away-host",
        "stale",
        0,
        4,
    )
    (row,) = json.loads(baozi(shared_url, "workers", "--json").stdout)  # 20 s by default
    assert row["state"] == "alive"


def test_schedules_shows_each_periodic_task_s_last_and_next_run_from_the_store(
    shared_url: str,
) -> None:
    before = json.loads(baozi(shared_url, "schedules", "tests.listapp:app", "--json").stdout)
    assert [(s["call"], s["last_run"], s["every"], s["cron"]) for s in before] == [
        ("add(1, 2)", None, 1.0, None),
        ("add(3, 4)", None, None, "0 0 1 1 *"),
    ]
    app = App(shared_url)
    beat = start(shared_url, "beat", "tests.listapp:app", "-q")
    try:
        wait_for(lambda: app.store.counts("beat").ready >= 2)
    finally:
        beat.terminate()
        beat.wait(10)
    now = time.time()
    every, yearly = json.loads(baozi(shared_url, "schedules", "tests.listapp:app", "--json").stdout)
    last = utc(every["last_run"])
    assert last == int(last) and now - 30 < last <= now  # a tick: a whole second
    assert utc(every["next_run"]) == last + 1 and every["counting_since"] is None
    assert yearly["last_run"] is None and yearly["tz"] == "Europe/Paris"
    assert utc(yearly["counting_since"]) < now and not yearly["overdue"]
    paris_new_year = dt.datetime.fromisoformat(yearly["next_run"]).astimezone(
        dt.timezone(dt.timedelta(hours=1))
    )
    assert (paris_new_year.month, paris_new_year.day, paris_new_year.hour) == (1, 1, 0)
    table = baozi(shared_url, "schedules", "tests.listapp:app").stdout
    assert "2 schedule(s)" in table and every["last_run"] in table and "never" in table
    assert "cron 0 0 1 1 * (Europe/Paris)" in table and "every 1s" in table


def test_log_lines_of_a_worker_and_its_processes_begin_with_the_same_iso_time(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    env = {**os.environ, "BAOZI_TEST_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "baozi", "worker", "tests.jobapp:app", "--burst", "-p", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if " INFO baozi.worker: " in line]
    assert len({line.rsplit(" ", 2)[1] for line in logged if line.endswith("stopped")}) == 2
    for line in logged:
        assert utc(line.split(" ", 1)[0]) > time.time() - 60, line
