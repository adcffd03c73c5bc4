"""Only registered code runs: a job name written straight into the store resolves to a registered
task, or to a function of an allowed package under its own name, and to nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from baozi import App, Job, JobFailed, UnknownTask
from baozi.backends.base import NewJob

from . import jobtasks
from ._helpers import working

SHELL = [
    "tests.secapp:baozi._process.os.popen",  # the kind of name that once ran a shell command
    "tests.secapp:os.system",  # a module's import of os
    "tests:secapp.os.popen",  # through a submodule into os
    "tests.secapp:subprocess.getoutput",
    "tests.secapp:popen",  # os.popen imported under this module's name: not its own name
    "os:system",  # a package that is not allowed
    "tests.secapp:os.popen",
]
PYTHON = [
    "tests.secapp:__builtins__.exec",
    "tests.secapp:exec",  # builtins are no attributes of the module
    "builtins:exec",
    "tests.secapp:eval",
    "tests.secapp:touch.__globals__",
    "tests.secapp:touch.__call__",
    "tests.secapp:__loader__.load_module",
    "tests.__main__:touch",
]
PATH = [
    "tests.secapp:also_touch",  # an alias: the function's own name differs
    "tests.secapp:Tools",  # a class, not a function
    "tests.secapp:Tools.__init__",
    "tests.secapp:Path.touch",  # a class of another package
    "tests.secapp:touch.__wrapped__",
    "tests.secapp:",
    "tests.secapp:touch.",
    "tests..secapp:touch",
    ":touch",
]


def _write_job(app: App, name: str, arg: str) -> Job:
    """A job put straight into the store, as anyone who can write to it could."""
    payload = app.codec.dumps([[arg], {}])
    (job_id,) = app.store.enqueue("default", [NewJob(name, payload, 0)])
    return Job(app, job_id)


@pytest.fixture
def app(url: str) -> App:
    app = App(url, lease=5.0, importable=["tests"])
    app.task(jobtasks.add)
    return app


def test_crafted_names_run_nothing_and_fail_with_unknown_task(app: App, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    shell, code = f"touch {marker}", f"open({str(marker)!r}, 'w').close()"
    arg = {**dict.fromkeys(SHELL, shell), **dict.fromkeys(PYTHON, code)}
    names = SHELL + PYTHON + PATH
    jobs = [_write_job(app, name, arg.get(name, str(marker))) for name in names]
    with working(app):
        for name, job in zip(names, jobs, strict=True):
            with pytest.raises(JobFailed) as caught:
                job.result(timeout=30)
            assert caught.value.exc_type == UnknownTask.__name__, name
        assert app.tasks["tests.jobtasks.add"].delay(1, 1).result(timeout=30) == 2
    assert not marker.exists()
    assert not set(names) & set(app.tasks)


def test_a_function_under_its_own_name_in_an_allowed_package_runs(app: App, tmp_path: Path) -> None:
    plain, static = tmp_path / "plain", tmp_path / "static"
    jobs = [
        _write_job(app, "tests.secapp:touch", str(plain)),
        _write_job(app, "tests.secapp:Tools.touch", str(static)),
    ]
    with working(app):
        assert [job.result(timeout=30) for job in jobs] == ["touched", "touched by Tools"]
    assert plain.exists() and static.exists()


def test_a_package_that_is_not_allowed_runs_nothing(url: str, tmp_path: Path) -> None:
    app = App(url, lease=5.0)  # no task from tests, nothing importable
    marker = tmp_path / "touched"
    job = _write_job(app, "tests.secapp:touch", str(marker))
    with working(app, queues=["default"]):
        with pytest.raises(JobFailed) as caught:
            job.result(timeout=30)
    assert caught.value.exc_type == "UnknownTask" and not marker.exists()
