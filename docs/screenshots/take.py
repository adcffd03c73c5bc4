"""Take the dashboard screenshots in this folder: an app of a small shop on a temporary SQLite
store, an hour of run statistics and queue depths written the way workers and the web server
write them, real jobs run by a real worker (some fail), a live worker holding a job that
reports progress, a worker that stopped sending heartbeats, periodic schedules; served by
uvicorn on loopback and captured by headless Chromium at 1280 x 800 (and the overview in the
dark scheme and 375 px wide).

    /tmp/vt/bin/python docs/screenshots/take.py        # Chromium at /usr/bin/chromium
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import expect

from baozi import App, Worker, chain, current_job
from baozi._runstats import DepthSamples, RunStats
from baozi.backends.base import Item, WorkerInfo
from baozi.web import create_app

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
TOKEN = "screenshot-token-0123456789"
SIZE = {"width": 1280, "height": 800}
random.seed(7)
hold = threading.Event()  # the import job runs until the screenshots are taken


def shop(url: str) -> App:
    app = App(url, lease=6.0)  # a worker beats every 2 s, and is stale after 4 s without one

    @app.task(name="emails.send_welcome", queue="emails")
    def send_welcome(user_id: int) -> str:
        time.sleep(random.uniform(0.01, 0.05))
        return f"sent to user {user_id}"

    @app.task(name="images.resize", queue="images")
    def resize(path: str, width: int) -> dict[str, Any]:
        time.sleep(random.uniform(0.03, 0.2))
        return {"path": path.replace(".png", f"-{width}.png"), "width": width}

    @app.task(name="billing.charge")
    def charge(order_id: int, cents: int) -> dict[str, Any]:
        time.sleep(random.uniform(0.02, 0.08))
        if order_id % 7 == 0:
            raise ValueError(f"card declined for order {order_id}")
        return {"order": order_id, "charged": cents}

    @app.task(name="orders.import_batch", queue="imports")
    def import_batch(batch: int, of: int) -> int:
        job = current_job()
        job.set_progress(0.4, f"batch {batch} of {of}: 400 of 1,000 orders")
        while not hold.wait(0.05):
            pass
        return 1000

    @app.task(name="reports.orders_summary", queue="reports")
    def orders_summary(imported: int) -> str:
        return f"{imported} orders imported"

    @app.periodic(cron="0 2 * * *")
    @app.task(name="reports.nightly", queue="reports")
    def nightly() -> None:
        pass

    @app.periodic(every=600)
    @app.task(name="maintenance.cleanup")
    def cleanup() -> None:
        pass

    app.queue("images", maxsize=500)
    return app


def backfill(app: App) -> None:
    """An hour of run statistics and queue depths, written by the same writers a worker and the
    web server use, so that the charts show a working hour and not only the last minute."""
    stats = RunStats(app.store, "history")
    depth = DepthSamples()
    now_wall, now_mono = time.time(), time.monotonic()
    tasks = [
        ("emails", "emails.send_welcome", 14, 0.03),
        ("images", "images.resize", 6, 0.12),
        ("default", "billing.charge", 4, 0.05),
    ]
    for minute in range(60, 0, -1):
        busy = 1.0 + 0.6 * random.random() + (0.8 if 20 < minute < 35 else 0.0)
        for queue, task, per_minute, seconds in tasks:
            for k in range(int(per_minute * busy)):
                age = minute * 60 - random.uniform(0, 60)
                item = Item(f"h{minute}-{task}-{k}", b"", 0, 1, task, 0)
                took = random.lognormvariate(0, 0.4) * seconds
                stats.ran(queue, item, "succeeded", now_mono - age - took, took, None)
        for step in range(0, 60, 10):
            at = now_wall - minute * 60 + step
            wave = int(12 * busy * random.random())
            depth.add(
                "emails",
                {"ready": wave, "scheduled": 2 + minute % 3, "running": min(4, wave // 3)},
                at,
            )
            depth.add("images", {"ready": wave // 2 + 3, "scheduled": 2, "running": 2}, at)
            depth.add("default", {"ready": wave // 4, "running": 1}, at)
    stats.flush()
    depth.flush(app.store)


def run_real_jobs(app: App) -> None:
    """Real jobs on every queue, run by a real worker; every seventh charge fails."""
    send, resize, charge = (
        app.tasks[n] for n in ("emails.send_welcome", "images.resize", "billing.charge")
    )
    jobs = [send.delay(1000 + i) for i in range(40)]
    jobs += [resize.delay(f"uploads/photo-{i}.png", 320) for i in range(20)]
    jobs += [charge.delay(1036 + i, 1299 + 100 * i) for i in range(15)]
    worker = Worker(app, queues=["emails", "images", "default"], concurrency=4)
    worker.start()
    deadline = time.monotonic() + 60
    while any(job.status not in ("succeeded", "failed") for job in jobs):
        assert time.monotonic() < deadline, "the worker did not finish the jobs"
        time.sleep(0.05)
    worker.close()  # (its run statistics are written as it closes)
    assert worker.join(30)


def leave_work(app: App) -> dict[str, Any]:
    """What the pages show: jobs waiting in line, scheduled, a workflow, a cancelled job."""
    send, resize, charge = (
        app.tasks[n] for n in ("emails.send_welcome", "images.resize", "billing.charge")
    )
    for i in range(18):
        send.delay(2000 + i)
    for i in range(7):
        resize.delay(f"uploads/banner-{i}.png", 1280)
    for delay in (300, 900, 2400, 5400):
        send.apply_async(args=(3000 + delay,), delay=delay)
    charge.apply_async(args=(1100, 4999), delay=3600)
    charge.delay(1101, 2500).cancel()
    importer, summary = app.tasks["orders.import_batch"], app.tasks["reports.orders_summary"]
    flow = list(chain(importer.s(4, 10), summary.s()).delay())
    return {"running": flow[0]}


@contextmanager
def serving(app: App, token: str | None = None) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(app, token=token), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def capture(page: Any, base: str, route: str, name: str, ready: str, scroll: str = "") -> None:
    page.goto(f"{base}/{route}")
    page.locator("#live", has_text="live").wait_for()
    page.locator(ready).first.wait_for()
    expect(page.locator("main td.empty", has_text="Loading")).to_have_count(0)
    page.wait_for_timeout(400)  # the charts are drawn after their answers
    if scroll:  # the part of a long page worth showing, at the top of the screen
        page.locator(scroll).first.evaluate("(node) => node.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(100)
    path = HERE / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size // 1024} KB")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        app = shop(f"sqlite:///{tmp}/shop.db")
        backfill(app)
        run_real_jobs(app)
        work = leave_work(app)
        failed = app.store.records("default", status="failed", limit=1)[0]
        now = time.time()
        app.store.heartbeat(
            WorkerInfo(
                "worker-7f3a",
                "batch-2.internal",
                31337,
                "process",
                4,
                ("emails", "images"),
                0,
                now - 7200,
                now,
            ),
            3600,
        )
        live = Worker(app, queues=["imports"], concurrency=2)
        live.start()
        try:
            while work["running"].status != "running":
                time.sleep(0.05)
            time.sleep(4.5)  # the other worker's last heartbeat is now over 4 s old: stale
            shots(sync_playwright, app, work["running"].id, failed.id)
        finally:
            hold.set()
            live.close()
            live.join(30)


def shots(sync_playwright: Any, app: App, running: str, failed: str) -> None:
    pages = [
        ("#/", "overview", '[data-testid="chart-throughput"] svg'),
        ("#/jobs", "jobs", '[data-testid="jobs-table"] tr[data-job]'),
        (f"#/jobs/{running}", "job", '[data-testid="graph-node"]'),
        ("#/scheduled", "scheduled", '[data-testid="scheduled-table"] tr[data-job]'),
        ("#/failed", "failed", '[data-testid="failed-table"] tr[data-job]'),
        ("#/queues", "queues", '[data-testid="queues-table"] tr[data-queue]'),
        ("#/queues/emails", "queue", '[data-testid="chart-depth"] svg'),
        ("#/tasks", "tasks", '[data-testid="tasks-table"] tr[data-task]'),
        ("#/workers", "workers", '[data-testid="workers-table"] tr[data-worker]'),
        ("#/schedules", "schedules", '[data-testid="schedules-table"] tr[data-schedule]'),
    ]
    with serving(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        light = browser.new_page(viewport=SIZE, color_scheme="light", timezone_id="UTC")
        for route, name, ready in pages:
            capture(light, base, route, name, ready)
        capture(
            light,
            base,
            f"#/jobs/{running}",
            "job-workflow",
            '[data-testid="graph-node"]',
            scroll='[data-testid="attempts-table"]',
        )
        capture(
            light,
            base,
            f"#/jobs/{failed}",
            "job-error",
            '[data-testid="job-traceback"]',
            scroll='[data-testid="job-error"]',
        )
        dark = browser.new_page(viewport=SIZE, color_scheme="dark", timezone_id="UTC")
        capture(dark, base, "#/", "overview-dark", pages[0][2])
        narrow = browser.new_page(
            viewport={"width": 375, "height": 800},
            color_scheme="light",
            timezone_id="UTC",
            device_scale_factor=1,
        )
        capture(narrow, base, "#/", "overview-narrow", pages[0][2])
        with serving(app, token=TOKEN) as guarded:
            login = browser.new_page(viewport=SIZE, color_scheme="light")
            login.goto(guarded)
            login.get_by_test_id("login-token").wait_for()
            path = HERE / "login.png"
            login.screenshot(path=str(path), full_page=False)
            print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size // 1024} KB")
        browser.close()


if __name__ == "__main__":
    main()
