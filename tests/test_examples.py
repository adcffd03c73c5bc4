"""The examples run as their READMEs say."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_quickstart_orders_and_gets_its_buns(tmp_path: Path) -> None:
    work = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", work)
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
