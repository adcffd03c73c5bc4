"""The queue's own floor for the monitor benchmark: workers of this app answer the monitor's job
(``baozi.monitor:check_url``) with a sleep of BENCH_DELAY seconds instead of a request, so
``baozi monitor --via-queue`` against them measures everything but the HTTP client."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import baozi
from baozi.monitor import TASK, Check
from baozi.pools.green import gevent_patched

DELAY = float(os.environ.get("BENCH_DELAY", "0.1"))

app = baozi.App(importable=("baozi",))


async def nap(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
    await asyncio.sleep(DELAY)
    return Check(url, True, expect, DELAY, "ok").as_dict()


def doze(url: str, expect: int = 200, timeout: float = 5.0) -> dict[str, Any]:
    time.sleep(DELAY)  # a greenlet's sleep under gevent
    return Check(url, True, expect, DELAY, "ok").as_dict()


app.task(name=TASK)(doze if gevent_patched() else nap)
