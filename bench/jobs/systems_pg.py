"""The PostgreSQL configurations of the jobs benchmark (``bench/pg_bench.py``): baozi's PostgreSQL
store beside procrastinate and pgqueuer, each peer in its documented default configuration and in
the fastest one its own docs describe; their producers, and how each gets its schema.

Every measurement runs in a schema of its own (pg.schema_name), made ready by ``setup`` before the
producer or the worker starts and dropped by ``teardown`` afterwards:
  * baozi-pg: the store URL names the schema (``postgresql://...?schema=NAME``), which the store
    creates on first use; ``setup`` opens the store once so that its creation is not timed;
  * procrastinate: the schema is created and procrastinate's own schema applied into it
    (``schema_manager.apply_schema``), the connections' search_path pointing at it;
  * pgqueuer: ``pgq install`` (and ``pgq autovac`` where the config asks for it) with
    ``PGQUEUER_SCHEMA`` set, which pgqueuer's library reads too.

The doc sources of the peers' settings (procrastinate 3.x, pgqueuer 1.x):
  * procrastinate docs, howto/production/concurrency.md: "By default, each worker only takes one
    job at a time"; more throughput from several worker processes, and from ``--concurrency``
    (async sub-workers; their example is 30). discussions.md, "Mind the size of your PostgreSQL
    pool": for short jobs the pool should hold as many connections as the concurrency plus one.
    Concurrency 10 here: in trials on this 2-core machine (N=2,000) 30 was no faster (1 process:
    224 jobs/s at 30, 294 at 10; 2 processes: 405 at 30, 415 at 4), and two pools of 31 take 64
    of the server's 100 connections, which a shared test server cannot spare.
    howto/basics/batch_defer.md: ``task.batch_defer(*kwargs)``, one call for many jobs.
  * pgqueuer docs, guides/performance-tuning.md: ``batch_size`` (default 10, jobs fetched per
    dequeue; increase it for short jobs), ``max_concurrent_tasks`` (default unlimited, at least
    2 x batch_size), durability ``balanced`` (log and statistics tables unlogged, queue logged:
    "~2x"), ``pgq autovac``; a single asyncpg connection for the QueueManager.
    comparisons/benchmarks.md: asyncpg about 1.7x psycopg. ``volatile`` durability (every table
    unlogged: queued jobs lost on a crash) is left out: baozi's store and the others keep jobs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pg
from systems import BIN, PY, Config, Producer, chunks

_BAOZI = (PY, "-m", "baozi", "worker", "app_baozi:app", "-q")
_PROC = (str(BIN / "procrastinate"), "--app=app_procrastinate.app", "worker")
_PGQ = (str(BIN / "pgq"), "run", "app_pgqueuer:main", "--log-level", "WARNING")


def _twice(argv: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return (argv, argv)


CONFIGS: tuple[Config, ...] = (
    Config(
        "baozi-pg",
        "c8",
        ((*_BAOZI, "-c", "8"),),
        "PostgreSQL store (schema per run); 1 process x 8 threads (default concurrency), -q",
    ),
    Config(
        "baozi-pg",
        "c16",
        ((*_BAOZI, "-c", "16"),),
        "PostgreSQL store (schema per run); 1 process x 16 threads, -q",
    ),
    Config(
        "baozi-pg",
        "p2c16",
        ((*_BAOZI, "-c", "16", "-p", "2"),),
        "PostgreSQL store (schema per run); 2 processes x 16 threads, -q",
    ),
    Config(
        "baozi-pg",
        "p2c32",
        ((*_BAOZI, "-c", "32", "-p", "2"),),
        "PostgreSQL store (schema per run); 2 processes x 32 threads, -q",
    ),
    Config(
        "baozi-pg",
        "p2c64",
        ((*_BAOZI, "-c", "64", "-p", "2"),),
        "PostgreSQL store (schema per run); 2 processes x 64 threads, -q",
    ),
    Config(
        "procrastinate",
        "default",
        (_PROC,),
        "documented default: 1 worker process, concurrency 1, LISTEN/NOTIFY on (polling 5 s), "
        "pool of 4 (psycopg_pool default), jobs kept",
    ),
    Config(
        "procrastinate",
        "c10",
        ((*_PROC, "--concurrency", "10"),),
        "fastest per its docs: 1 process, --concurrency 10, pool 11 (concurrency + 1)",
        {"BENCH_PROCRASTINATE_POOL": "11"},
    ),
    Config(
        "procrastinate",
        "p2c10",
        _twice((*_PROC, "--concurrency", "10")),
        "fastest per its docs: 2 worker processes (= cores), each --concurrency 10, pool 11",
        {"BENCH_PROCRASTINATE_POOL": "11"},
    ),
    Config(
        "pgqueuer",
        "default",
        (_PGQ,),
        "documented default: 1 `pgq run` process, asyncpg, batch_size 10, no concurrency cap, "
        "durable tables, --log-level WARNING",
    ),
    Config(
        "pgqueuer",
        "balanced-b50",
        ((*_PGQ, "--batch-size", "50"),),
        "fastest per its docs: 1 process, batch_size 50, durability balanced (log/statistics "
        "unlogged, queue logged), pgq autovac, --log-level WARNING",
        {"BENCH_PGQ_DURABILITY": "balanced", "BENCH_PGQ_AUTOVAC": "1"},
    ),
    Config(
        "pgqueuer",
        "balanced-p2b50",
        _twice((*_PGQ, "--batch-size", "50")),
        "fastest per its docs: 2 processes (= cores), each batch_size 50, durability balanced, "
        "pgq autovac, --log-level WARNING",
        {"BENCH_PGQ_DURABILITY": "balanced", "BENCH_PGQ_AUTOVAC": "1"},
    ),
)

SYSTEMS = ("baozi-pg", "procrastinate", "pgqueuer")
PEERS = ("procrastinate", "pgqueuer")
# The configs whose single-call enqueue is paired (the worker settings cannot change it; the
# durability of pgqueuer's tables can).
PAIRED = ("baozi-pg/c8", "procrastinate/default", "pgqueuer/default", "pgqueuer/balanced-b50")
PRODUCER_CALL = {
    "baozi-pg": "noop.delay(n)",
    "procrastinate": "noop.defer(n=n) (sync API, app opened with open())",
    "pgqueuer": 'await queries.enqueue("noop", payload) (sequential awaits, asyncpg)',
}
BATCH_CALL = {
    "baozi-pg": "noop.map([(i,) for i in chunk])",
    "procrastinate": "noop.batch_defer(*[{'n': i} for i in chunk])",
    "pgqueuer": 'await queries.enqueue(["noop"] * k, payloads, [0] * k)',
}


# -- schemas ---------------------------------------------------------------------------------------


def setup(config: Config, cwd: str) -> tuple[str, dict[str, str]]:
    """Make the measurement's schema ready; its name and the environment the producer and the
    worker need (the caller applies it to os.environ before the producer is built)."""
    schema = pg.schema_name(config.system)
    if config.system == "baozi-pg":
        return schema, {"BENCH_BAOZI_URL": f"{pg.PG_DSN}?schema={schema}"}
    pg.create_schema(schema)
    if config.system == "procrastinate":
        env = {"BENCH_PG_SCHEMA": schema}
        os.environ.update(env)
        import app_procrastinate

        with app_procrastinate.app.open():
            app_procrastinate.app.schema_manager.apply_schema()
        return schema, env
    env = {"PGQUEUER_SCHEMA": schema, "PGDSN": pg.PG_DSN}
    run_env = dict(os.environ, **config.env, **env)
    pgq = [str(BIN / "pgq"), "--pg-dsn", pg.PG_DSN, "--schema", schema]
    durability = config.env.get("BENCH_PGQ_DURABILITY", "durable")
    steps = [[*pgq, "install", "--durability", durability]]
    if config.env.get("BENCH_PGQ_AUTOVAC"):
        steps.append([*pgq, "autovac"])
    for argv in steps:
        out = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[3:])}: {(out.stderr or out.stdout)[-500:]}")
    return schema, env


def warm(config: Config) -> None:
    """Open baozi's store once, so that creating its schema is not part of a timed enqueue."""
    if config.system == "baozi-pg":
        import app_baozi

        app_baozi.app.store.counts(app_baozi.noop.queue)


def teardown(schema: str) -> None:
    pg.drop_schema(schema)


# -- producers -------------------------------------------------------------------------------------


class ProcrastinateProducer(Producer):
    """procrastinate's synchronous API (its docs, "sync defer"): the app opened with ``open()``
    defers through a synchronous psycopg pool, one INSERT per ``defer``."""

    def __init__(self) -> None:
        import app_procrastinate

        self.app = app_procrastinate.app
        self.noop, self.latency = app_procrastinate.noop, app_procrastinate.lat
        self.app.open()

    def one(self, i: int) -> None:
        self.noop.defer(n=i)

    def batch(self, n: int, chunk: int) -> None:
        for part in chunks(n, chunk):
            self.noop.batch_defer(*[{"n": i} for i in part])

    def queued(self) -> int | None:
        with pg.connect() as conn:
            sql = f'SELECT count(*) FROM "{os.environ["BENCH_PG_SCHEMA"]}".procrastinate_jobs'
            return conn.execute(sql + " WHERE status = 'todo'").fetchone()[0]

    def lat(self) -> None:
        self.latency.defer(enqueued_at=time.time())

    def close(self) -> None:
        self.app.close()


class PgqueuerProducer(Producer):
    """pgqueuer's API is async: one coroutine awaiting each enqueue in turn (as for arq, SAQ)."""

    def __init__(self) -> None:
        import asyncpg
        from pgqueuer import Queries

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(pg.PG_DSN))
        self.queries = Queries.from_asyncpg_connection(self.conn)

    def drain(self, n: int) -> None:
        async def run() -> None:
            for i in range(n):
                await self.queries.enqueue("noop", b"%d" % i)

        self.loop.run_until_complete(run())

    def batch(self, n: int, chunk: int) -> None:
        async def run() -> None:
            for part in chunks(n, chunk):
                k = len(part)
                await self.queries.enqueue(["noop"] * k, [b"%d" % i for i in part], [0] * k)

        self.loop.run_until_complete(run())

    def queued(self) -> int | None:
        sql = f'SELECT count(*) FROM "{os.environ["PGQUEUER_SCHEMA"]}".pgqueuer'
        return self.loop.run_until_complete(self.conn.fetchval(sql + " WHERE status = 'queued'"))

    def lat(self) -> None:
        payload = repr(time.time()).encode()
        self.loop.run_until_complete(self.queries.enqueue("lat", payload))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def producer(system: str) -> Producer:
    if system == "baozi-pg":
        from systems import BaoziProducer

        return BaoziProducer()  # BENCH_BAOZI_URL names the PostgreSQL store and its schema
    if system == "procrastinate":
        return ProcrastinateProducer()
    if system == "pgqueuer":
        return PgqueuerProducer()
    raise KeyError(system)
