"""The dashboard's pages and what they do, in real headless Chromium over a SQLite store and a
real worker: the job list's filters and cursor pages, one job (its call, result, error,
attempts, live progress, workflow and actions), the scheduled and failed lists with their bulk
actions, one queue (pause, resume, purge, its charts), the tasks' statistics, the workers and
the periodic schedules."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import baozi.web.api
from baozi import App, chain, current_job
from baozi.backends.base import STATUSES, WorkerInfo

from ._dashboard import (
    EVENTS_EVERY,
    Console,
    by_id,
    expect_count,
    expect_text,
    expect_visible,
    failed_jobs,
    show,
    watched_page,
)
from ._helpers import wait_for, working
from ._web import chromium, make_app, served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture(autouse=True)
def quick_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baozi.web.api, "EVENT_EVERY", EVENTS_EVERY)


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(f"sqlite:///{tmp_path / 'dashboard.db'}")


@pytest.fixture
def base(app: App) -> Iterator[str]:
    with served(app) as base:
        yield base


@pytest.fixture
def watched(browser: Any, base: str) -> Iterator[tuple[Any, Console]]:
    with watched_page(browser) as watched:
        yield watched


@pytest.fixture
def page(watched: tuple[Any, Console]) -> Any:
    return watched[0]


@pytest.fixture
def console(watched: tuple[Any, Console]) -> Console:
    return watched[1]


def ids_shown(page: Any, table: str) -> list[str]:
    rows = page.locator(f'[data-testid="{table}"] tbody tr[data-job]')
    return [rows.nth(i).get_attribute("data-job") for i in range(rows.count())]


def rows_of(page: Any, table: str) -> Any:
    return page.locator(f'[data-testid="{table}"] tbody tr[data-job]')


def in_utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


# -- #/jobs ---------------------------------------------------------------------------------


def test_the_job_list_pages_by_cursor_newest_first(app: App, base: str, page: Any) -> None:
    add = app.tasks["add"]
    jobs = [add.delay(i, i) for i in range(57)]
    newest_first = [job.id for job in reversed(jobs)]
    show(page, base, "#/jobs")
    listed = rows_of(page, "jobs-table")
    expect_count(listed, 50)
    assert ids_shown(page, "jobs-table") == newest_first[:50]
    expect_text(by_id(page, "jobs-count"), "50 jobs, newest first")
    assert by_id(page, "first-page").get_attribute("aria-disabled") == "true"
    by_id(page, "next-page").click()
    expect_count(listed, 7)
    assert ids_shown(page, "jobs-table") == newest_first[50:]
    expect_text(by_id(page, "jobs-count"), "Later page: 7 jobs, newest first")
    assert by_id(page, "next-page").get_attribute("aria-disabled") == "true"
    page.reload()  # the page is in the address
    expect_count(listed, 7)
    assert ids_shown(page, "jobs-table") == newest_first[50:]
    by_id(page, "first-page").click()
    expect_count(listed, 50)
    assert ids_shown(page, "jobs-table")[0] == newest_first[0]


def test_the_job_list_is_filtered_and_its_filters_survive_a_reload(
    app: App, base: str, page: Any
) -> None:
    add, echo = app.tasks["add"], app.tasks["echo"]
    adds = [add.delay(i, i) for i in range(4)]
    others = [echo.apply_async(args=(i,), queue="other") for i in range(3)]
    adds[0].cancel()
    chain(add.s(1, 2), add.s(3)).delay()
    show(page, base, "#/jobs")
    listed = rows_of(page, "jobs-table")
    expect_count(listed, 9)
    statuses = page.locator('[data-testid="filter-status"] option')
    assert [statuses.nth(i).get_attribute("value") for i in range(statuses.count())] == [
        "",
        *STATUSES,
    ]
    page.select_option('[data-testid="filter-task"]', "echo")
    expect_count(listed, 3)
    assert sorted(ids_shown(page, "jobs-table")) == sorted(job.id for job in others)
    assert "task=echo" in page.evaluate("location.hash")
    page.reload()
    expect_count(listed, 3)
    expect(by_id(page, "filter-task")).to_have_value("echo")
    by_id(page, "filter-clear").click()
    expect_count(listed, 9)
    page.select_option('[data-testid="filter-status"]', "cancelled")
    expect_count(listed, 1)
    assert ids_shown(page, "jobs-table") == [adds[0].id]
    page.select_option('[data-testid="filter-status"]', "waiting")
    expect_count(listed, 1)
    expect_text(listed.locator(".badge"), "waiting")
    page.select_option('[data-testid="filter-status"]', "")
    page.select_option('[data-testid="filter-queue"]', "other")
    expect_count(listed, 3)
    assert {job.queue for job in others} == {"other"}
    page.select_option('[data-testid="filter-queue"]', "")
    by_id(page, "filter-q").fill(adds[2].id)
    by_id(page, "filter-apply").click()
    expect_count(listed, 1)
    assert ids_shown(page, "jobs-table") == [adds[2].id]
    page.reload()
    expect_count(listed, 1)
    expect(by_id(page, "filter-q")).to_have_value(adds[2].id)
    # Created until a time before every job: none matches, and the field shows that time.
    before = int(min(job.created_at for job in adds)) - 120
    page.goto(f"{base}/#/jobs?until={before}")
    expect_text(
        page.locator('[data-testid="jobs-table"] td.empty'), "No job matches these filters."
    )
    assert by_id(page, "filter-until").input_value() != ""


# -- #/jobs/{id} ----------------------------------------------------------------------------


def test_a_job_shows_its_call_result_and_times_in_the_browsers_zone(
    app: App, base: str, browser: Any
) -> None:
    job = app.tasks["echo"].delay(1, "two", three=[3])
    with working(app):
        wait_for(lambda: job.status == "succeeded")
    with watched_page(browser, timezone_id="Asia/Kolkata") as (page, _):
        show(page, base, f"#/jobs/{job.id}")
        expect_text(by_id(page, "job-status"), "succeeded")
        expect_text(by_id(page, "job-id"), job.id)
        expect_text(by_id(page, "job-args"), '[\n  1,\n  "two"\n]')
        expect_text(by_id(page, "job-kwargs"), '{\n  "three": [\n    3\n  ]\n}')
        expect_text(
            by_id(page, "job-result"), re.compile(r'^\[\s*\[\s*1,\s*"two"\s*\],\s*\{\s*"three"')
        )
        expect_text(by_id(page, "job-task"), "echo")
        expect_text(by_id(page, "job-queue"), "default")
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\+5:30 · (now|\d+ s ago)"
        for field in ("job-created", "job-started", "job-finished"):
            expect_text(by_id(page, field), re.compile(f"^{stamp}$"))
        assert by_id(page, "job-retry").count() == 0  # a success is not retried...
        expect_visible(by_id(page, "job-forget"))  # ...but may be forgotten
        assert by_id(page, "job-cancel").count() == 0


def test_a_failed_job_shows_its_traceback_and_attempts_and_is_retried_cancelled_forgotten(
    app: App, base: str, page: Any, console: Console
) -> None:
    (job,) = failed_jobs(app, "default", 1)
    worker_id = app.store.record(job.id).worker
    assert worker_id
    show(page, base, f"#/jobs/{job.id}")
    expect_text(by_id(page, "job-status"), "failed")
    expect_text(by_id(page, "job-error"), "ValueError: failure 0")
    expect_text(
        by_id(page, "job-traceback"),
        re.compile(r"^Traceback.*raise ValueError\(message\).*ValueError: failure 0", re.DOTALL),
    )
    expect_text(by_id(page, "job-worker"), worker_id)
    attempt = page.locator('[data-testid="attempts-table"] tr[data-attempt="1"] td')
    expect_text(attempt.nth(1), worker_id)
    expect_text(attempt.nth(4), "failed")
    expect_text(attempt.nth(5), "ValueError: failure 0")
    by_id(page, "job-retry").click()
    expect_text(by_id(page, "job-status"), "queued")
    expect_text(by_id(page, "status-ok"), f"Job {job.id} is queued again.")
    assert job.status == "queued"
    by_id(page, "job-cancel").click()
    by_id(page, "confirm").click()  # it asks first
    expect_text(by_id(page, "job-status"), "cancelled")
    assert job.status == "cancelled"
    console.allow(404, f"/api/jobs/{job.id}")  # asked again once it is gone: the page says so
    console.allow(404, f"/api/jobs/{job.id}/attempts")  # (a refresh under way as it went)
    by_id(page, "job-forget").click()
    by_id(page, "confirm").click()
    expect_text(by_id(page, "job-missing"), re.compile(f"^No job {job.id}:"))
    assert app.store.record(job.id) is None


def test_a_running_job_shows_its_progress_live_and_is_cancelled_then_forgotten(
    app: App, base: str, page: Any, console: Console
) -> None:
    gates = [threading.Event(), threading.Event()]

    @app.task(name="steps", queue="slow")
    def steps() -> None:
        job = current_job()
        job.set_progress(0.25, "first quarter")
        while not gates[0].wait(0.02):  # short waits: a cancel stops it between two
            pass
        job.set_progress(0.75, "three quarters")
        while not gates[1].wait(0.02):
            pass

    job = steps.delay()
    show(page, base, f"#/jobs/{job.id}")
    expect_text(by_id(page, "job-status"), "queued")
    expect_text(by_id(page, "job-summary"), re.compile("queued"))
    try:
        with working(app, queues=["slow"]) as worker:
            expect_text(by_id(page, "job-status"), "running")
            expect_text(by_id(page, "progress-message"), "25 % · first quarter")
            expect(page.locator("progress#job-progress")).to_have_js_property("value", 0.25)
            expect_text(by_id(page, "job-worker"), worker.id)
            gates[0].set()
            expect_text(by_id(page, "progress-message"), "75 % · three quarters")
            expect(page.locator("progress#job-progress")).to_have_js_property("value", 0.75)
            by_id(page, "job-cancel").click()
            by_id(page, "confirm").click()
            expect_text(by_id(page, "job-status"), "cancelled")
            assert job.status == "cancelled"
    finally:
        gates[1].set()
    console.allow(404, f"/api/jobs/{job.id}")  # asked again once it is gone: the page says so
    console.allow(404, f"/api/jobs/{job.id}/attempts")  # (a refresh under way as it went)
    by_id(page, "job-forget").click()
    by_id(page, "confirm").click()
    expect_text(by_id(page, "job-missing"), re.compile(f"^No job {job.id}:"))
    assert app.store.record(job.id) is None


def test_a_job_opens_with_its_unique_key_and_its_workflow_drawn(
    app: App, base: str, page: Any
) -> None:
    add = app.tasks["add"]
    flow = chain(add.s(1, 2).set(unique_key="nightly-report"), add.s(3), add.s(4)).delay()
    first, middle, last = list(flow)
    show(page, base, f"#/jobs/{middle.id}")
    expect_text(by_id(page, "job-status"), "waiting")
    expect_text(by_id(page, "job-summary"), "waiting for 1 job")
    expect_text(by_id(page, "job-eta"), "not known yet")
    expect_text(by_id(page, "job-waiting-for"), "1 job")
    expect_text(by_id(page, "job-parents"), first.id)
    expect_text(by_id(page, "job-children"), last.id)
    expect_text(by_id(page, "job-unique-key"), "–")
    nodes = page.locator('[data-testid="job-graph"] [data-testid="graph-node"]')
    expect_text(nodes.locator(".status"), ["queued", "waiting", "waiting"])
    assert [nodes.nth(i).get_attribute("data-key") for i in range(3)] == [
        first.id,
        middle.id,
        last.id,
    ]
    assert page.locator('[data-testid="job-graph"] path.edge').count() == 2
    assert "current" in (nodes.nth(1).get_attribute("class") or "")
    nodes.nth(0).click()
    expect_text(by_id(page, "job-id"), first.id)
    assert page.evaluate("location.hash") == f"#/jobs/{first.id}"
    expect_text(by_id(page, "job-summary"), "queued, 0 ahead of it")
    expect_text(by_id(page, "job-unique-key"), "nightly-report")
    with working(app):
        expect_text(nodes.locator(".status"), ["succeeded"] * 3)
    expect_text(by_id(page, "job-status"), "succeeded")
    expect_text(by_id(page, "job-result"), "3")


# -- #/scheduled and #/failed ---------------------------------------------------------------


def test_the_scheduled_page_shows_when_each_job_is_due(app: App, base: str, browser: Any) -> None:
    add = app.tasks["add"]
    later = add.apply_async(args=(1, 1), delay=600)
    sooner = add.apply_async(args=(2, 2), delay=120)
    add.delay(3, 3)  # queued: not listed
    with watched_page(browser, timezone_id="UTC") as (page, _):
        show(page, base, "#/scheduled")
        listed = rows_of(page, "scheduled-table")
        expect_count(listed, 2)
        assert ids_shown(page, "scheduled-table") == [sooner.id, later.id]  # soonest first
        for job, minutes in ((sooner, 2), (later, 10)):
            due = app.store.record(job.id).due_at
            assert due is not None
            cell = page.locator(f'tr[data-job="{job.id}"] [data-testid="due"]')
            expect_text(cell, f"{in_utc(due)} · in {minutes} min")


def test_failed_jobs_are_retried_all_at_once_after_the_confirmation(
    app: App, base: str, page: Any
) -> None:
    jobs = failed_jobs(app, "default", 3)
    show(page, base, "#/failed")
    listed = rows_of(page, "failed-table")
    expect_count(listed, 3)
    expect_text(by_id(page, "failed-badge"), "3")
    dialog = by_id(page, "confirm-dialog")
    by_id(page, "retry-all").click()
    expect_visible(dialog)
    expect_text(by_id(page, "confirm-text"), re.compile(r"^Retry all 3 failed jobs\?"))
    expect_text(by_id(page, "confirm"), "Retry all")
    by_id(page, "confirm-cancel").click()
    expect(dialog).to_be_hidden()
    expect_text(by_id(page, "status-ok"), "Nothing was changed.")
    assert [job.status for job in jobs] == ["failed"] * 3
    by_id(page, "retry-all").click()
    by_id(page, "confirm").click()
    expect_text(by_id(page, "status-ok"), "Retried 3 failed jobs.")
    expect_text(page.locator('[data-testid="failed-table"] td.empty'), "No failed jobs.")
    assert [job.status for job in jobs] == ["queued"] * 3
    expect(by_id(page, "retry-all")).to_be_disabled()
    expect(by_id(page, "failed-badge")).to_be_hidden()


def test_failed_jobs_of_one_queue_are_deleted_after_the_confirmation_and_one_retried(
    app: App, base: str, page: Any
) -> None:
    kept = failed_jobs(app, "default", 2)
    doomed = failed_jobs(app, "other", 2)
    show(page, base, "#/failed")
    listed = rows_of(page, "failed-table")
    expect_count(listed, 4)
    page.select_option('[data-testid="failed-queue"]', "other")
    expect_count(listed, 2)
    assert sorted(ids_shown(page, "failed-table")) == sorted(job.id for job in doomed)
    by_id(page, "delete-all").click()
    expect_text(
        by_id(page, "confirm-text"), re.compile(r'^Delete all 2 failed jobs in queue "other"\?')
    )
    by_id(page, "confirm").click()
    expect_text(by_id(page, "status-ok"), 'Deleted 2 failed jobs in queue "other".')
    assert [app.store.record(job.id) for job in doomed] == [None, None]
    assert [job.status for job in kept] == ["failed", "failed"]
    page.select_option('[data-testid="failed-queue"]', "")
    expect_count(listed, 2)
    page.locator(f'[data-testid="row-retry"][data-key="{kept[0].id}"]').click()
    expect_count(listed, 1)
    assert ids_shown(page, "failed-table") == [kept[1].id]
    assert kept[0].status == "queued"


# -- #/queues/{name} ------------------------------------------------------------------------


def test_a_queue_is_paused_resumed_and_purged_from_its_page(app: App, base: str, page: Any) -> None:
    add = app.tasks["add"]
    for i in range(3):
        add.delay(i, i)
    add.apply_async(args=(9, 9), delay=600)
    show(page, base, "#/queues")
    page.locator('[data-testid="queue-link"][data-key="default"]').click()
    expect_text(by_id(page, "page-title"), "Queue default")
    expect_text(by_id(page, "queue-ready"), "3")
    expect_text(by_id(page, "queue-scheduled"), "1")
    expect_text(by_id(page, "queue-maxsize"), "none")
    expect_text(by_id(page, "queue-latency"), re.compile(r"^\d+(\.\d)? m?s$"))
    by_id(page, "queue-pause").click()
    expect_text(by_id(page, "queue-state"), "paused")
    assert app.is_paused("default")
    by_id(page, "queue-resume").click()
    expect_text(by_id(page, "queue-state"), "active")
    assert not app.is_paused("default")
    dialog = by_id(page, "confirm-dialog")
    by_id(page, "queue-purge").click()
    expect_text(by_id(page, "confirm-text"), re.compile(r'^Purge queue "default"\?'))
    by_id(page, "confirm-cancel").click()
    expect(dialog).to_be_hidden()
    assert app.store.job_counts("default")["queued"] == 3
    by_id(page, "queue-purge").click()
    by_id(page, "confirm").click()
    expect_text(by_id(page, "status-ok"), 'Purged 4 jobs from queue "default".')
    expect_text(by_id(page, "queue-ready"), "0")
    assert sum(app.store.job_counts("default").values()) == 0
    by_id(page, "queue-jobs").click()
    expect_text(by_id(page, "page-title"), "Jobs")
    expect(by_id(page, "filter-queue")).to_have_value("default")


def test_a_queue_page_draws_its_depth_and_throughput_with_legends_and_axes(
    app: App, base: str, page: Any
) -> None:
    failed_jobs(app, "small", 1)
    show(page, base, "#/queues/small")
    expect_text(by_id(page, "queue-maxsize"), "2")
    expect_text(by_id(page, "queue-failed"), "1")
    depth = by_id(page, "chart-depth")
    legend = depth.locator('[data-testid="chart-legend"] li')
    expect_text(legend, ["ready", "scheduled", "running", "waiting"])
    labels = depth.locator("svg.chart text.axis-label")
    expect_text(labels, [re.compile(r"^time \(UTC"), "jobs"])
    assert depth.locator("svg.chart text.tick").count() >= 4  # counts and times
    throughput = by_id(page, "chart-queue-throughput")
    expect_text(
        throughput.locator('[data-testid="chart-legend"] li').filter(has_text="failed"),
        re.compile(r"failed · 1$"),
    )
    expect_text(
        throughput.locator("svg.chart text.axis-label"), [re.compile(r"^time"), "jobs per 1 min"]
    )
    by_id(page, "window-24h").click()
    expect(by_id(page, "window-24h")).to_have_attribute("aria-pressed", "true")
    expect_text(
        throughput.locator("svg.chart text.axis-label"),
        [re.compile(r"^time"), re.compile(r"^jobs per")],
    )
    assert page.evaluate("location.hash") == "#/queues/small?window=24h"


# -- #/tasks, #/workers, #/schedules --------------------------------------------------------


def test_the_tasks_page_shows_each_tasks_runs_after_a_worker_ran_them(
    app: App, base: str, page: Any
) -> None:
    add = app.tasks["add"]
    jobs = [add.delay(i, i) for i in range(3)] + [app.tasks["boom"].delay()]
    with working(app):
        wait_for(lambda: all(job.status in ("succeeded", "failed") for job in jobs))
    show(page, base, "#/tasks")
    added = page.locator('[data-testid="tasks-table"] tr[data-task="add"] td')
    expect_text(added.nth(1), "default")
    expect_text(added.nth(2), "3")
    expect_text(added.nth(3), "0")
    expect_text(added.nth(4), "0.0 %")
    for column in (5, 6, 7):  # p50, p95, p99 in ms
        expect_text(added.nth(column), re.compile(r"^\d[\d,]*$"))
    boom = page.locator('[data-testid="tasks-table"] tr[data-task="boom"]')
    expect_text(boom.locator("td").nth(3), "1")
    expect_text(boom.locator("td").nth(4), "100.0 %")
    assert "has-failures" in (boom.get_attribute("class") or "")
    by_id(page, "window-10m").click()
    expect(by_id(page, "window-10m")).to_have_attribute("aria-pressed", "true")
    expect_text(added.nth(2), "3")
    added.nth(0).locator("a").click()
    expect(by_id(page, "filter-task")).to_have_value("add")
    expect_count(rows_of(page, "jobs-table"), 3)


def test_the_workers_page_shows_a_live_worker_with_its_job_a_stale_one_and_a_gone_one(
    app: App, base: str, page: Any
) -> None:
    gate = threading.Event()
    app.task(name="hold", queue="hold")(lambda: gate.wait(30))
    # A worker beats every third of a lease and shows as stale after two missed beats: with
    # 9 s leases, one whose last heartbeat (kept an hour) is over 6 s old.
    app.lease = 9.0
    # (The store stamps the heartbeat's time itself: this one is stale once 6 s have passed.)
    now = time.time()
    app.store.heartbeat(
        WorkerInfo("w-stale", "old-host", 4242, "thread", 1, ("default",), 0, now - 600, now), 3600
    )
    orphan = app.tasks["add"].delay(1, 1)
    assert [item.id for item in app.store.reserve("default", "w-gone", 600)] != []
    held = app.tasks["hold"].delay()
    try:
        with working(app, queues=["hold"], concurrency=2) as worker:
            wait_for(lambda: held.status == "running")
            show(page, base, "#/workers")
            live = page.locator(f'[data-testid="workers-table"] tr[data-worker="{worker.id}"]')
            expect_text(live.locator('[data-testid="job-link"]'), held.id)
            expect_text(live.locator("td.busy"), "1 / 2")
            expect_text(live.locator("td").last, "alive")
            assert "stale" not in (live.get_attribute("class") or "")
            stale = page.locator('[data-testid="workers-table"] tr[data-worker="w-stale"]')
            expect_text(stale.locator('[data-testid="worker-stale"]'), "stale")
            assert "stale" in (stale.get_attribute("class") or "")
            assert stale.evaluate("tr => getComputedStyle(tr.cells[0]).backgroundColor") != (
                live.evaluate("tr => getComputedStyle(tr.cells[0]).backgroundColor")
            )
            gone = page.locator('[data-testid="gone-table"] tr[data-worker="w-gone"]')
            expect_text(gone.locator('[data-testid="job-link"]'), orphan.id)
            # A worker whose heartbeats stop: listed alive, then, once the store forgets it
            # (its heartbeat's time to live), still listed, as dead.
            brief = WorkerInfo("w-brief", "brief-host", 77, "thread", 1, ("default",), 0, now, now)
            app.store.heartbeat(brief, 3.0)
            row = page.locator('[data-testid="workers-table"] tr[data-worker="w-brief"]')
            expect_text(row.locator("td").last, "alive")
            expect_text(row.locator('[data-testid="worker-dead"]'), "dead")
            gate.set()
            expect_text(live.locator("td.busy"), "0 / 2")
    finally:
        gate.set()


def test_the_schedules_page_lists_the_periodic_schedules_and_flags_an_overdue_one(
    app: App, base: str, page: Any
) -> None:
    @app.periodic(every=3600, args=(1, 2))
    @app.task(name="hourly")
    def hourly(a: int, b: int) -> int:
        return a + b

    @app.periodic(every=600)
    @app.task(name="often", queue="small")
    def often() -> None:
        pass

    # A scheduler that stopped half an hour ago: its last run was then, the next is overdue.
    (schedule,) = [s for s in app.schedules if s.task.name == "often"]
    last = schedule.last_at_or_before(time.time() - 1800)
    app.store.kv_set("baozi.beat", schedule.key, repr(last).encode())
    show(page, base, "#/schedules")
    rows = page.locator('[data-testid="schedules-table"] tbody tr[data-schedule]')
    expect_count(rows, 2)
    hourly_row = rows.filter(has_text="hourly").locator("td")
    expect_text(hourly_row.nth(2), "default")
    expect_text(hourly_row.nth(3), "every 3600s")
    expect_text(hourly_row.nth(4), "–")
    expect_text(hourly_row.nth(5), re.compile(r"· in \d+ (min|s)$"))
    late = rows.filter(has_text="often")
    expect_text(late.locator('[data-testid="schedule-overdue"]'), "overdue")
    assert "overdue" in (late.get_attribute("class") or "")
    expect_text(late.locator("td").nth(4), re.compile(r"· (3\d|40) min ago$"))
    assert rows.filter(has_text="hourly").locator('[data-testid="schedule-overdue"]').count() == 0


def test_waiting_a_while_on_a_page_shows_what_changed(app: App, base: str, page: Any) -> None:
    """The pages that are not the overview follow the store too (here, the scheduled list)."""
    show(page, base, "#/scheduled")
    expect_text(page.locator('[data-testid="scheduled-table"] td.empty'), "No job is scheduled.")
    job = app.tasks["add"].apply_async(args=(1, 1), delay=300)
    expect_count(page.locator(f'[data-testid="scheduled-table"] tr[data-job="{job.id}"]'), 1)
