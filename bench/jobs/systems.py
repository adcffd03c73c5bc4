"""The configurations the jobs benchmark runs, and one producer per system.

A configuration is a worker command (one or more processes, run in this directory) plus the
environment it needs; the producer enqueues jobs from the driver process one API call per job
(``drain``), or in chunks through the system's bulk call where it has one (``batch``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
# Console scripts sit beside the interpreter; calling them directly skips any shim in PATH.
BIN = Path(PY).parent
# What a baseline twin's key adds to its config's (jobs_bench --baseline).
BASELINE = "@baseline"


@dataclass(frozen=True)
class Config:
    """One way of running a system's worker."""

    system: str
    name: str
    commands: tuple[tuple[str, ...], ...]  # one argv per worker process group member
    settings: str  # what the configuration is, for the report
    env: dict[str, str] = field(default_factory=dict)
    extra: bool = False  # a side measurement, left out when picking a system's best config
    # Another checkout's src/ that producer and worker import baozi from ("": the installed one,
    # this checkout): jobs_bench --baseline runs a twin of each baozi config with it set.
    src: str = ""

    @property
    def key(self) -> str:
        return f"{self.name_key}{BASELINE if self.src else ''}"

    @property
    def name_key(self) -> str:
        """SYSTEM/CONFIG, the name measure.py looks the config up by (a twin's too)."""
        return f"{self.system}/{self.name}"

    @property
    def shown(self) -> str:
        """The worker command as a person would type it."""

        def one(argv: tuple[str, ...]) -> str:
            words = list(argv)
            if words[0] == PY:
                words[0] = "python"
            elif words[0].startswith(str(BIN)):
                words[0] = Path(words[0]).name
            return " ".join(words)

        text = " & ".join(one(a) for a in self.commands)
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{env} {text}" if env else text


REDIS_URL = "redis://127.0.0.1:6379/14"
# baozi's Redis store in the benchmark's database, under a key prefix of its own. A config's env is
# applied after measure.py's defaults, so this replaces the fresh SQLite file it sets up.
BAOZI_REDIS_URL = f"{REDIS_URL}?prefix=bench-baozi"
_BAOZI_REDIS = {"BENCH_BAOZI_URL": BAOZI_REDIS_URL}
_CELERY = (PY, "-m", "celery", "-A", "app_celery", "worker")
_CELERY_FAST = (
    *_CELERY,
    "-P",
    "solo",
    "--prefetch-multiplier",
    "32",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
)
_HUEY = str(BIN / "huey_consumer")
_SAQ = str(BIN / "saq")

CONFIGS: tuple[Config, ...] = (
    Config(
        "baozi",
        "c8",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "8"),),
        "SQLite store; 1 process x 8 threads (default concurrency), -q",
    ),
    Config(
        "baozi",
        "c16",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "16"),),
        "SQLite store; 1 process x 16 threads, -q",
    ),
    Config(
        "baozi",
        "p2c16",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "16", "-p", "2"),),
        "SQLite store; 2 processes x 16 threads, -q",
    ),
    Config(
        "baozi",
        "p2c16-fsync",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "16", "-p", "2"),),
        "SQLite store with durable=fsync (synchronous=FULL, like huey-sqlite); 2 processes x 16 "
        "threads, -q. Extra row: not counted as baozi's best",
        {"BENCH_BAOZI_DURABLE": "fsync"},
        extra=True,
    ),
    Config(
        "baozi-redis",
        "c8",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "8"),),
        "Redis store (prefix bench-baozi); 1 process x 8 threads (default concurrency), -q",
        _BAOZI_REDIS,
    ),
    Config(
        "baozi-redis",
        "c16",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "16"),),
        "Redis store (prefix bench-baozi); 1 process x 16 threads, -q",
        _BAOZI_REDIS,
    ),
    Config(
        "baozi-redis",
        "p2c16",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "16", "-p", "2"),),
        "Redis store (prefix bench-baozi); 2 processes x 16 threads, -q",
        _BAOZI_REDIS,
    ),
    Config(
        "baozi-redis",
        "p2c32",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "32", "-p", "2"),),
        "Redis store (prefix bench-baozi); 2 processes x 32 threads, -q",
        _BAOZI_REDIS,
    ),
    Config(
        "baozi-redis",
        "p2c64",
        ((PY, "-m", "baozi", "worker", "app_baozi:app", "-q", "-c", "64", "-p", "2"),),
        "Redis store (prefix bench-baozi); 2 processes x 64 threads, -q",
        _BAOZI_REDIS,
    ),
    Config(
        "celery",
        "2xsolo-pf32",
        ((*_CELERY_FAST, "-n", "w1@%h"), (*_CELERY_FAST, "-n", "w2@%h")),
        "Redis broker; two worker processes, each -P solo --prefetch-multiplier 32, "
        "no gossip/mingle/heartbeat",
    ),
    Config(
        "celery",
        "default",
        (_CELERY,),
        "Redis broker; prefork pool -c 2 (= cores), prefetch x4, log WARNING (CLI defaults)",
    ),
    Config(
        "rq",
        "pool2-simple-quiet",
        (
            (
                str(BIN / "rq"),
                "worker-pool",
                "-u",
                REDIS_URL,
                "-n",
                "2",
                "-w",
                "rq.worker.SimpleWorker",
                "-q",
                "bench",
            ),
        ),
        "Redis; worker-pool of 2 SimpleWorkers (no fork per job), -q",
    ),
    Config(
        "dramatiq",
        "default",
        ((PY, "-m", "dramatiq", "app_dramatiq"),),
        "Redis broker; CLI defaults -p 2 (= cores) -t 8, default middleware",
    ),
    Config(
        "huey-redis",
        "process2-q",
        ((_HUEY, "app_huey_redis.huey", "-k", "process", "-w", "2", "-q"),),
        "RedisHuey (blocking BRPOP); 2 worker processes, -q",
    ),
    Config(
        "huey-sqlite",
        "process2-q",
        ((_HUEY, "app_huey_sqlite.huey", "-k", "process", "-w", "2", "-q"),),
        "SqliteHuey; 2 worker processes (polling, 0.1 s initial delay), -q",
    ),
    Config(
        "huey-sqlite",
        "thread1-q-d1ms",
        ((_HUEY, "app_huey_sqlite.huey", "-q", "-d", "0.001"),),
        "SqliteHuey; 1 worker thread, polling delay 1 ms (-d 0.001), -q",
    ),
    Config(
        "arq",
        "tuned",
        ((str(BIN / "arq"), "app_arq.WorkerSettings", "--custom-log-dict", "app_arq.QUIET"),),
        "Redis; max_jobs=100, poll_delay=0.01 s, keep_result=0, log WARNING",
        {"ARQ_MAX_JOBS": "100", "ARQ_POLL_DELAY": "0.01", "ARQ_KEEP_RESULT": "0"},
    ),
    Config(
        "saq",
        "tuned",
        ((_SAQ, "app_saq.settings", "--workers", "2"),),
        "Redis; 2 worker processes (= cores) x concurrency 50, finished jobs deleted (job ttl -1), "
        "log WARNING",
        {"SAQ_CONCURRENCY": "50", "SAQ_JOB_TTL": "-1"},
    ),
    Config(
        "saq",
        "default",
        ((_SAQ, "app_saq.settings"),),
        "Redis; CLI defaults: 1 worker process x concurrency 10, job ttl 600 s, log WARNING",
        {"SAQ_CONCURRENCY": "10", "SAQ_JOB_TTL": "600"},
    ),
)

# Systems whose queue lives in Redis (the "Redis peers" of the report).
REDIS_PEERS = ("celery", "rq", "dramatiq", "huey-redis", "arq", "saq")
PRODUCER_CALL = {
    "baozi": "noop.delay(n)",
    "baozi-redis": "noop.delay(n)",
    "celery": "noop.delay(n)",
    "rq": 'Queue("bench").enqueue(noop, n)',
    "dramatiq": "noop.send(n)",
    "huey-redis": "noop(n)",
    "huey-sqlite": "noop(n)",
    "arq": 'await pool.enqueue_job("noop", n) (sequential awaits)',
    "saq": 'await queue.enqueue("noop", n=n, ttl=...) (sequential awaits)',
}
# The bulk call of the systems that have one (the batch measurement): one call per chunk.
BATCH_CALL = {
    "baozi": "noop.map([(i,) for i in chunk])",
    "baozi-redis": "noop.map([(i,) for i in chunk])",
    "rq": "queue.enqueue_many([Queue.prepare_data(noop, (i,)) for i in chunk])",
}


def by_key(key: str) -> Config:
    import systems_pg  # the PostgreSQL configs (bench/pg_bench.py); it imports this module

    for c in CONFIGS + systems_pg.CONFIGS:
        if c.key == key:
            return c
    raise KeyError(key)


# -- producers: drain(n) enqueues n drain jobs, one call each; lat() enqueues one latency job;
# batch(n, chunk) enqueues n drain jobs with one bulk call per chunk (systems in BATCH_CALL) --------


def chunks(n: int, chunk: int) -> list[range]:
    """0..n-1 cut into consecutive ranges of ``chunk`` (the last one may be shorter)."""
    return [range(s, min(n, s + chunk)) for s in range(0, n, chunk)]


class Producer:
    """Enqueues jobs for one system from the driver process."""

    def drain(self, n: int) -> None:
        for i in range(n):
            self.one(i)

    def one(self, i: int) -> None:
        raise NotImplementedError

    def batch(self, n: int, chunk: int) -> None:
        raise NotImplementedError

    def queued(self) -> int | None:
        """How many jobs wait in the queue (None: not counted for this system)."""
        return None

    def lat(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BaoziProducer(Producer):
    def __init__(self) -> None:
        import app_baozi

        self.noop, self.latency = app_baozi.noop, app_baozi.lat

    def one(self, i: int) -> None:
        self.noop.delay(i)

    def batch(self, n: int, chunk: int) -> None:
        for part in chunks(n, chunk):
            self.noop.map([(i,) for i in part])

    def block(self, n: int) -> None:
        """n jobs, one ``delay()`` each, inside one batch block: confirmed when it ends."""
        with self.noop.app.batch():
            for i in range(n):
                self.noop.delay(i)

    def batch_keep(self, n: int, chunk: int, keep: set[int]) -> dict[int, Any]:
        """``batch``, returning the Job handles of the jobs numbered in ``keep`` (only those, so
        a million handles need not stay in memory)."""
        kept = {}
        for part in chunks(n, chunk):
            jobs = self.noop.map([(i,) for i in part])
            kept.update((i, jobs[i - part.start]) for i in keep if part.start <= i < part.stop)
        return kept

    def queued(self) -> int | None:
        return self.noop.app.store.counts(self.noop.queue).ready

    def lat(self) -> None:
        self.latency.delay(time.time())


class CeleryProducer(Producer):
    def __init__(self) -> None:
        import app_celery

        self.noop, self.latency = app_celery.noop, app_celery.lat

    def one(self, i: int) -> None:
        self.noop.delay(i)

    def lat(self) -> None:
        self.latency.delay(time.time())


class RqProducer(Producer):
    def __init__(self) -> None:
        import app_rq
        import redis
        from rq import Queue

        self.app = app_rq
        self.queue = Queue("bench", connection=redis.Redis.from_url(REDIS_URL))

    def one(self, i: int) -> None:
        self.queue.enqueue(self.app.noop, i)

    def batch(self, n: int, chunk: int) -> None:
        from rq import Queue

        for part in chunks(n, chunk):
            # enqueue_many writes the chunk through one pipeline.
            self.queue.enqueue_many([Queue.prepare_data(self.app.noop, (i,)) for i in part])

    def queued(self) -> int | None:
        return self.queue.count

    def lat(self) -> None:
        self.queue.enqueue(self.app.lat, time.time())


class DramatiqProducer(Producer):
    def __init__(self) -> None:
        import app_dramatiq

        self.noop, self.latency = app_dramatiq.noop, app_dramatiq.lat

    def one(self, i: int) -> None:
        self.noop.send(i)

    def lat(self) -> None:
        self.latency.send(time.time())


class HueyProducer(Producer):
    def __init__(self, module: str) -> None:
        import importlib

        app = importlib.import_module(module)
        self.noop, self.latency = app.noop, app.lat

    def one(self, i: int) -> None:
        self.noop(i)

    def lat(self) -> None:
        self.latency(time.time())


class ArqProducer(Producer):
    """arq's API is async: the drain loop is one coroutine awaiting each enqueue in turn."""

    def __init__(self) -> None:
        import app_arq
        from arq import create_pool

        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(app_arq.redis_settings()))

    def drain(self, n: int) -> None:
        async def run() -> None:
            for i in range(n):
                await self.pool.enqueue_job("noop", i)

        self.loop.run_until_complete(run())

    def lat(self) -> None:
        async def run() -> None:
            await self.pool.enqueue_job("lat", time.time())

        self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()


class SaqProducer(Producer):
    """saq's API is async too: one coroutine awaiting each enqueue in turn, as for arq."""

    def __init__(self) -> None:
        import app_saq

        self.ttl = app_saq.JOB_TTL
        self.queue = app_saq.queue
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.queue.connect())

    def drain(self, n: int) -> None:
        async def run() -> None:
            for i in range(n):
                await self.queue.enqueue("noop", n=i, ttl=self.ttl)

        self.loop.run_until_complete(run())

    def lat(self) -> None:
        async def run() -> None:
            await self.queue.enqueue("lat", enqueued_at=time.time(), ttl=self.ttl)

        self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.queue.disconnect())
        self.loop.close()


def producer(system: str) -> Producer:
    """A producer for ``system``; the caller has put this directory on sys.path."""
    if system in ("baozi", "baozi-redis"):
        return BaoziProducer()  # the same app module; BENCH_BAOZI_URL picks the store
    if system == "celery":
        return CeleryProducer()
    if system == "rq":
        return RqProducer()
    if system == "dramatiq":
        return DramatiqProducer()
    if system in ("huey-redis", "huey-sqlite"):
        return HueyProducer("app_" + system.replace("-", "_"))
    if system == "arq":
        return ArqProducer()
    if system == "saq":
        return SaqProducer()
    import systems_pg

    return systems_pg.producer(system)
