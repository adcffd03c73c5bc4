"""An app for worker processes started by the tests (its store comes from BAOZI_TEST_URL)."""

from __future__ import annotations

import os

import baozi

from . import jobtasks

app = baozi.App(os.environ.get("BAOZI_TEST_URL", "memory://jobapp"), lease=1.0)
note = app.task(name="note")(jobtasks.note)
slow_note = app.task(name="slow_note")(jobtasks.slow_note)
sleep = app.task(name="sleep")(jobtasks.sleep)
sleep_limited = app.task(name="sleep_limited", timeout=0.3)(jobtasks.sleep)  # times out past 0.3 s
add = app.task(name="add")(jobtasks.add)
gspin = app.task(name="gspin")(jobtasks.gspin)
