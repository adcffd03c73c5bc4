"""The ticket office example, run as its README says (a worker and the site, on the default
store in its folder), and used in headless Chromium: a ticket bought behind other orders shows
how many are ahead of it, counting down, then "confirmed"."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._web import chromium, free_port

ROOT = Path(__file__).resolve().parent.parent
SALE_SECONDS = "0.8"
BAOZI = shutil.which("baozi", path=str(Path(sys.executable).parent)) or shutil.which("baozi")
"""The console script the README runs (this interpreter's, when it has one)."""


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "BAOZI_URL"}
    env["TICKET_SECONDS"] = SALE_SECONDS
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
def office(tmp_path: Path) -> Iterator[str]:
    """The example's worker (one clerk) and site, running from a copy of its folder."""
    assert BAOZI is not None, "no baozi console script: install baozi (pip install -e .)"
    work = tmp_path / "ticket_office"
    shutil.copytree(ROOT / "examples" / "ticket_office", work)
    port = free_port()
    site = start([sys.executable, "office.py", "--port", str(port)], work)
    worker = start([BAOZI, "worker", "tickets:app", "-c", "1"], work)  # as the README says
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/trains").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert site.poll() is None and time.monotonic() < deadline, stop(site)
            time.sleep(0.05)
        yield base
    finally:
        worker_out, site_out = stop(worker), stop(site)
    assert (work / "baozi.db").exists()
    assert "Traceback" not in worker_out + site_out, worker_out + site_out


def test_a_ticket_counts_down_its_place_in_line_to_confirmed(office: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.goto(office)
        page.fill("#name", "<b>Ada</b>")
        page.select_option("#train", "D312 Xi'an - Chengdu")
        with httpx.Client(base_url=office) as client:  # three customers get there first
            for name in ("Bo", "Cai", "Dong"):
                order = {"name": name, "train": "G1 Beijing - Shanghai"}
                assert client.post("/orders", json=order).status_code == 202
        page.click("button[type=submit]")
        status = page.locator("#orders li").first.locator(".status")
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not seen or not seen[-1].startswith("confirmed"):
            assert time.monotonic() < deadline, seen
            text = status.text_content() or ""
            if not seen or text != seen[-1]:
                seen.append(text)
            time.sleep(0.05)
    ahead = [int(m.group(1)) for t in seen if (m := re.search(r"(\d+) orders? ahead", t))]
    assert ahead and ahead[0] >= 1, seen  # it joined behind others...
    assert ahead == sorted(ahead, reverse=True) and len(set(ahead)) >= 2, seen  # ...who went
    assert all(t.startswith("processing — ") for t in seen[:-1]), seen
    assert re.fullmatch(r"confirmed — <b>Ada</b>, D312 Xi'an - Chengdu, seat \d+[ABCD]", seen[-1])


def test_the_office_refuses_an_order_without_a_name(office: str) -> None:
    answer = httpx.post(f"{office}/orders", json={"name": " ", "train": "G1 Beijing - Shanghai"})
    assert answer.status_code == 422 and answer.json()["error"].startswith("name")
    for raw in (
        b'{"name": "Ada \\ud800", "train": "G1 Beijing - Shanghai"}',  # a lone surrogate
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ):
        refused = httpx.post(
            f"{office}/orders", content=raw, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 422, (raw[:40], refused.text)
    assert httpx.get(f"{office}/orders/nope").status_code == 404


def test_the_office_takes_orders_only_as_json_from_its_own_pages(office: str) -> None:
    order = {"name": "Ada", "train": "G1 Beijing - Shanghai"}
    text = httpx.post(
        f"{office}/orders", content=b'{"name": "Ada"}', headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    form = httpx.post(f"{office}/orders", data={"name": "Ada"})
    assert form.status_code == 415
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = httpx.post(f"{office}/orders", json=order, headers=headers)
        assert refused.status_code == 403, headers
    own = httpx.post(f"{office}/orders", json=order, headers={"Origin": office})
    assert own.status_code == 202


def test_one_browser_cannot_read_another_browsers_order(office: str) -> None:
    order = {"name": "Ada", "train": "G1 Beijing - Shanghai"}
    mine = httpx.post(f"{office}/orders", json=order).json()
    theirs = httpx.post(f"{office}/orders", json=order).json()
    assert httpx.get(office + mine["url"]).status_code == 200
    job_id, signature = theirs["id"].rsplit("-", 1)
    assert len(signature) == 32  # 128 bits: not to be guessed
    for guess in (job_id, f"{job_id}-", f"{job_id}-{'0' * 32}", f"{job_id}-{signature[:-1]}0"):
        if guess != theirs["id"]:
            assert httpx.get(f"{office}/orders/{guess}").status_code == 404, guess
    mine_id = mine["id"].rsplit("-", 1)[0]
    assert httpx.get(f"{office}/orders/{job_id}-{mine['id'].rsplit('-', 1)[1]}").status_code == 404
    assert mine_id != job_id
