"""An app for ``baozi workers`` and ``baozi schedules`` run by the tests (its store comes from
BAOZI_TEST_URL): a lease long enough that a killed worker stays listed, and two schedules."""

from __future__ import annotations

import os
from datetime import timedelta

import baozi

from . import jobtasks

app = baozi.App(os.environ.get("BAOZI_TEST_URL", "memory://listapp"), lease=60.0)
sleep = app.task(name="sleep")(jobtasks.sleep)
add = app.task(name="add", queue="beat")(jobtasks.add)
app.periodic(every=timedelta(seconds=1), args=(1, 2))(add)
app.periodic(cron="0 0 1 1 *", tz="Europe/Paris", args=(3, 4))(add)  # never due in a test
