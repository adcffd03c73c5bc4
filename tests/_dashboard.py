"""Helpers for the dashboard's browser tests: a page that records every console error, page
error and Content Security Policy violation, and the few ways the tests read and drive it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from baozi import App, Job

from ._helpers import wait_for, working

WAIT_MS = 15_000
"""How long a test waits for the page to show what it expects (a generous deadline: live
updates come every half second in these tests)."""
EVENTS_EVERY = 0.5
"""The event stream's tick in these tests (baozi's is 2 s), so that the page refreshes often."""

# Kept before any of the page's scripts run: the policy violations the page causes.
_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""

# Every EventSource the page opens, so that a test can see whether the one it holds is closed.
TRACK_SOURCES = """
(() => {
  const Native = window.EventSource;
  window.__sources = [];
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sources.push(this);
    }
  };
})();
"""

_REFUSED = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})\b")


class Console:
    """What went wrong in a page: console errors, uncaught exceptions and CSP violations. An
    answer of 4xx the test expects is allowed by its status and exact path, nothing wider."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.allowed: set[tuple[int, str]] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def allow(self, status: int, path: str) -> None:
        """Let the browser's console report an answer ``status`` from ``path`` (an expected
        refusal: a 401 before login, a 404 for a job that is gone)."""
        self.allowed.add((status, path))

    def _console(self, message: Any) -> None:
        if message.type not in ("error", "warning"):
            return
        refused = _REFUSED.match(message.text)
        if refused:
            where = urlsplit(message.location.get("url", "")).path
            if (int(refused.group(1)), where) in self.allowed:
                return
        self.errors.append(f"console {message.type}: {message.text} at {message.location}")

    def problems(self) -> list[str]:
        found = list(self.errors)
        if not self.page.is_closed():
            found += [f"CSP violation: {v}" for v in self.page.evaluate("window.__csp || []")]
        return found


@contextmanager
def watched_page(browser: Any, **options: Any) -> Iterator[tuple[Any, Console]]:
    """A page in a fresh browser context (its own cookies) at 1280 x 800 unless ``options`` say
    otherwise, with its console watched; the block fails if the page reported a problem."""
    options.setdefault("viewport", {"width": 1280, "height": 800})
    context = browser.new_context(**options)
    context.add_init_script(_WATCH)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    console = Console(page)
    try:
        yield page, console
        problems = console.problems()
        assert problems == [], problems
    finally:
        context.close()


def expect_text(locator: Any, text: str | re.Pattern[str] | list[Any]) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_text(text, timeout=WAIT_MS)


def expect_count(locator: Any, n: int) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_count(n, timeout=WAIT_MS)


def expect_visible(locator: Any) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_visible(timeout=WAIT_MS)


def by_id(page: Any, name: str) -> Any:
    return page.get_by_test_id(name)


def show(page: Any, base: str, route: str) -> None:
    """Open ``route`` (a hash route such as "#/jobs") and wait until its page has rendered."""
    page.goto(f"{base}/{route}")
    expect_text(page.locator("#live"), "live")
    expect_visible(by_id(page, "page-title"))


def total_counts(app: App) -> dict[str, int]:
    """Each status's count over every queue of the store."""
    totals: dict[str, int] = {}
    for queue in app.store.queues():
        for status, n in app.store.job_counts(queue).items():
            totals[status] = totals.get(status, 0) + n
    return totals


def failed_jobs(app: App, queue: str, n: int) -> list[Job]:
    """``n`` jobs of the task "boom" that a real worker ran and that failed, in ``queue``."""
    boom = app.tasks["boom"]
    jobs = [boom.apply_async(args=(f"failure {i}",), queue=queue) for i in range(n)]
    with working(app, queues=[queue], concurrency=2):
        wait_for(lambda: all(job.status == "failed" for job in jobs))
    return jobs


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds
