"""The collector's settings of baozi's service processes (baozi._gc): each is a fresh process,
as the settings are the whole interpreter's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "from baozi._gc import tune; import gc; tune(); print(gc.get_threshold(), gc.get_freeze_count() > 0)"


def _run(value: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("BAOZI_GC_THRESHOLD", None)
    if value is not None:
        env["BAOZI_GC_THRESHOLD"] = value
    return subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "(20000, 20, 100) True"),
        ("5000", "(5000, 20, 100) True"),
        ("0", "(700, 10, 10) False"),  # Python's own, untouched
    ],
)
def test_a_service_process_collects_less_often_unless_told_not_to(
    value: str | None, shown: str
) -> None:
    ran = _run(value)
    assert ran.stdout.strip() == shown, ran.stderr
    assert ran.stderr == ""


@pytest.mark.parametrize("value", ["lots", "-5", "1.5"])
def test_a_bad_threshold_is_named_and_the_default_used(value: str) -> None:
    ran = _run(value)
    assert ran.stdout.strip() == "(20000, 20, 100) True"
    assert f"BAOZI_GC_THRESHOLD={value!r} is not a whole number" in ran.stderr
