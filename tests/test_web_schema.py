"""Schemathesis, run against the served /openapi.json with a token, finds no server error, no
answer outside the document and no schema violation: every phase (coverage, fuzzing, stateful)
and every check except use_after_free, which does not apply: DELETE cancels a job, whose record
stays readable with the status "cancelled", as the document says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._web import make_app, served

TOKEN = "schema-token"


def test_schemathesis_finds_no_5xx_and_no_schema_violation(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'schema.db'}")
    with served(app, token=TOKEN) as base:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                "all",
                "--exclude-checks",
                # A schema cannot state each task's signature, so well-formed arguments a task
                # cannot take are refused with the documented 422 (positive_data_acceptance).
                "use_after_free,positive_data_acceptance",
                "--max-examples",
                "15",
                "--seed",
                "5",
                "--workers",
                "1",
                "--request-timeout",
                "20",
            ],
            cwd=tmp_path,  # its example database stays out of the repository
            capture_output=True,
            text=True,
            timeout=300,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report
    assert "28 selected / 28 total" in report, report
