"""Clear errors, said once: the commands name what went wrong in one line, never a traceback, and
the commands that only read say which store they opened and create none."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from baozi import App, StoreError

from . import jobtasks

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = "memory://, sqlite://, redis://, rediss://"
READERS = [["status", "1"], ["queues"], ["jobs"], ["cancel", "1"], ["retry", "1"]]


def baozi(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BAOZI_URL"}
    environ.update(PYTHONPATH=str(ROOT), COLUMNS="300", **env)
    return subprocess.run(
        [sys.executable, "-m", "baozi", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_task_module_that_raises_at_import_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text("import baozi\napp = baozi.App('memory://')\n1 / 0\n")
    done = baozi("worker", "shop:app", "--burst", cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done)
    assert "'shop'" in line and "ZeroDivisionError: division by zero (at shop.py:3)" in line


@pytest.mark.parametrize(
    "args",
    [["queues", "--url", "postgress://db/x"], ["worker", "tests.jobapp:app", "--url", "x://"]],
)
def test_an_unknown_url_scheme_is_one_line_naming_the_schemes(args: list[str]) -> None:
    done = baozi(*args)
    assert done.returncode == 2
    assert SCHEMES in one_line(done)


def test_an_unknown_scheme_in_baozi_url_is_one_line_too() -> None:
    done = baozi("jobs", BAOZI_URL="sqlit:///baozi.db")
    assert done.returncode == 2 and SCHEMES in one_line(done)


def _damaged(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    app = App(f"sqlite:///{path}")
    app.task(jobtasks.add).map([(i, i) for i in range(200)])
    app.store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut short
    for extra in tmp_path.glob("store.db-*"):
        extra.unlink()
    return path


def test_a_truncated_store_file_is_called_damaged_and_left_alone(tmp_path: Path) -> None:
    path = _damaged(tmp_path)
    before = digest(path)
    with pytest.raises(StoreError, match="the store file is damaged: ") as caught:
        App(f"sqlite:///{path}")
    assert "not a baozi store" not in str(caught.value)
    done = baozi("queues", "--url", f"sqlite:///{path}")
    assert done.returncode == 1 and "the store file is damaged: " in one_line(done)
    assert digest(path) == before


@pytest.mark.parametrize("args", READERS, ids=lambda a: a[0])
def test_reading_a_store_file_that_does_not_exist_says_so_and_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    done = baozi(*args, "--url", "sqlite:///nowhere.db", cwd=tmp_path)
    assert done.returncode == 3
    line = one_line(done)
    assert str(tmp_path / "nowhere.db") in line and "no baozi store" in line
    assert list(tmp_path.iterdir()) == []


def test_commands_that_read_name_the_store_they_opened(tmp_path: Path) -> None:
    app = App("sqlite:///" + str(tmp_path / "here.db"))
    job = app.task(jobtasks.add).delay(1, 2)
    where = f"SQLite file {tmp_path / 'here.db'}"
    url = ["--url", "sqlite:///here.db"]  # relative: the message gives the absolute path
    outputs = {
        name: baozi(name, *rest, *url, cwd=tmp_path)
        for name, *rest in (["status", job.id], ["queues"], ["jobs"], ["cancel", job.id])
    }
    assert all(done.returncode == 0 for done in outputs.values())
    assert all(where in done.stdout.replace("\n", "") for done in outputs.values())
    retried = baozi("retry", job.id, *url, cwd=tmp_path)  # cancelled, so it can run again
    assert retried.returncode == 0 and where in retried.stdout
    missing = baozi("status", "99", *url, cwd=tmp_path)
    assert missing.returncode == 3 and f"no job '99' in {where}" in one_line(missing)


def test_several_worker_processes_on_a_memory_store_are_refused() -> None:
    done = baozi("worker", "tests.jobapp:app", "--url", "memory://", "-p", "2", "--burst")
    assert done.returncode == 2
    line = one_line(done)
    assert "-p 2" in line and "memory://" in line and "-p 1" in line
