"""An app for `baozi serve` and worker processes started by the web tests (store from
BAOZI_TEST_URL)."""

from __future__ import annotations

import os
import time

import baozi

app = baozi.App(os.environ.get("BAOZI_TEST_URL", "memory://webapp"), lease=5.0)


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="nap")
def nap(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds} s"


@app.task(name="boom")
def boom(message: str = "no luck") -> None:
    raise ValueError(message)


app.queue("small", maxsize=2)
