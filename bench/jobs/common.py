"""Job bodies and Redis keys shared by every system in the jobs benchmark.

Every drain job does the same thing whatever queue runs it: ``INCR bench:done``. The job that gets
1 stores its wall time in ``bench:first`` (and pushes a wake-up onto ``bench:started`` so the driver
can sample the worker's CPU at that moment); the job that reaches N pushes its wall time onto
``bench:fin``, where the driver waits with BLPOP. A latency job pushes (its start wall time - the
enqueue wall time it was given) onto ``bench:lat``.
"""

from __future__ import annotations

import os
import threading
import time

import redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# N is known to the worker through its environment, so a job needs no extra round trip to learn it.
N = int(os.environ.get("BENCH_N", "0"))

DONE = "bench:done"
FIRST = "bench:first"
STARTED = "bench:started"
FIN = "bench:fin"
LAT = "bench:lat"
# app_baozi prints this and its baozi's __file__ to stderr when a process loads it.
IMPORTED = "bench: baozi imported from"

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_pid = 0


def client() -> redis.Redis:
    """This process's Redis client (made again after a fork: a socket must not be shared)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _lock:
            if _client is None or _client_pid != os.getpid():
                _client, _client_pid = redis.Redis.from_url(REDIS_URL), os.getpid()
    return _client


def count_done() -> None:
    """The drain job body: count this job and mark the first and the N-th completion."""
    r = client()
    k = r.incr(DONE)
    if k == 1:
        r.set(FIRST, repr(time.time()))
        r.rpush(STARTED, b"1")
    if k == N:
        r.rpush(FIN, repr(time.time()))


def record_latency(enqueued_at: float) -> None:
    """The latency job body: how long after its enqueue call this job started."""
    started = time.time()
    client().rpush(LAT, repr(started - enqueued_at))


async def count_done_async(r: redis.asyncio.Redis) -> None:
    """``count_done`` for asyncio workers, on an async client."""
    k = await r.incr(DONE)
    if k == 1:
        await r.set(FIRST, repr(time.time()))
        await r.rpush(STARTED, b"1")
    if k == N:
        await r.rpush(FIN, repr(time.time()))


async def record_latency_async(r: redis.asyncio.Redis, enqueued_at: float) -> None:
    """``record_latency`` for asyncio workers, on an async client."""
    started = time.time()
    await r.rpush(LAT, repr(started - enqueued_at))
