"""The job commands, run as a user would: enqueue, worker, status, queues, jobs, retry, cancel,
forget, purge."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from baozi import App, Worker
from baozi.backends.base import WorkerInfo

from . import jobtasks

ROOT = Path(__file__).resolve().parent.parent


def baozi(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAOZI_TEST_URL": url, "BAOZI_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "baozi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_enqueue_prints_the_job_and_its_position_and_worker_burst_runs_it(
    url: str, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    first = baozi(url, "enqueue", "tests.jobapp:app", "note", f'["{log}", "a"]')
    assert first.returncode == 0, first.stderr
    job_id, where = first.stdout.split("\t")
    assert where.strip() == "position 0"
    second = baozi(url, "enqueue", "tests.jobapp:app", "note", f'["{log}", "b"]', "--front")
    assert second.stdout.split("\t")[1].strip() == "position 0"
    ran = baozi(url, "worker", "tests.jobapp:app", "--burst", "-q", "-c", "1")
    assert ran.returncode == 0, ran.stderr
    assert log.read_text().split() == ["b", "a"]
    status = baozi(url, "status", job_id)
    assert status.returncode == 0
    assert "succeeded" in status.stdout and "'a'" in status.stdout


def test_enqueue_with_a_delay_reports_scheduled_and_bad_input_is_refused(url: str) -> None:
    before = time.time()
    out = baozi(url, "enqueue", "tests.jobapp:app", "sleep", "[0]", "--delay", "60")
    where = out.stdout.split("\t")[1].strip()
    assert where.startswith("scheduled for "), where
    when = dt.datetime.fromisoformat(where.removeprefix("scheduled for ")).timestamp()
    assert before + 59 <= when <= time.time() + 60
    bad = baozi(url, "enqueue", "tests.jobapp:app", "sleep", "[0")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr
    unknown = baozi(url, "enqueue", "tests.jobapp:app", "nope", "[]")
    assert unknown.returncode == 2 and "no task 'nope'" in unknown.stderr
    noapp = baozi(url, "enqueue", "tests.nothing:app", "nope", "[]")
    assert noapp.returncode == 2 and "cannot import" in noapp.stderr


def test_status_of_an_unknown_job_exits_non_zero(url: str) -> None:
    App(url)  # the store exists (a missing file is another error: see test_clear_errors)
    out = baozi(url, "status", "4242")
    assert out.returncode == 3 and "no job '4242'" in out.stderr


def test_queues_jobs_retry_cancel_and_purge(url: str, tmp_path: Path) -> None:
    app = App(url)
    fail = app.task(name="fail")(jobtasks.fail)
    add = app.task(name="add")(jobtasks.add)
    failed = fail.delay("broken on purpose")
    Worker(app, queues=["default"]).run(burst=True)
    waiting = add.apply_async((1, 2), queue="later")
    other = add.apply_async((3, 4), queue="later")

    table = baozi(url, "queues")
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if "default" in line)
    assert [c.strip() for c in row.split("│")[1:7]] == ["default", "0", "0", "0", "0", "1"]

    listing = baozi(url, "jobs", "--status", "failed")
    assert failed.id in listing.stdout and "broken on purpose" in listing.stdout

    assert baozi(url, "cancel", waiting.id).returncode == 0
    assert waiting.status == "cancelled"
    assert baozi(url, "cancel", waiting.id).returncode == 3

    assert baozi(url, "retry", "--all-failed").stdout.startswith("1 job(s)")
    assert failed.status == "queued"

    purged = baozi(url, "purge", "later")
    assert purged.stdout.startswith("2 job(s) removed")
    assert app.store.record(other.id) is None


def test_finished_jobs_are_purged_after_result_ttl(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path}/ttl.db", lease=0.3, result_ttl=0.2)
    job = app.task(jobtasks.add).delay(1, 1)
    worker = Worker(app)
    worker.start()
    try:
        assert job.result(timeout=10) == 2
        deadline = time.monotonic() + 10
        while app.store.record(job.id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.store.record(job.id) is None
    finally:
        worker.close()
        worker.join(10)


def test_url_points_enqueue_and_worker_at_another_store(url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path}/other.db"
    log = tmp_path / "log.txt"
    out = baozi(url, "enqueue", "tests.jobapp:app", "note", f'["{log}", "x"]', "--url", other)
    job_id = out.stdout.split("\t")[0]
    assert App(other).job(job_id).status == "queued"
    assert App(url).store.record(job_id) is None
    assert baozi(url, "worker", "tests.jobapp:app", "--burst", "-q", "--url", other).returncode == 0
    assert App(other).job(job_id).status == "succeeded" and log.read_text().split() == ["x"]


def test_an_unreachable_store_is_one_clear_line_and_exit_code_1() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = baozi(f"redis://127.0.0.1:{port}/0?retry=0.2", "queues")
    assert done.returncode == 1
    assert f"StoreUnavailable: Redis at 127.0.0.1:{port}/0 did not answer" in done.stderr
    assert "Traceback" not in done.stderr


def test_listing_the_jobs_of_a_queue_makes_no_queue(url: str) -> None:
    store = App(url).store
    store.push("real", [b"x"])  # a store file to read
    out = baozi(url, "jobs", "--queue", "ghost")
    assert out.returncode == 0, out.stderr
    assert store.queues() == ["real"] and not store.has_queue("ghost")


def test_pausing_a_queue_that_never_held_a_job_exits_2_unless_the_app_declares_it(
    url: str,
) -> None:
    refused = baozi(url, "pause", "ghost")
    assert refused.returncode == 2 and "no queue 'ghost'" in refused.stderr
    assert App(url).store.queues() == []  # nothing made
    declared = baozi(url, "pause", "default", "--app", "tests.jobapp:app")  # its tasks' queue
    assert declared.returncode == 0, declared.stderr
    assert App(url).is_paused("default")
    assert baozi(url, "resume", "default").returncode == 0  # known to the store now
    assert not App(url).is_paused("default")


def test_purge_delete_forgets_the_queue(url: str) -> None:
    app = App(url)
    app.task(name="t", queue="doomed")(jobtasks.note).delay("x", "y")
    assert baozi(url, "purge", "ghost", "--delete").returncode == 3
    out = baozi(url, "purge", "doomed", "--delete")
    assert out.returncode == 0, out.stderr
    assert "1 job(s) removed" in out.stdout and "queue doomed deleted" in out.stdout
    assert not app.store.has_queue("doomed") and app.store.job_totals("doomed") == {}


def run_cli(url: str, *args: str) -> Any:
    """A command run in this process, so that it sees the same memory:// store as the test."""
    from click.testing import CliRunner

    from baozi.cli import main

    return CliRunner().invoke(main, [*args, "--url", url], env={"COLUMNS": "200"})


@pytest.fixture
def memory_url() -> str:
    return f"memory://cli-{uuid.uuid4().hex}"


def fields(output: str) -> dict[str, str]:
    """The lines of ``baozi status``, "name  value" each, as a dict."""
    return dict(line.strip().split("  ", 1) for line in output.splitlines())


def test_status_shows_the_unique_key_and_the_jobs_linked_either_way(memory_url: str) -> None:
    app = App(memory_url)
    add = app.task(name="add")(jobtasks.add)
    first = add.apply_async((1, 2), unique_key="report:7")
    then = add.apply_async((3, 4), depends_on=[first], on_dependency_failure="run")
    shown = run_cli(memory_url, "status", first.id)
    assert shown.exit_code == 0, shown.output
    before = fields(shown.output)
    assert before["unique key"] == "report:7" and before["needed by"] == then.id
    assert "depends on" not in before
    after = fields(run_cli(memory_url, "status", then.id).output)
    assert after["status"] == "waiting for 1 job" and "position" not in after
    assert after["done in"].startswith("not known yet")
    assert after["depends on"] == first.id and after["if one fails"] == "run"
    assert "unique key" not in after and "needed by" not in after
    plain = run_cli(memory_url, "status", add.delay(5, 5).id).output
    assert plain.splitlines()[1] == "      job  3"  # no link: laid out as before


def test_status_says_where_a_job_stands_and_when_it_will_be_done(memory_url: str) -> None:
    app = App(memory_url)
    add = app.task(name="add")(jobtasks.add)
    add.delay(1, 1)
    Worker(app).run(burst=True)  # the task's run time is reported as the worker stops
    queued = add.delay(2, 2)
    shown = fields(run_cli(memory_url, "status", queued.id).output)
    assert shown["status"] == "queued, 0 ahead of it"
    assert shown["done in"].startswith("not known yet")  # no live worker serves the queue
    app.store.heartbeat(WorkerInfo("idle", "host", 1, "thread", 1, ("default",)), ttl=60)
    shown = fields(run_cli(memory_url, "status", queued.id).output)
    assert shown["done in"] == "about 0.0 s"  # a free slot and a task that takes no time
    later = add.apply_async((3, 3), delay=60)
    assert fields(run_cli(memory_url, "status", later.id).output)["status"].startswith(
        "scheduled for "
    )
    later.cancel()  # a burst would wait for it
    Worker(app).run(burst=True)
    done = fields(run_cli(memory_url, "status", queued.id).output)
    assert done["status"] == "succeeded" and "done in" not in done


def test_waiting_jobs_are_listed_and_counted(memory_url: str) -> None:
    app = App(memory_url)
    add = app.task(name="add")(jobtasks.add)
    first = add.delay(1, 2)
    then = add.apply_async((3, 4), depends_on=[first])
    listing = run_cli(memory_url, "jobs", "--status", "waiting")
    assert listing.exit_code == 0, listing.output
    assert then.id in listing.output and f"│ {first.id} " not in listing.output
    assert "waiting" in run_cli(memory_url, "jobs", "--help").output
    table = run_cli(memory_url, "queues").output
    header = next(line for line in table.splitlines() if "queue" in line and "ready" in line)
    row = next(line for line in table.splitlines() if "default" in line)
    assert [c.strip() for c in header.split("┃")[1:4]] == ["queue", "waiting", "ready"]
    assert [c.strip() for c in row.split("│")[1:4]] == ["default", "1", "1"]


def test_forget_removes_finished_jobs_and_names_the_others(memory_url: str) -> None:
    app = App(memory_url)
    fail = app.task(name="fail")(jobtasks.fail)
    add = app.task(name="add")(jobtasks.add)
    failed = fail.delay("broken on purpose")
    done = add.delay(1, 1)
    Worker(app, queues=["default"]).run(burst=True)
    queued = add.delay(2, 2)
    out = run_cli(memory_url, "forget", failed.id, done.id)
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("2 job(s) forgotten")
    assert app.store.record(failed.id) is None and app.store.record(done.id) is None
    unfinished = run_cli(memory_url, "forget", queued.id)
    assert unfinished.exit_code == 1 and unfinished.stdout.startswith("0 job(s)")
    assert f"job {queued.id} is queued: only a finished job can be forgotten" in unfinished.stderr
    assert app.store.record(queued.id) is not None
    unknown = run_cli(memory_url, "forget", "424242", queued.id)
    assert unknown.exit_code == 3 and "no job '424242'" in unknown.stderr
    assert run_cli(memory_url, "forget").exit_code == 2  # neither ids nor --all-failed


def test_forget_all_failed_removes_every_failed_job_of_a_queue(memory_url: str) -> None:
    app = App(memory_url)
    fail = app.task(name="fail")(jobtasks.fail)
    here = [fail.apply_async(("x",), queue="here") for _ in range(3)]
    there = fail.apply_async(("y",), queue="there")
    Worker(app, queues=["here", "there"]).run(burst=True)
    out = run_cli(memory_url, "forget", "--all-failed", "--queue", "here")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("3 failed job(s) forgotten")
    assert all(app.store.record(j.id) is None for j in here)
    assert app.job(there.id).status == "failed"
    assert run_cli(memory_url, "forget", "--all-failed").stdout.startswith("1 failed job(s)")
    assert run_cli(memory_url, "forget", there.id, "--all-failed").exit_code == 2
    assert run_cli(memory_url, "forget", there.id, "--queue", "here").exit_code == 2


def test_tables_print_whole_dates_on_a_narrow_terminal(memory_url: str) -> None:
    from click.testing import CliRunner

    from baozi.cli import main

    app = App(memory_url)
    add = app.task(name="add")(jobtasks.add)
    add.apply_async((1, 2), delay=60)
    out = CliRunner().invoke(main, ["jobs", "--url", memory_url], env={"COLUMNS": "60"})
    assert out.exit_code == 0, out.output
    dates = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", out.output)
    assert len(dates) == 2, out.output  # its due time and its creation time, zone and all
    assert "…" not in out.output


def test_status_of_a_waiting_job_says_why_its_end_is_not_known(memory_url: str) -> None:
    app = App(memory_url)
    add = app.task(name="add")(jobtasks.add)
    first = add.delay(1, 2)
    then = add.apply_async((3, 4), depends_on=[first])
    out = run_cli(memory_url, "status", then.id)
    assert fields(out.output)["done in"] == "not known yet (it waits for other jobs to end)"
