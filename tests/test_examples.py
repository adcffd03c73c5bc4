"""The examples run as their READMEs say."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from baozi import open_store

ROOT = Path(__file__).resolve().parent.parent


_LEFT_BY_A_RUN = shutil.ignore_patterns(
    "baozi.db", "baozi.db-*", "*.db-wal", "*.db-shm", "__pycache__"
)
"""What running an example leaves in its folder: a test's copy starts without it."""


def _fresh_copy(example: Path, tmp_path: Path) -> Path:
    work = tmp_path / example.name
    shutil.copytree(example, work, ignore=_LEFT_BY_A_RUN)
    return work


def test_a_copy_of_an_example_leaves_out_the_store_a_users_run_left(tmp_path: Path) -> None:
    used = tmp_path / "used" / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", used)
    for name in ("baozi.db", "baozi.db-wal", "baozi.db-shm"):
        (used / name).write_bytes(b"jobs 1 to 8, from the user's own run")
    work = _fresh_copy(used, tmp_path / "fresh")
    assert (work / "order.py").exists() and (work / "tasks.py").exists()
    assert not list(work.glob("baozi.db*"))


def test_the_quickstart_orders_and_gets_its_buns(tmp_path: Path) -> None:
    work = _fresh_copy(ROOT / "examples" / "quickstart", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BAOZI_URL"}
    out = subprocess.run(
        [sys.executable, "order.py", "--burst"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:4] == [
        "job 1: queued, 1 ahead of it",
        "job 2: queued, 2 ahead of it",
        "job 3: queued, 3 ahead of it",
        "job 4: queued, 0 ahead of it",
    ]
    assert "job 1: pork bun, steamed for 3 minutes" in lines
    assert "job 4: pork bun: delicious" in lines
    assert (work / "baozi.db").exists()


def test_the_quickstart_beside_a_running_worker_says_where_each_job_stands(
    tmp_path: Path,
) -> None:
    work = _fresh_copy(ROOT / "examples" / "quickstart", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BAOZI_URL"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "baozi", "worker", "tasks:app", "-q"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        store = None
        deadline = time.monotonic() + 30
        while store is None or not store.workers():  # its first heartbeat: it is serving
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker never beat"
            if store is None and (work / "baozi.db").exists():
                store = open_store(f"sqlite:///{work / 'baozi.db'}")
            time.sleep(0.05)
        out = subprocess.run(
            [sys.executable, "order.py"], cwd=work, env=env, capture_output=True, text=True
        )
        store.close()
    finally:
        worker.terminate()  # SIGTERM: it finishes what it holds, then stops
        worker.wait(60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 8 and not [line for line in lines if "None" in line], lines
    # The worker may have taken a job before its place was read: then it is running, or done.
    where = re.compile(r"job \d: (queued, \d ahead of it|running(, \d+% \(.*\))?|succeeded)$")
    assert all(where.match(line) for line in lines[:4]), lines
    assert "job 4: pork bun: delicious" in lines


def _run_example(work: Path, script: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "BAOZI_URL"}
    out = subprocess.run(
        [sys.executable, script], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_the_shared_array_example_fills_one_element_per_process(tmp_path: Path) -> None:
    work = _fresh_copy(ROOT / "examples" / "shared_array", tmp_path)
    assert _run_example(work, "fill.py") == ["[100, 101, 102, 103, 104]"]
    assert (work / "baozi.db").exists()  # the processes shared this SQLite file
    assert _run_example(work, "fill.py") == ["[100, 101, 102, 103, 104]"]  # and a second run


def test_the_shared_array_example_counts_down_to_zero_both_ways(tmp_path: Path) -> None:
    work = _fresh_copy(ROOT / "examples" / "shared_array", tmp_path)
    assert _run_example(work, "countdown.py") == ["0", "0"]
    assert _run_example(work, "countdown.py") == ["0", "0"]  # it starts afresh from the store
