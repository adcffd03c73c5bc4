"""The burst benchmark's app: one trivial task, ``orders.order``, on the store BURST_URL names.

The benchmark sends each run's orders to a queue of its own (the POST body's "queue"), so that
each run's jobs can be counted apart; the worker is started on all of them."""

from __future__ import annotations

import os

import baozi

app = baozi.App(os.environ.get("BURST_URL", "memory://burst"))


@app.task(name="orders.order")
def order(customer: int, ref: str) -> str:
    return ref
