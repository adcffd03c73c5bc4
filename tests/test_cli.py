"""The baozi command: --help, --version and the demo, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import baozi


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("BAOZI_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "baozi", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_and_version(tmp_path: Path) -> None:
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0 and "demo" in out.stdout
    out = run("--version", cwd=tmp_path)
    assert out.returncode == 0 and baozi.__version__ in out.stdout


def test_the_demo_leaves_work_that_the_next_run_picks_up(tmp_path: Path) -> None:
    first = run("demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Run 1" in first.stdout and "chef" in first.stdout and "made" in first.stdout
    assert "alice ate" in first.stdout and "bob ate" in first.stdout
    assert (tmp_path / "baozi.db").exists()  # the default store, in the working directory
    assert "still waiting" in first.stdout
    second = run("demo", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Run 2" in second.stdout
    assert "left from an earlier run" in second.stdout
    assert "left over from an earlier run" in second.stdout  # an old bun was eaten this time


def test_the_demo_reset_starts_over(tmp_path: Path) -> None:
    run("demo", "--seconds", "1", cwd=tmp_path)
    out = run("demo", "--reset", "--seconds", "1", cwd=tmp_path)
    assert "Run 1" in out.stdout and "left from an earlier run" not in out.stdout
