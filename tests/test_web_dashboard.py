"""The dashboard in real headless Chromium: it updates itself as jobs are enqueued and run, its
buttons act on jobs and queues, what comes from the store shows as text, and it asks for the
token once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import baozi.web
from baozi import App, chain
from baozi.backends.base import STATUSES

from ._helpers import working
from ._web import chromium, make_app, served

TOKEN = "dashboard-token"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(f"sqlite:///{tmp_path / 'dashboard.db'}")


@pytest.fixture
def base(app: App) -> Iterator[str]:
    with served(app) as base:
        yield base


def cell(page: Any, queue: str, column: str) -> Any:
    return page.locator(f'#queues tr[data-queue="{queue}"] td.{column}')


def expect_text(locator: Any, text: str | re.Pattern[str] | list[str]) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_text(text, timeout=WAIT_MS)


def test_the_dashboard_follows_jobs_as_they_are_enqueued_and_run(
    app: App, base: str, page: Any
) -> None:
    page.goto(base)
    expect_text(cell(page, "small", "ready"), "0")  # declared, so shown before it holds a job
    assert page.locator('#queues tr[data-queue="default"]').count() == 0
    page.evaluate("window.sameLoad = true")  # gone if the page reloads
    with httpx.Client(base_url=base) as client:
        for i in range(3):
            client.post("/api/jobs", json={"task": "add", "args": [i, i]})
        client.post("/api/jobs", json={"task": "boom", "args": ["out of buns"]})
    expect_text(cell(page, "default", "ready"), "4")
    expect_text(cell(page, "default", "succeeded"), "0")
    expect_text(page.locator("#jobs tbody td.status-queued"), ["queued"] * 4)
    with working(app, concurrency=2):
        expect_text(cell(page, "default", "succeeded"), "3")
        expect_text(cell(page, "default", "failed"), "1")
        expect_text(page.locator("#workers tbody tr td").nth(3), "0 / 2")
    expect_text(cell(page, "default", "ready"), "0")
    expect_text(page.locator("#failed tbody td.error-text"), "ValueError: out of buns")
    assert int(page.locator("#peak").text_content()) >= 1  # the chart counted the finishes
    page.locator("#failed tbody button", has_text="retry").click()
    expect_text(cell(page, "default", "failed"), "0")
    expect_text(cell(page, "default", "ready"), "1")
    expect_text(page.locator("#failed tbody"), "no failed jobs")
    assert page.evaluate("window.sameLoad") is True


def test_a_waiting_job_is_cancelled_from_the_dashboard(base: str, page: Any) -> None:
    with httpx.Client(base_url=base) as client:
        job = client.post("/api/jobs", json={"task": "add", "args": [1, 1], "delay": 600}).json()
    page.goto(base)
    row = page.locator(f'#jobs tr[data-job="{job["id"]}"]')
    expect_text(row.locator("td").nth(3), "scheduled")
    row.locator("button", has_text="cancel").click()
    expect_text(row.locator("td").nth(3), "cancelled")
    assert httpx.get(f"{base}{job['url']}").json()["status"] == "cancelled"


def test_arguments_and_errors_show_as_text_never_as_html(base: str, page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    script = "<script>alert(1)</script>"
    image = '<img src=x onerror="alert(2)">'
    with httpx.Client(base_url=base) as client:
        client.post("/api/jobs", json={"task": "echo", "args": [script], "queue": image})
    page.goto(base)
    args = page.locator("#jobs td.args")
    expect_text(args, '["<script>alert(1)</script>"]')
    expect_text(page.locator("#jobs tbody td").nth(2), image)
    expect_text(page.locator("#queues tbody td").first, image)
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def test_a_queue_is_paused_and_resumed_from_the_dashboard(app: App, base: str, page: Any) -> None:
    with httpx.Client(base_url=base) as client:
        client.post("/api/jobs", json={"task": "add", "args": [1, 1]})
    page.goto(base)
    row = page.locator('#queues tr[data-queue="default"]')
    name = row.locator("td").first
    expect_text(name, "default")
    row.locator("button", has_text="pause").click()
    expect_text(name, "default (paused)")
    assert app.is_paused("default")
    row.locator("button", has_text="resume").click()
    expect_text(name, "default")
    assert not app.is_paused("default")


def test_the_dashboard_asks_for_the_token_once(app: App, browser: Any) -> None:
    with served(app, token=TOKEN) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(base)
        login = page.locator("#login")
        expect_text(page.locator("#state"), "needs a token")
        assert login.is_visible() and not page.locator("#board").is_visible()
        page.fill("#token", "wrong")
        page.click("#login button")
        expect_text(page.locator("#login-error"), "That token was refused.")
        page.fill("#token", TOKEN)
        page.click("#login button")
        expect_text(cell(page, "small", "ready"), "0")
        assert not login.is_visible()
        page.reload()  # kept for the session: not asked again
        expect_text(page.locator("#state"), re.compile("^updated"))
        assert not login.is_visible()
        context.close()
        other = browser.new_context().new_page()  # another session asks again
        other.goto(base)
        expect_text(other.locator("#state"), "needs a token")
        other.context.close()


@pytest.mark.parametrize("queue", [".", ".."])
def test_a_queue_named_dot_or_dot_dot_is_paused_from_the_dashboard(
    app: App, base: str, page: Any, queue: str
) -> None:
    with httpx.Client(base_url=base) as client:
        client.post("/api/jobs", json={"task": "add", "args": [1, 1], "queue": queue})
    page.goto(base)
    row = page.locator(f'#queues tr[data-queue="{queue}"]')
    name = row.locator("td").first
    expect_text(name, queue)
    row.locator("button", has_text="pause").click()
    expect_text(name, f"{queue} (paused)")
    assert app.is_paused(queue)
    row.locator("button", has_text="resume").click()
    expect_text(name, queue)
    assert not app.is_paused(queue)


def test_the_busy_slots_follow_the_jobs_running(app: App, base: str, page: Any) -> None:
    import threading

    gate = threading.Event()
    app.task(name="hold")(lambda: gate.wait(30))
    page.goto(base)
    slots = page.locator("#workers tbody tr td").nth(3)
    with working(app, concurrency=2):
        expect_text(slots, "0 / 2")
        with httpx.Client(base_url=base) as client:
            client.post("/api/jobs", json={"task": "hold"})
        from playwright.sync_api import expect

        # Within a poll or two: the worker's next heartbeat is 10 s after its first.
        expect(slots).to_have_text("1 / 2", timeout=5000)
        gate.set()
        expect(slots).to_have_text("0 / 2", timeout=5000)


def crawl(seconds: float) -> None:
    """A task that runs for ``seconds`` in short steps, so that a cancel stops it at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_job_opens_with_its_unique_key_and_its_workflow_drawn(
    app: App, base: str, page: Any
) -> None:
    add = app.tasks["add"]
    flow = chain(add.s(1, 2).set(unique_key="nightly-report"), add.s(3), add.s(4)).delay()
    first, middle, last = list(flow)
    page.goto(f"{base}/#job={middle.id}")
    detail = page.locator("#detail")
    expect_text(detail.locator("#detail-id"), middle.id)
    expect_text(detail.locator('dd[data-field="status"]'), "waiting")
    expect_text(detail.locator('dd[data-field="summary"]'), "waiting for 1 job")
    expect_text(detail.locator('dd[data-field="eta"]'), "not known yet")
    expect_text(detail.locator('dd[data-field="parents"]'), first.id)
    expect_text(detail.locator('dd[data-field="children"]'), last.id)
    nodes = page.locator("#graph g.node")
    expect_text(nodes.locator(".status"), ["queued", "waiting", "waiting"])
    assert [nodes.nth(i).get_attribute("data-job") for i in range(3)] == [
        first.id,
        middle.id,
        last.id,
    ]
    assert page.locator("#graph path.edge").count() == 2
    assert "current" in (
        page.locator(f'#graph g.node[data-job="{middle.id}"]').get_attribute("class") or ""
    )
    expect_text(detail.locator('dd[data-field="unique_key"]'), "–")
    page.locator(f'#graph g.node[data-job="{first.id}"]').click()
    expect_text(detail.locator("#detail-id"), first.id)
    expect_text(detail.locator('dd[data-field="summary"]'), "queued, 0 ahead of it")
    expect_text(detail.locator('dd[data-field="unique_key"]'), "nightly-report")
    with working(app, concurrency=1):
        expect_text(nodes.locator(".status"), ["succeeded"] * 3)
    expect_text(detail.locator('dd[data-field="status"]'), "succeeded")


def test_the_job_list_is_filtered_by_status_waiting_included(
    app: App, base: str, page: Any
) -> None:
    add = app.tasks["add"]
    chain(add.s(1, 2), add.s(3), add.s(4)).delay()
    add.delay(5, 5)
    page.goto(base)
    statuses = page.locator("#jobs tbody td:nth-child(4)")
    expect_text(statuses, ["queued", "waiting", "waiting", "queued"])
    page.select_option("#status-filter", "waiting")
    expect_text(statuses, ["waiting", "waiting"])
    page.select_option("#status-filter", "queued")
    expect_text(statuses, ["queued", "queued"])


def test_a_running_job_is_cancelled_and_then_forgotten_from_its_detail(
    app: App, base: str, page: Any
) -> None:
    app.task(name="crawl", queue="slow")(crawl)
    job = app.tasks["crawl"].delay(60)
    page.goto(f"{base}/#job={job.id}")
    status = page.locator('#detail dd[data-field="status"]')
    expect_text(status, "queued")
    with working(app, queues=["slow"], concurrency=1):
        expect_text(status, "running")
        page.locator("#detail-actions button", has_text="cancel").click()
        expect_text(status, "cancelled")
        assert job.status == "cancelled"
    page.locator("#detail-actions button", has_text="forget").click()
    expect_text(page.locator("#detail-missing"), re.compile(f"^No job {job.id}:"))
    assert app.store.record(job.id) is None


def test_the_status_filter_offers_every_status() -> None:
    html = (Path(baozi.web.__file__).parent / "static" / "index.html").read_text()
    select = html.split('<select id="status-filter">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r"<option>(\w+)</option>", select) == list(STATUSES)
