"""The dashboard's frame in real headless Chromium: every page renders with no script error or
policy violation, the overview counts what the store holds and follows it live, stored text
shows as text, the token is asked for once (and the cookie is out of scripts' reach), the
keyboard reaches the navigation, the confirmation closes on Escape, the dark scheme and a
phone-wide screen are looked after, and a hidden tab stops its live updates."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import baozi.web.api
from baozi import App, chain

from ._dashboard import (
    EVENTS_EVERY,
    TRACK_SOURCES,
    Console,
    by_id,
    expect_count,
    expect_text,
    expect_visible,
    failed_jobs,
    show,
    total_counts,
    watched_page,
)
from ._helpers import wait_for, working
from ._web import chromium, make_app, served

TOKEN = "dashboard-token-0123456789"


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


def seed(app: App) -> dict[str, Any]:
    """Jobs in every status: queued, scheduled, waiting (a chain), succeeded, failed, cancelled."""
    add = app.tasks["add"]
    failed = failed_jobs(app, "default", 1)[0]
    done = add.apply_async(args=(1, 1), queue="small")
    with working(app, queues=["small"]):
        wait_for(lambda: done.status == "succeeded")
    queued = [add.delay(i, i) for i in range(3)]
    scheduled = add.apply_async(args=(2, 2), delay=600)
    flow = list(chain(add.s(1, 2), add.s(3)).delay())
    cancelled = add.delay(9, 9)
    cancelled.cancel()
    return {
        "failed": failed,
        "done": done,
        "queued": queued,
        "scheduled": scheduled,
        "flow": flow,
        "cancelled": cancelled,
    }


ROUTES = [
    # (route, the page's heading, the nav link marked current, what shows once it has loaded)
    ("#/", "Overview", "nav-overview", 'queues-table tr[data-queue="default"]'),
    ("#/jobs", "Jobs", "nav-jobs", "jobs-table tr[data-job]"),
    ("#/scheduled", "Scheduled", "nav-scheduled", "scheduled-table tr[data-job]"),
    ("#/failed", "Failed", "nav-failed", "failed-table tr[data-job]"),
    ("#/queues", "Queues", "nav-queues", 'queues-table tr[data-queue="small"]'),
    ("#/queues/small", "Queue small", "nav-queues", "chart-depth svg.chart"),
    ("#/tasks", "Tasks", "nav-tasks", 'tasks-table tr[data-task="add"]'),
    ("#/workers", "Workers", "nav-workers", 'workers-table td:has-text("No worker is running")'),
    ("#/schedules", "Schedules", "nav-schedules", 'schedules-table td:has-text("No periodic")'),
]


def loaded(page: Any, what: str) -> Any:
    name, _, rest = what.partition(" ")
    return page.locator(f'[data-testid="{name}"] {rest}'.strip()).first


def test_every_page_renders_without_a_script_error_or_a_policy_violation(
    app: App, base: str, page: Any, console: Console
) -> None:
    jobs = seed(app)
    show(page, base, "#/")
    for route, title, nav, what in ROUTES:
        page.goto(f"{base}/{route}")
        expect_text(by_id(page, "page-title"), title)
        expect_visible(loaded(page, what))
        assert page.title() == f"{title} · baozi"
        current = page.locator('#nav a[aria-current="page"]')
        assert current.get_attribute("data-testid") == nav
    job = jobs["failed"]
    page.goto(f"{base}/#/jobs/{job.id}")
    expect_text(by_id(page, "job-status"), "failed")
    # What is not there: a page that says so, its 404 answers expected and no others.
    console.allow(404, "/api/jobs/no-such-job")
    page.goto(f"{base}/#/jobs/no-such-job")
    expect_text(by_id(page, "job-missing"), re.compile("^No job no-such-job: it never existed"))
    console.allow(404, "/api/queues/depth")
    page.goto(f"{base}/#/queues/nowhere")
    expect_text(by_id(page, "queue-missing"), re.compile('^No queue "nowhere"'))
    page.goto(f"{base}/#/nowhere")
    expect_text(by_id(page, "page-title"), "No such page")
    assert page.locator('#nav a[aria-current="page"]').count() == 0


def test_the_overview_counts_what_the_store_holds_and_follows_it_live(
    app: App, base: str, page: Any
) -> None:
    seed(app)
    show(page, base, "#/")
    totals = total_counts(app)
    for status in ("queued", "scheduled", "running", "waiting", "succeeded", "failed", "cancelled"):
        expect_text(by_id(page, f"count-{status}"), str(totals.get(status, 0)))
    assert totals["queued"] == 4 and totals["waiting"] == 1 and totals["cancelled"] == 1
    expect_text(by_id(page, "count-workers"), "0")
    default = page.locator('[data-testid="queues-table"] tr[data-queue="default"]')
    expect_text(default.locator("td.ready"), "4")
    expect_text(default.locator("td.failed"), "1")
    expect_text(by_id(page, "failed-badge"), "1")
    page.evaluate("window.sameLoad = true")  # gone if the page reloads
    with httpx.Client(base_url=base) as client:
        for i in range(2):
            assert client.post("/api/jobs", json={"task": "add", "args": [i, i]}).is_success
    expect_text(by_id(page, "count-queued"), "6")
    expect_text(default.locator("td.ready"), "6")
    with working(app, queues=["nothing-here"]):
        expect_text(by_id(page, "count-workers"), "1")
    expect_text(by_id(page, "count-workers"), "0")
    assert page.evaluate("window.sameLoad") is True


def test_the_throughput_chart_counts_the_runs_and_keeps_its_window_in_the_address(
    app: App, base: str, page: Any
) -> None:
    seed(app)  # the workers that ran these wrote their run statistics as they closed
    show(page, base, "#/")
    chart = by_id(page, "chart-throughput")
    legend = chart.locator('[data-testid="chart-legend"] li')
    expect_text(legend.filter(has_text="default failed"), re.compile(r"default failed · 1$"))
    expect_text(legend.filter(has_text="small succeeded"), re.compile(r"small succeeded · 1$"))
    assert by_id(page, "window-1h").get_attribute("aria-pressed") == "true"
    by_id(page, "window-10m").click()
    expect_text(by_id(page, "window-10m"), "10m")
    from playwright.sync_api import expect

    expect(by_id(page, "window-10m")).to_have_attribute("aria-pressed", "true")
    assert by_id(page, "window-1h").get_attribute("aria-pressed") == "false"
    assert page.evaluate("location.hash") == "#/?window=10m"
    page.reload()
    expect(by_id(page, "window-10m")).to_have_attribute("aria-pressed", "true")
    expect_text(legend.filter(has_text="default failed"), re.compile(r"default failed · 1$"))
    assert chart.locator("svg.chart text.axis-label").count() == 2


def test_stored_text_shows_as_text_never_as_html(app: App, base: str, page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    script = "<script>alert(1)</script>"
    image = '<img src=x onerror="alert(2)">'
    with httpx.Client(base_url=base) as client:
        answer = client.post("/api/jobs", json={"task": "echo", "args": [script], "queue": image})
        job = answer.json()
    boom = app.tasks["boom"].delay(image)
    with working(app, queues=["default"]):
        wait_for(lambda: boom.status == "failed")
    show(page, base, "#/jobs")
    row = page.locator(f'[data-testid="jobs-table"] tr[data-job="{job["id"]}"]')
    expect_text(row.locator("td.args"), '["<script>alert(1)</script>"]')
    expect_text(row.locator('[data-testid="queue-link"]'), image)
    page.goto(f"{base}/#/queues")
    expect_text(
        page.locator('[data-testid="queues-table"] [data-testid="queue-link"]').first, image
    )
    page.goto(f"{base}/#/failed")
    expect_text(page.locator('[data-testid="failed-table"] td.error-text'), f"ValueError: {image}")
    page.goto(f"{base}/#/jobs/{boom.id}")
    expect_text(by_id(page, "job-error"), f"ValueError: {image}")
    expect_text(
        by_id(page, "job-args"), re.compile(re.escape('"<img src=x onerror=\\"alert(2)\\">"'))
    )
    page.goto(f"{base}/#/queues/{image}")
    expect_text(by_id(page, "queue-name"), image)
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


@pytest.mark.parametrize("queue", [".", ".."])
def test_a_queue_named_dot_or_dot_dot_is_paused_and_resumed_from_its_page(
    app: App, base: str, page: Any, queue: str
) -> None:
    app.tasks["add"].apply_async(args=(1, 1), queue=queue)
    show(page, base, "#/queues")
    page.locator(f'[data-testid="queue-link"][data-key="{queue}"]').click()
    expect_text(by_id(page, "queue-name"), queue)
    expect_text(by_id(page, "queue-ready"), "1")
    by_id(page, "queue-pause").click()
    expect_text(by_id(page, "queue-state"), "paused")
    assert app.is_paused(queue)
    by_id(page, "queue-resume").click()
    expect_text(by_id(page, "queue-state"), "active")
    assert not app.is_paused(queue)


# -- the token ------------------------------------------------------------------------------


def test_the_token_is_asked_for_once_and_its_cookie_is_out_of_scripts_reach(
    app: App, browser: Any
) -> None:
    with served(app, token=TOKEN) as base:
        with watched_page(browser) as (page, console):
            console.allow(401, "/api/session")  # asked before the login: the form is shown
            page.goto(base)
            expect_visible(by_id(page, "login"))
            assert not by_id(page, "nav").is_visible()
            assert not by_id(page, "app").is_visible()
            assert not by_id(page, "login-error").is_visible()
            assert page.evaluate("document.activeElement.id") == "login-token"
            by_id(page, "login-token").fill("wrong")
            by_id(page, "login-submit").click()
            expect_text(by_id(page, "login-error"), "That token was refused.")
            by_id(page, "login-token").fill(TOKEN)
            by_id(page, "login-submit").click()
            expect_text(by_id(page, "page-title"), "Overview")
            expect_text(by_id(page, "count-queued"), "0")
            assert not by_id(page, "login").is_visible()
            assert "baozi_session" not in page.evaluate("document.cookie")
            (cookie,) = [c for c in page.context.cookies() if c["name"] == "baozi_session"]
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            page.reload()  # kept for the session: not asked again
            expect_text(by_id(page, "page-title"), "Overview")
            expect_visible(by_id(page, "logout"))
            assert not by_id(page, "login").is_visible()
            with watched_page(browser) as (other, other_console):  # another session asks again
                other_console.allow(401, "/api/session")
                other.goto(base)
                expect_visible(by_id(other, "login"))
            by_id(page, "logout").click()
            expect_visible(by_id(page, "login"))
            assert not by_id(page, "nav").is_visible()
            assert [c for c in page.context.cookies() if c["name"] == "baozi_session"] == []
            assert page.request.get(f"{base}/api/queues").status == 401


def test_without_a_token_there_is_no_login_and_no_logout(base: str, page: Any) -> None:
    show(page, base, "#/")
    assert not by_id(page, "login").is_visible()
    assert not by_id(page, "logout").is_visible()


# -- keyboard, dialog, looks ----------------------------------------------------------------


def test_the_keyboard_reaches_the_navigation_and_enter_follows_a_link(base: str, page: Any) -> None:
    show(page, base, "#/")
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.dataset.testid || ''"))
        if focused[-1] == "nav-workers":
            break
    assert focused[-1] == "nav-workers", focused
    assert {"nav-overview", "nav-jobs", "nav-failed"} <= set(focused)
    page.keyboard.press("Enter")
    expect_text(by_id(page, "page-title"), "Workers")
    assert page.evaluate("location.hash") == "#/workers"
    assert page.evaluate("document.activeElement.id") == "page-title"  # the reader is moved


def test_the_confirmation_closes_on_escape_and_changes_nothing(
    app: App, base: str, page: Any
) -> None:
    jobs = failed_jobs(app, "default", 2)
    show(page, base, "#/failed")
    expect_text(page.locator('[data-testid="failed-table"] tr[data-job] td').first, re.compile("."))
    dialog = by_id(page, "confirm-dialog")
    by_id(page, "delete-all").click()
    expect_visible(dialog)
    expect_text(by_id(page, "confirm-text"), re.compile(r"^Delete all 2 failed jobs\?"))
    assert page.evaluate("document.activeElement.dataset.testid") == "confirm-cancel"
    page.keyboard.press("Escape")
    from playwright.sync_api import expect

    expect(dialog).to_be_hidden()
    expect_text(by_id(page, "status-ok"), "Nothing was changed.")
    assert page.evaluate("document.activeElement.dataset.testid") == "delete-all"
    assert [app.store.record(job.id).status for job in jobs] == ["failed", "failed"]


def colours(page: Any) -> tuple[str, str]:
    return page.evaluate(
        """[getComputedStyle(document.documentElement).backgroundColor,
            getComputedStyle(document.querySelector('.counter')).backgroundColor]"""
    )


def brightness(colour: str) -> int:
    return sum(int(n) for n in re.findall(r"\d+", colour)[:3])


def test_the_dark_scheme_darkens_the_page(base: str, page: Any) -> None:
    page.emulate_media(color_scheme="light")
    show(page, base, "#/")
    expect_visible(by_id(page, "count-queued"))
    light = colours(page)
    page.emulate_media(color_scheme="dark")
    dark = colours(page)
    assert brightness(dark[0]) < brightness(light[0]) / 3, (light, dark)
    assert brightness(dark[1]) < brightness(light[1]) / 3, (light, dark)


def test_no_page_is_wider_than_a_phone_screen(app: App, base: str, browser: Any) -> None:
    jobs = seed(app)
    app.tasks["echo"].delay("a long argument " * 20, key="value " * 30)
    long_name = "a-queue-with-a-rather-long-name-for-a-small-screen"
    app.tasks["add"].apply_async(args=(1, 2), queue=long_name)
    routes = [route for route, *_ in ROUTES] + [
        f"#/jobs/{jobs['flow'][1].id}",
        f"#/jobs/{jobs['failed'].id}",
        f"#/queues/{long_name}",
    ]
    with watched_page(browser, viewport={"width": 375, "height": 800}) as (page, _):
        show(page, base, "#/")
        for route in routes:
            page.goto(f"{base}/{route}")
            expect_visible(by_id(page, "page-title"))
            expect_count(page.locator("main td.empty", has_text="Loading…"), 0)
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (route, width)


def test_a_hidden_tab_stops_its_live_updates_and_a_shown_one_starts_them(
    app: App, base: str, browser: Any
) -> None:
    with watched_page(browser) as (page, _):
        page.add_init_script(TRACK_SOURCES)
        asked: list[str] = []  # the API requests the page made (the event stream aside)
        under_way: set[Any] = set()

        def sent(request: Any) -> None:
            if "/api/" in request.url and "/api/events" not in request.url:
                asked.append(request.url)
                under_way.add(request)

        page.on("request", sent)
        page.on("requestfinished", lambda request: under_way.discard(request))
        page.on("requestfailed", lambda request: under_way.discard(request))
        show(page, base, "#/")
        assert page.evaluate("window.__sources.map((s) => s.readyState)") == [1]  # open
        page.evaluate(
            """() => {
                Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
                Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        expect_text(by_id(page, "live-state"), "paused while hidden")
        assert page.evaluate("window.__sources.map((s) => s.readyState)") == [2]  # closed
        # A refresh under way as the tab was hidden ends; then nothing more is asked.
        quiet_since, until = time.monotonic(), time.monotonic() + 15
        while time.monotonic() - quiet_since < 0.5:
            assert time.monotonic() < until, "the page kept asking while hidden"
            if under_way:
                quiet_since = time.monotonic()
            page.wait_for_timeout(50)
        before = len(asked)
        shown = by_id(page, "count-queued").text_content()
        app.tasks["add"].delay(1, 1)
        # Five ticks of the stream and more than one poll: nothing is asked while hidden.
        page.wait_for_timeout(2500)
        assert asked[before:] == []
        assert by_id(page, "count-queued").text_content() == shown == "0"
        page.evaluate(
            """() => {
                Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
                Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        expect_text(by_id(page, "live-state"), "live")
        expect_text(by_id(page, "count-queued"), "1")
        assert page.evaluate("window.__sources.map((s) => s.readyState)") == [2, 1]
