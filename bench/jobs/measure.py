"""One measurement of one configuration, in a process of its own; prints one JSON line.

    python bench/jobs/measure.py drain    SYSTEM/CONFIG --n 10000 [--pidfile F]
    python bench/jobs/measure.py latency  SYSTEM/CONFIG [--jobs 200] [--pidfile F]
    python bench/jobs/measure.py enqueue  SYSTEM/CONFIG --n 10000
    python bench/jobs/measure.py batch    SYSTEM/CONFIG --n 100000 [--chunk 1000]
    python bench/jobs/measure.py position SYSTEM/CONFIG --n 1000000 [--chunk 10000] [--samples 200]
    ... [--src OTHER_CHECKOUT/src]  (a baozi config: import baozi from there, producer and worker)

drain: FLUSHDB, enqueue N jobs with no worker running (the enqueue figure), launch the worker and
wait (BLPOP on bench:fin, 1 s slices) for the N-th completion. latency: launch the worker, enqueue
a warm-up job and wait for it, idle 1 s, then enqueue the latency jobs 10 ms apart.
enqueue: enqueue 200 jobs (warm-up, not timed), then N jobs, one call each, no worker: the
paired single-call figure (the driver runs the systems' enqueue measurements back to back).
batch: enqueue N jobs with the system's bulk call, one call per chunk, no worker; for baozi, then
N more with one ``delay()`` each inside one ``app.batch()`` block (confirmed at its end). position (baozi):
enqueue N jobs with ``map`` in chunks, no worker, then time ``job.position()`` for jobs spread
through the queue (first, second, middle, last but one, last and evenly between).
The worker runs in its own process group and is killed with SIGKILL to that group at the end;
database 14 is flushed before and after every measurement. For baozi, the result says where the
producer and each worker process imported baozi from; with --src, a measurement in which any of
them did not import it from there fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import pg  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402
import systems  # noqa: E402
import systems_pg  # noqa: E402

DRAIN_CAP = 300.0  # seconds to wait for the N-th completion
LATENCY_CAP = 60.0
PACE = 0.010  # seconds between latency jobs
IDLE = 1.0  # seconds of idle before the latency jobs
WARM_UP = 200  # enqueue: jobs enqueued before the timed ones
BAOZI = ("baozi", "baozi-redis", "baozi-pg")


class Worker:
    """A configuration's worker processes, all in one new process group."""

    def __init__(self, config: systems.Config, env: dict[str, str], log: Path) -> None:
        self.log = log
        out = open(log, "wb")
        self.launched = time.time()
        self.procs: list[subprocess.Popen[bytes]] = []
        for argv in config.commands:
            # The first process leads a new group; the others join it, so one killpg stops all.
            group = self.procs[0].pid if self.procs else 0
            self.procs.append(
                subprocess.Popen(
                    argv,
                    cwd=HERE,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    process_group=group,
                )
            )
        out.close()
        self.pgid = self.procs[0].pid

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the worker trees (reaped children included)."""
        seen: dict[int, psutil.Process] = {}
        for p in self.procs:
            try:
                root = psutil.Process(p.pid)
                seen[root.pid] = root
                for child in root.children(recursive=True):
                    seen[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        total = 0.0
        for proc in seen.values():
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        return total

    def kill(self) -> None:
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in self.procs:
            p.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def blpop(r: redis.Redis, keys: list[str], deadline: float, worker: Worker) -> tuple[str, bytes]:
    """BLPOP in 1 s slices until an item arrives; fail on the deadline or a dead worker."""
    while True:
        got = r.blpop(keys, timeout=1)
        if got is not None:
            return got[0].decode(), got[1]
        if not worker.alive():
            raise RuntimeError("worker exited early:\n" + worker.tail())
        if time.time() > deadline:
            raise TimeoutError("gave up waiting; worker log:\n" + worker.tail())


def drain(config: systems.Config, env: dict[str, str], n: int, work: Path, state: dict) -> dict:
    r = redis.Redis.from_url(common.REDIS_URL)
    producer = systems.producer(config.system)
    probe = state["probe"]  # the server's CPU, on PostgreSQL
    probe.start("enqueue", [os.getpid()])
    cpu0, t0 = time.process_time(), time.perf_counter()
    producer.drain(n)
    enqueue_s, producer_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    probe.stop("enqueue", [os.getpid()])
    producer.close()
    queued_ok = r.get(common.DONE) is None  # nothing ran before the worker started

    probe.start("drain")
    worker = state["worker"] = Worker(config, env, work / "worker.log")
    pids = [p.pid for p in worker.procs]
    state["pidfile_write"](worker.pgid)
    deadline = worker.launched + DRAIN_CAP
    cpu_first = None
    while True:
        key, value = blpop(r, [common.FIN, common.STARTED], deadline, worker)
        if key == common.STARTED:
            cpu_first = worker.cpu_seconds()  # start-up cost, to leave out of the per-job figure
            probe.start("steady", pids)
            continue
        last = float(value)
        break
    cpu_end = worker.cpu_seconds()
    probe.stop("drain", pids)
    probe.stop("steady", pids)
    worker.kill()
    first = float(r.get(common.FIRST))
    done = int(r.get(common.DONE))
    return {
        "enqueue_per_s": n / enqueue_s,
        "producer_cpu_us": producer_cpu / n * 1e6,
        "steady_per_s": (n - 1) / (last - first),
        "incl_start_per_s": n / (last - worker.launched),
        "start_s": first - worker.launched,
        "worker_cpu_us": cpu_end / n * 1e6,
        "worker_cpu_steady_us": (
            (cpu_end - cpu_first) / (n - 1) * 1e6 if cpu_first is not None else None
        ),
        "n": n,
        "done_count": done,  # > n: some job ran more than once
        "clean_start": queued_ok,
        **probe.result({"enqueue": n, "drain": n, "steady": n - 1}),
    }


def latency(
    config: systems.Config, env: dict[str, str], jobs: int, work: Path, state: dict
) -> dict:
    r = redis.Redis.from_url(common.REDIS_URL)
    producer = systems.producer(config.system)
    worker = state["worker"] = Worker(config, env, work / "worker.log")
    state["pidfile_write"](worker.pgid)
    deadline = worker.launched + LATENCY_CAP
    producer.lat()  # warm-up: the worker is up once this one has run
    blpop(r, [common.LAT], deadline, worker)
    time.sleep(IDLE)
    t0 = time.perf_counter()
    for i in range(jobs):
        # Sleep until this job's slot, so a slow enqueue does not push the later ones back.
        wait = t0 + i * PACE - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        producer.lat()
    deadline = time.time() + LATENCY_CAP
    values = [float(blpop(r, [common.LAT], deadline, worker)[1]) * 1000 for _ in range(jobs)]
    worker.kill()
    producer.close()
    return {
        "p50_ms": nearest_rank(values, 50),
        "p99_ms": nearest_rank(values, 99),
        "max_ms": max(values),
    }


def enqueue(config: systems.Config, n: int, state: dict) -> dict:
    """Single-call enqueue after a warm-up: the connection made and any script loaded."""
    producer = systems.producer(config.system)
    producer.drain(WARM_UP)
    probe = state["probe"]
    probe.start("enqueue", [os.getpid()])
    cpu0, t0 = time.process_time(), time.perf_counter()
    producer.drain(n)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    probe.stop("enqueue", [os.getpid()])
    producer.close()
    out = {"enqueue_per_s": n / elapsed, "producer_cpu_us": cpu / n * 1e6, "n": n}
    return {**out, **probe.result({"enqueue": n})}


def batch(config: systems.Config, n: int, chunk: int, state: dict) -> dict:
    producer = systems.producer(config.system)
    probe = state["probe"]
    probe.start("batch", [os.getpid()])
    cpu0, t0 = time.process_time(), time.perf_counter()
    producer.batch(n, chunk)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    probe.stop("batch", [os.getpid()])
    queued = producer.queued()
    if queued is not None and queued != n:
        raise RuntimeError(f"{queued} jobs queued after a batch enqueue of {n}")
    result = {
        "batch_per_s": n / elapsed,
        "producer_cpu_us": cpu / n * 1e6,
        "n": n,
        "chunk": chunk,
        "queued": queued,
    }
    block = getattr(producer, "block", None)
    if block is not None:  # the same jobs again, one call each inside one batch block
        probe.start("block", [os.getpid()])
        cpu0, t0 = time.process_time(), time.perf_counter()
        block(n)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        probe.stop("block", [os.getpid()])
        queued = producer.queued()
        if queued is not None and queued != 2 * n:
            raise RuntimeError(f"{queued} jobs queued after a batch block of {n} more")
        result.update(block_per_s=n / elapsed, block_cpu_us=cpu / n * 1e6)
    producer.close()
    return {**result, **probe.result({"batch": n, "block": n})}


def sample_indices(n: int, samples: int) -> list[int]:
    """About ``samples`` queue positions spread over 0..n-1: both ends, the middle, evenly between."""
    even = [round(k * (n - 1) / max(1, samples - 1)) for k in range(samples)]
    return sorted({i for i in [0, 1, n // 2, n - 2, n - 1, *even] if 0 <= i < n})


def position(config: systems.Config, n: int, chunk: int, samples: int) -> dict:
    r = redis.Redis.from_url(common.REDIS_URL)
    producer = systems.producer(config.system)
    if not hasattr(producer, "batch_keep"):
        raise RuntimeError(f"no position() measurement for {config.system}")
    wanted = sample_indices(n, samples)
    t0 = time.perf_counter()
    jobs = producer.batch_keep(n, chunk, set(wanted))
    enqueue_s = time.perf_counter() - t0
    queued = producer.queued()
    memory = r.info("memory")["used_memory"]
    jobs[wanted[0]].position()  # warm-up, untimed (connection, script cache)
    times, wrong = [], []
    for i in wanted:
        t = time.perf_counter()
        got = jobs[i].position()
        times.append((time.perf_counter() - t) * 1000)
        if got != i:
            wrong.append((i, got))
    producer.close()
    return {
        "n": n,
        "chunk": chunk,
        "samples": len(wanted),
        "queued": queued,
        "enqueue_per_s": n / enqueue_s,
        "redis_used_memory": memory,
        "median_ms": nearest_rank(times, 50),
        "p99_ms": nearest_rank(times, 99),
        "max_ms": max(times),
        "mean_ms": sum(times) / len(times),
        "wrong": len(wrong),
        "wrong_examples": wrong[:5],
    }


def imported(state: dict, src: str) -> dict:
    """Where the producer and the worker processes (their log lines) imported baozi from; with
    ``src``, an error unless every one of them imported it from there."""
    producer = sys.modules["baozi"].__file__
    workers: list[str] = []  # one line per worker process that loaded the app
    if state["worker"] is not None:
        for line in state["worker"].log.read_text(errors="replace").splitlines():
            if line.startswith(common.IMPORTED):
                workers.append(line.removeprefix(common.IMPORTED).strip())
    if src:
        root = Path(src).resolve()
        wrong = {f for f in [producer, *workers] if not Path(f).resolve().is_relative_to(root)}
        if wrong:
            raise RuntimeError(f"baozi imported from {sorted(wrong)}, not from {src}")
        if state["worker"] is not None and not workers:
            raise RuntimeError("the worker log does not say where baozi was imported from")
    return {
        "producer_baozi": producer,
        "worker_baozi": sorted(set(workers)),
        "worker_processes": len(workers),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["drain", "latency", "enqueue", "batch", "position"])
    ap.add_argument("config", help="SYSTEM/CONFIG, e.g. baozi/c8")
    ap.add_argument("--n", type=int, default=10000, help="drain, enqueue, batch, position: jobs")
    ap.add_argument("--chunk", type=int, default=1000, help="batch, position: jobs per bulk call")
    ap.add_argument("--samples", type=int, default=200, help="position: jobs asked")
    ap.add_argument("--jobs", type=int, default=200, help="latency: jobs")
    ap.add_argument("--pidfile", default=None, help="write the worker's process group id here")
    ap.add_argument(
        "--src", default="", help="import baozi from this src/ directory (producer and worker)"
    )
    args = ap.parse_args()
    config = systems.by_key(args.config)
    if args.src and config.system not in BAOZI:
        raise SystemExit(f"--src is for the baozi configs, not {config.key}")
    if args.src:
        sys.path.insert(0, args.src)  # ahead of the installed baozi, for the producer

    work = Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    # Fresh SQLite files for the embedded stores; the driver and the worker share the paths.
    os.environ.update(
        BENCH_REDIS_URL=common.REDIS_URL,
        BENCH_N=str(args.n if args.mode == "drain" else 0),
        BENCH_BAOZI_URL=f"sqlite:///{work}/bench-baozi.db",
        BENCH_HUEY_DB=str(work / "bench-huey.db"),
    )
    os.environ.update(config.env)  # the producer builds its app from the same settings
    common.N = int(os.environ["BENCH_N"])
    # The worker finds the app modules here, and with --src that checkout's baozi first.
    path = os.pathsep.join([args.src, str(HERE)] if args.src else [str(HERE)])
    env = dict(os.environ, PYTHONPATH=path, **config.env)

    def write_pid(pgid: int) -> None:
        if args.pidfile:
            Path(args.pidfile).write_text(str(pgid))

    on_pg = config.system in systems_pg.SYSTEMS
    state: dict = {"worker": None, "pidfile_write": write_pid, "probe": pg.NoProbe()}
    schema = ""

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    redis.Redis.from_url(common.REDIS_URL).flushdb()
    try:
        if on_pg:  # a schema of its own, ready before the producer and the worker start
            schema, pg_env = systems_pg.setup(config, str(HERE))
            os.environ.update(pg_env)
            env.update(pg_env)
            systems_pg.warm(config)
            state["probe"] = pg.Probe()
        if args.mode == "drain":
            result = drain(config, env, args.n, work, state)
        elif args.mode == "latency":
            result = latency(config, env, args.jobs, work, state)
        elif args.mode == "enqueue":
            result = enqueue(config, args.n, state)
        elif args.mode == "batch":
            result = batch(config, args.n, args.chunk, state)
        else:
            result = position(config, args.n, args.chunk, args.samples)
        if config.system in BAOZI:
            result.update(imported(state, args.src))
        result["ok"] = True
    except (Exception, SystemExit) as exc:  # report, never leave a worker behind
        # The first line is the error; the innermost frames follow, for the report's Failures.
        where = "".join(traceback.format_tb(exc.__traceback__, limit=-3)).rstrip()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}\n{where}"}
    finally:
        if state["worker"] is not None:
            state["worker"].kill()
        shutil.rmtree(work, ignore_errors=True)
        if schema:
            try:
                systems_pg.teardown(schema)
            except Exception as exc:  # the driver sweeps leftovers; say so in the result
                result.setdefault("cleanup_error", f"{type(exc).__name__}: {exc}")
        try:  # leave nothing behind (a million queued jobs take Redis memory)
            redis.Redis.from_url(common.REDIS_URL).flushdb()
        except redis.RedisError:
            pass
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
