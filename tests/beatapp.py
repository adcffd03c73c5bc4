"""An app with a periodic task, made on a given store (for the scheduler tests)."""

from __future__ import annotations

import os
from datetime import timedelta

import baozi


def tick() -> str:
    return "tick"


def make_app(url: str) -> baozi.App:
    app = baozi.App(url)
    app.periodic(every=timedelta(seconds=1))(app.task(name="tick", queue="beat")(tick))
    return app


make_app_default = make_app(os.environ.get("BAOZI_URL", "memory://beatapp"))
"""For ``baozi beat tests.beatapp:make_app_default``, on the store BAOZI_URL names."""
