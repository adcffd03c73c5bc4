#!/usr/bin/env python
"""baozi's RabbitMQ job transport beside Celery and Dramatiq on the same RabbitMQ, in one run.

Every system sends its jobs through the same broker, and every job runs the same body: one
``INCR`` on a Redis key of the measurement's own (database 15), so completion is counted the same
way everywhere. Each measurement runs in a fresh process on fresh queues (unique names, deleted
after), and the configurations are interleaved over --rounds (the order rotates each round):

  * enqueue: one producer enqueues N no-op jobs, one call per job (``delay()`` / ``send()``), no
    worker running; jobs/s until the last call returns. For baozi (whose ``delay()`` returns once
    the store has the job, the broker's confirm arriving later) also the time until every pending
    mark is cleared, i.e. every message confirmed (``app.store.flush(60)`` after the loop, timed
    separately). Then the queue's depth is polled until RabbitMQ holds all N messages (a check
    that none was lost, and the "in the queue" time of the systems that do not wait for confirms);
  * drain: the worker is then launched and timed to the N-th completion: jobs/s from the launch
    (the headline figure) and "steady" from the first to the N-th completion;
  * CPU: user+sys CPU seconds per 1,000 jobs (psutil) of the producer, of the worker processes
    (children included), of the RabbitMQ server (the beam.smp listening on the AMQP port) and of
    redis-server, during enqueue
    (loop start until all N are in the queue) and during drain (steady: first to N-th
    completion; the worker also from its launch); and the busy CPU of every other process on
    the machine meanwhile ("others", in cores), since a shared machine skews single rows.

Configurations (``--only`` picks some by key or system):
  * equal guarantees, counted in the ratios: publisher confirms on, persistent messages, quorum
    queues where the system supports them, acknowledgement after the run --
      baozi: ``App(url=redis://...?prefix=<fresh>, transport=amqp://...)`` (quorum queue, confirms
      and acks are its only way); worker ``baozi worker -P thread -c 8`` in 1 and in 2 processes;
      Celery: pyamqp, ``broker_transport_options={"confirm_publish": True}``, ``task_queues`` with
      ``queue_arguments={"x-queue-type": "quorum"}`` (``worker_detect_quorum_queues`` on: per-
      consumer QoS, and its native-delayed-delivery bootstep), ``task_acks_late=True``; workers
      ``-P solo --prefetch-multiplier 32`` x 2 processes (no gossip/mingle/heartbeat), and the
      prefork default ``-c 2``;
      Dramatiq: ``RabbitmqBroker(url=..., confirm_delivery=True)``: a classic queue (its broker
      has no option for the queue type); workers ``-p 2 -t 8`` (its default) and ``-p 1 -t 8``;
  * each peer's default configuration (no confirms, its default classic queue; Celery acks on
    receipt) with its default worker (Celery prefork ``-c 2``, Dramatiq ``-p 2 -t 8``);
  * an extra row, not counted: Dramatiq with confirms on quorum queues, through a subclass that
    overrides the broker's private ``_build_queue_arguments``.

The report (bench/results/transport-YYYYMMDD-HHMM.md and transport-latest.md, raw numbers in a
.json beside it) gives the median (min-max) of each figure, baozi's ratio to the faster of
Celery and Dramatiq under equal guarantees for enqueue and drain (targets 1.5x), and where the
time goes (CPU per job in each process; baozi's enqueue with and without waiting for confirms).

    python bench/transport_bench.py [--n 10000] [--rounds 3] [--only baozi celery/2xsolo-pf32]
        [--amqp amqp://guest:guest@127.0.0.1:5672/%2F] [--redis redis://127.0.0.1:6379/15]
        [--quiet-wait 15 [--quiet-cores 0.5]]

On a shared machine, --quiet-wait S waits up to S seconds before each measurement until the
other processes keep fewer than --quiet-cores cores busy; the report gives, for each config, how
many cores the other processes kept busy during its measurements either way.

This module is also the app module of every worker it starts (``baozi_app``, ``celery_app``,
``dramatiq_setup``, built on first use from the TBENCH_* environment variables).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/15"
ENQUEUE_CAP = 300.0  # seconds for the enqueue loop (+ flush + depth poll)
DRAIN_CAP = 300.0  # seconds from the worker's launch to the N-th completion
FLUSH_CAP = 60.0  # baozi: seconds to wait for every confirm after the loop
OUTER_CAP = ENQUEUE_CAP + DRAIN_CAP + 60.0  # one measurement process, all told
TARGET = 1.5
STAMP = "tbench"  # every Redis key and baozi store prefix starts with this

# -- the job body and the apps (read from the environment: the driver's measurement process sets
# it, the workers inherit it) -------------------------------------------------------------------

_client: Any = None
_client_pid = 0
_client_lock = threading.Lock()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: this module's apps are built by transport_bench")
    return value


def _redis() -> Any:
    """This process's client for the counter (made again after a fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                import redis

                _client, _client_pid = redis.Redis.from_url(_env("TBENCH_REDIS")), os.getpid()
    return _client


def count_done() -> None:
    """The job body of every system: count the job; mark the first and the N-th completion."""
    r = _redis()
    key = _env("TBENCH_KEY")
    k = r.incr(f"{key}:done")
    if k == 1:
        r.rpush(f"{key}:started", repr(time.time()))
    if k == int(_env("TBENCH_N")):
        r.rpush(f"{key}:fin", repr(time.time()))


def _build_baozi() -> tuple[Any, Any]:
    import baozi

    app = baozi.App(_env("TBENCH_STORE"), transport=_env("TBENCH_AMQP"))

    @app.task(queue=_env("TBENCH_QUEUE"), name="tbench.noop")
    def noop(i: int) -> None:
        count_done()

    return app, noop


def _pyamqp(url: str) -> str:
    """The AMQP URL for kombu's py-amqp transport (Celery's default for amqp://)."""
    return "pyamqp://" + url.split("://", 1)[1]


def _build_celery() -> tuple[Any, Any]:
    from celery import Celery
    from kombu import Exchange, Queue

    queue, mode = _env("TBENCH_QUEUE"), _env("TBENCH_MODE")
    app = Celery("tbench", broker=_pyamqp(_env("TBENCH_AMQP")))
    app.conf.update(task_default_queue=queue, worker_hijack_root_logger=False)
    if mode == "equal":
        app.conf.update(
            task_queues=[
                Queue(
                    queue,
                    Exchange(queue, type="direct"),
                    routing_key=queue,
                    queue_arguments={"x-queue-type": "quorum"},
                )
            ],
            broker_transport_options={"confirm_publish": True},
            worker_detect_quorum_queues=True,
            task_acks_late=True,
        )

    @app.task(name="tbench.noop")
    def noop(i: int) -> None:
        count_done()

    return app, noop


def dramatiq_setup() -> Any:
    """Dramatiq's broker and actor (the worker command's ``transport_bench:dramatiq_setup``);
    returns the actor."""
    global _dramatiq_actor
    if _dramatiq_actor is not None:
        return _dramatiq_actor
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    mode = _env("TBENCH_MODE")

    class QuorumRabbitmqBroker(RabbitmqBroker):
        """The extra row: Dramatiq's queues (and delay queues) declared as quorum queues."""

        def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
            return {**super()._build_queue_arguments(queue_name), "x-queue-type": "quorum"}

    if mode == "default":
        broker = RabbitmqBroker(url=_env("TBENCH_AMQP"))
    elif mode == "equal":
        broker = RabbitmqBroker(url=_env("TBENCH_AMQP"), confirm_delivery=True)
    else:
        broker = QuorumRabbitmqBroker(url=_env("TBENCH_AMQP"), confirm_delivery=True)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=_env("TBENCH_QUEUE"), actor_name="tbench_noop")
    def noop(i: int) -> None:
        count_done()

    _dramatiq_actor = noop
    return noop


_dramatiq_actor: Any = None
_built: dict[str, tuple[Any, Any]] = {}


def __getattr__(name: str) -> Any:
    """``baozi_app``, ``celery_app`` (and their ``*_noop`` tasks), built on first use."""
    builders = {"baozi": _build_baozi, "celery": _build_celery}
    system, _, what = name.partition("_")
    if system in builders and what in ("app", "noop"):
        if system not in _built:
            _built[system] = builders[system]()
        app, noop = _built[system]
        return app if what == "app" else noop
    raise AttributeError(name)


# -- the configurations -------------------------------------------------------------------------

_BAOZI = (PY, "-m", "baozi", "worker", "transport_bench:baozi_app", "--transport", "{amqp}")
_CELERY = (PY, "-m", "celery", "-A", "transport_bench:celery_app", "worker", "-l", "WARNING")
_SOLO = ("-P", "solo", "--prefetch-multiplier", "32")
_QUIET = ("--without-gossip", "--without-mingle", "--without-heartbeat")
_DRAMATIQ = (PY, "-m", "dramatiq", "transport_bench:dramatiq_setup")


@dataclass(frozen=True)
class Config:
    key: str  # system/worker
    system: str  # baozi | celery | dramatiq
    mode: str  # equal | default | quorum (dramatiq's extra row)
    commands: tuple[tuple[str, ...], ...]  # worker argv templates: {amqp}, {queue}
    worker: str  # the worker, in words
    counted: bool = True  # an equal-guarantees row, in the ratios

    @property
    def group(self) -> str:
        """The system and its broker settings: the rows whose enqueue is the same."""
        return self.key.split("/")[0]

    def argv(self, amqp: str, queue: str) -> list[list[str]]:
        return [[w.format(amqp=amqp, queue=queue) for w in cmd] for cmd in self.commands]

    def shown(self) -> str:
        def one(cmd: tuple[str, ...]) -> str:
            words = ["python" if w == PY else w for w in cmd]
            return " ".join(words).replace("{amqp}", "$AMQP").replace("{queue}", "Q")

        return " & ".join(one(c) for c in self.commands)


def _celery_configs(mode: str, prefix: str, which: tuple[str, ...]) -> list[Config]:
    counted = mode == "equal"
    solo = tuple((*_CELERY, *_SOLO, *_QUIET, "-n", f"w{i}-{{queue}}@%h") for i in (1, 2))
    all_ = {
        "2xsolo-pf32": Config(
            f"{prefix}/2xsolo-pf32",
            "celery",
            mode,
            solo,
            "2 processes x -P solo, prefetch multiplier 32, no gossip/mingle/heartbeat",
            counted,
        ),
        "prefork2": Config(
            f"{prefix}/prefork2",
            "celery",
            mode,
            ((*_CELERY, "-n", "w-{queue}@%h"),),
            "prefork pool -c 2 (= cores, the default), prefetch x4",
            counted,
        ),
    }
    return [all_[w] for w in which]


def _dramatiq_configs(mode: str, prefix: str, which: tuple[str, ...]) -> list[Config]:
    counted = mode == "equal"  # the quorum subclass is an extra row
    all_ = {
        "p2t8": Config(
            f"{prefix}/p2t8",
            "dramatiq",
            mode,
            ((*_DRAMATIQ, "-p", "2", "-t", "8"),),
            "-p 2 -t 8 (its defaults on 2 cores)",
            counted,
        ),
        "p1t8": Config(
            f"{prefix}/p1t8",
            "dramatiq",
            mode,
            ((*_DRAMATIQ, "-p", "1", "-t", "8"),),
            "-p 1 -t 8",
            counted,
        ),
    }
    return [all_[w] for w in which]


CONFIGS: list[Config] = [
    Config(
        "baozi/c8",
        "baozi",
        "equal",
        ((*_BAOZI, "-P", "thread", "-c", "8", "-q"),),
        "1 process x 8 threads (-P thread -c 8, the default)",
    ),
    Config(
        "baozi/p2c8",
        "baozi",
        "equal",
        ((*_BAOZI, "-P", "thread", "-c", "8", "-p", "2", "-q"),),
        "2 processes x 8 threads (-p 2 -c 8)",
    ),
    *_celery_configs("equal", "celery", ("2xsolo-pf32", "prefork2")),
    *_dramatiq_configs("equal", "dramatiq", ("p2t8", "p1t8")),
    # each peer's defaults: broker settings and worker command
    *_celery_configs("default", "celery-default", ("prefork2",)),
    *_dramatiq_configs("default", "dramatiq-default", ("p2t8",)),
    *_dramatiq_configs("quorum", "dramatiq-quorum", ("p2t8",)),
]

GUARANTEES = {
    "baozi": "confirms, quorum queue, ack after the run (its only way)",
    "celery": "confirm_publish, quorum queue (task_queues), task_acks_late",
    "celery-default": "Celery's defaults: no confirms, classic queue, ack before the run",
    "dramatiq": "confirm_delivery=True, classic queue (no quorum option), ack after the run",
    "dramatiq-default": "Dramatiq's defaults: no confirms, classic queue, ack after the run",
    "dramatiq-quorum": "confirm_delivery=True, quorum queues via a subclass overriding the "
    "private _build_queue_arguments (extra row, not in the ratios)",
}
CALL = {"baozi": "noop.delay(i)", "celery": "noop.delay(i)", "dramatiq": "noop.send(i)"}


def queues_of(system: str, queue: str) -> list[str]:
    """The RabbitMQ queues a measurement on ``queue`` makes (deleted after it)."""
    if system == "baozi":
        return [f"baozi.{queue}", f"baozi.{queue}.dead"]
    if system == "dramatiq":
        return [queue, f"{queue}.DQ", f"{queue}.XQ"]
    return [queue]


def main_queue(system: str, queue: str) -> str:
    return f"baozi.{queue}" if system == "baozi" else queue


# -- helpers on the broker, Redis and processes -------------------------------------------------


def amqp_delete(url: str, queues: Sequence[str] = (), exchanges: Sequence[str] = ()) -> None:
    """Delete these queues and exchanges (absent ones are fine)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for q in queues:
            channel.queue_delete(q)
        for x in exchanges:
            channel.exchange_delete(x)
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def amqp_exists(url: str, names: list[str], kind: str) -> dict[str, bool]:
    """Which of these queues (kind "queue") or exchanges exist (a passive declare each)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    out = {}
    try:
        for name in names:
            channel = connection.channel()
            try:
                if kind == "queue":
                    channel.queue_declare(name, passive=True)
                else:
                    channel.exchange_declare(name, passive=True)
                out[name] = True
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                out[name] = False
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return out


class Depth:
    """Polls a queue's ready-message count (passive declares on one channel)."""

    def __init__(self, url: str) -> None:
        import pika

        self.pika = pika
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def __call__(self, queue: str) -> int:
        try:
            return int(self.channel.queue_declare(queue, passive=True).method.message_count)
        except self.pika.exceptions.ChannelClosedByBroker as exc:  # not declared yet
            if exc.reply_code != 404:
                raise
            self.channel = self.connection.channel()
            return 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


def server_pid(name: str, url: str, default_port: int) -> int | None:
    """The process id of the server called ``name`` (beam.smp, redis-server) that listens on
    ``url``'s port: other servers of that name may run beside it (tests start RabbitMQ nodes of
    their own)."""
    import psutil

    port = urlsplit(url).port or default_port
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(c.pid).name() == name:
                    return c.pid
    return None


def cpu_of(pids: list[int | None]) -> float:
    """User + system CPU seconds of these processes and all their descendants."""
    import psutil

    seen: dict[int, Any] = {}
    for pid in pids:
        if pid is None:
            continue
        try:
            root = psutil.Process(pid)
            seen[root.pid] = root
            for child in root.children(recursive=True):
                seen[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    total = 0.0
    for proc in seen.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def redis_sweep(url: str, pattern: str) -> int:
    """Delete every key matching ``pattern``; how many."""
    import redis

    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(match=pattern, count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i : i + 1000])
    return len(keys)


# -- one measurement (in a process of its own) --------------------------------------------------


class Workers:
    """A configuration's worker processes, all in one new process group (killed as one)."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str], log: Path) -> None:
        self.log = log
        out = open(log, "wb")
        self.procs: list[subprocess.Popen[bytes]] = []
        for argv in argvs:
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

    def cpu(self) -> float:
        return cpu_of([p.pid for p in self.procs])

    def kill(self) -> None:
        kill_group(self.pgid)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Probe:
    """CPU seconds of the RabbitMQ and Redis servers and of the whole machine (busy, every
    core), sampled together."""

    def __init__(self, amqp: str, redis_url: str) -> None:
        self.pids = {
            "rabbitmq": server_pid("beam.smp", amqp, 5672),
            "redis": server_pid("redis-server", redis_url, 6379),
        }

    def sample(self) -> dict[str, float]:
        import psutil

        out = {name: cpu_of([pid]) if pid else float("nan") for name, pid in self.pids.items()}
        t = psutil.cpu_times()
        out["machine"] = sum(t) - t.idle - getattr(t, "iowait", 0.0)  # busy, all cores
        return out

    @staticmethod
    def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return {k: b[k] - a[k] for k in a}


def _producer(system: str) -> tuple[Any, Any]:
    """(the call that enqueues job i, what to call after the loop to wait for confirms)."""
    import transport_bench as mod  # the workers' module, so task names and queues agree

    if system == "baozi":
        noop, app = mod.baozi_noop, mod.baozi_app
        return noop.delay, lambda: app.store.flush(FLUSH_CAP)
    if system == "celery":
        return mod.celery_noop.delay, None
    return mod.dramatiq_setup().send, None


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    import redis

    config = next(c for c in CONFIGS if c.key == spec["key"])
    n, queue, key = spec["n"], spec["queue"], spec["counter"]
    os.environ.update(
        TBENCH_QUEUE=queue,
        TBENCH_KEY=key,
        TBENCH_N=str(n),
        TBENCH_MODE=config.mode,
        TBENCH_AMQP=spec["amqp"],
        TBENCH_REDIS=spec["redis"],
        TBENCH_STORE=spec["store"],
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    r = redis.Redis.from_url(spec["redis"])
    probe = Probe(spec["amqp"], spec["redis"])
    depth = Depth(spec["amqp"])
    workers: Workers | None = None
    out: dict[str, Any] = {}
    try:
        signal.alarm(int(ENQUEUE_CAP))  # the enqueue phase, all told
        call, confirm = _producer(config.system)
        # enqueue: one call per job, no worker
        s0, c0, t0 = probe.sample(), time.process_time(), time.perf_counter()
        for i in range(n):
            call(i)
        t1, c1 = time.perf_counter(), time.process_time()
        out["enqueue_s"], out["producer_cpu_s"] = t1 - t0, c1 - c0
        if confirm is not None:
            if not confirm():
                raise TimeoutError(f"not every confirm came within {FLUSH_CAP:.0f} s")
            t2, c2 = time.perf_counter(), time.process_time()
            out["confirmed_s"], out["flush_cpu_s"] = t2 - t0, c2 - c1
        name = main_queue(config.system, queue)
        deadline = time.perf_counter() + 60
        while (got := depth(name)) < n:
            if time.perf_counter() > deadline:
                hint = ""
                if confirm is not None:
                    hint = (
                        " (app.store.flush() had returned: every publish was answered, but not "
                        "all were confirmed; the refused ones keep their marks, for a worker to "
                        "publish)"
                    )
                raise TimeoutError(f"{got} of {n} messages in {name} after 60 s{hint}")
            time.sleep(0.01)
        t3, c3 = time.perf_counter(), time.process_time()
        s1 = probe.sample()
        out["process_enqueue_cpu_s"] = c3 - c0  # the loop, the wait and the depth polls
        out["in_queue_s"], out["depth"] = t3 - t0, got
        out["enqueue_servers_cpu_s"] = probe.delta(s0, s1)
        out["ran_early"] = int(r.get(f"{key}:done") or 0)  # jobs run before any worker: 0
        signal.alarm(0)

        # drain: launch the worker, wait for the N-th completion
        s2 = probe.sample()
        launched = time.time()
        workers = Workers(config.argv(spec["amqp"], queue), env, Path(spec["log"]))
        Path(spec["pidfile"]).write_text(str(workers.pgid))
        deadline = launched + DRAIN_CAP
        first_cpu, s_first, first, c_first = None, None, None, 0.0
        while True:
            popped = r.blpop([f"{key}:fin", f"{key}:started"], timeout=1)
            if popped is None:
                if not workers.alive():
                    raise RuntimeError("a worker exited early:\n" + workers.tail())
                if time.time() > deadline:
                    raise TimeoutError(
                        f"{int(r.get(f'{key}:done') or 0)} of {n} done after {DRAIN_CAP:.0f} s; "
                        "worker log:\n" + workers.tail()
                    )
                continue
            which, value = popped[0].decode(), float(popped[1])
            if which.endswith(":started"):
                first, first_cpu, s_first = value, workers.cpu(), probe.sample()
                c_first = time.process_time()
                continue
            last = value
            break
        end_cpu, s_end, c_end = workers.cpu(), probe.sample(), time.process_time()
        processes = sum(1 + len(_children(p.pid)) for p in workers.procs)
        workers.kill()
        out.update(
            drain_s=last - launched,
            steady_s=last - first if first is not None else float("nan"),
            start_s=first - launched if first is not None else float("nan"),
            worker_cpu_s=end_cpu,
            worker_steady_cpu_s=end_cpu - first_cpu if first_cpu is not None else float("nan"),
            # this process meanwhile (the producer's app is still open, e.g. its broker link)
            process_steady_cpu_s=c_end - c_first if first_cpu is not None else float("nan"),
            drain_servers_cpu_s=probe.delta(s2, s_end),
            steady_servers_cpu_s=probe.delta(s_first, s_end) if s_first else {},
            done=int(r.get(f"{key}:done") or 0),
            worker_processes=processes,
        )
        out["ok"] = True
    except BaseException as exc:  # report, never leave a worker behind
        where = "".join(traceback.format_tb(exc.__traceback__, limit=-3)).rstrip()
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}\n{where}"}
        if workers is not None:
            out["worker_log"] = workers.tail()
    finally:
        signal.alarm(0)
        if workers is not None:
            workers.kill()
        depth.close()
    return out


def _children(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    return []


def _measure_main(raw: str) -> None:
    def on_signal(signum: int, frame: object) -> None:
        raise TimeoutError(f"signal {signum}: the phase's time cap ran out")

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    result = measure(json.loads(raw))
    print("TBENCH-RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # no atexit flush of a half-sent baozi producer after a failure


# -- the driver ---------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    run_id: str
    work: Path
    made_queues: set[str]
    made_exchanges: set[str]
    redis_prefixes: list[str]
    live: dict[int, Path]  # measurement pid -> its pidfile (the worker's process group)


def machine_busy(seconds: float = 1.0) -> float:
    """How many cores the machine kept busy over the next ``seconds``."""
    import psutil

    def busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    b0, t0 = busy(), time.perf_counter()
    time.sleep(seconds)
    return (busy() - b0) / (time.perf_counter() - t0)


def wait_for_quiet(limit: float, cores: float) -> tuple[float, float]:
    """Wait, up to ``limit`` seconds, until the machine keeps fewer than ``cores`` busy (over
    one second); (seconds waited, the last busy figure)."""
    t0 = time.perf_counter()
    while True:
        now = machine_busy()
        if now < cores or time.perf_counter() - t0 >= limit:
            return time.perf_counter() - t0, now


def one(run: Run, config: Config, round_no: int) -> dict[str, Any]:
    """Run one measurement of ``config`` in a fresh process; clean up after it."""
    args = run.args
    waited, busy_before = (
        wait_for_quiet(args.quiet_wait, args.quiet_cores) if args.quiet_wait > 0 else (0.0, None)
    )
    tag = uuid.uuid4().hex[:10]
    queue = f"tb{tag}"
    counter = f"{STAMP}:{run.run_id}:{tag}"
    prefix = f"{STAMP}-{run.run_id}-{tag}"
    store = f"{args.redis}?prefix={prefix}"
    run.redis_prefixes.append(prefix)
    made = queues_of(config.system, queue)
    run.made_queues.update(made)
    exchanges = [queue] if config.system == "celery" else []
    run.made_exchanges.update(exchanges)
    pidfile, log = run.work / f"{tag}.pid", run.work / f"{tag}.log"
    spec = dict(
        key=config.key,
        n=args.n,
        queue=queue,
        counter=counter,
        amqp=args.amqp,
        redis=args.redis,
        store=store,
        pidfile=str(pidfile),
        log=str(log),
    )
    proc = subprocess.Popen(
        [PY, str(Path(__file__).resolve()), "--measure", json.dumps(spec)],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        ),
    )
    run.live[proc.pid] = pidfile
    try:
        stdout, stderr = proc.communicate(timeout=OUTER_CAP)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("TBENCH-RESULT ")]
        if lines:
            result = json.loads(lines[-1].removeprefix("TBENCH-RESULT "))
            if stderr.strip():  # e.g. the producer's library warnings
                result["stderr"] = "\n".join(stderr.splitlines()[-15:])
        else:
            result = {
                "ok": False,
                "error": f"no result (exit {proc.returncode}):\n"
                + "\n".join(stderr.splitlines()[-15:]),
            }
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        result = {"ok": False, "error": f"the measurement process ran past {OUTER_CAP:.0f} s"}
    finally:
        stop_measurement(proc.pid, pidfile)
        run.live.pop(proc.pid, None)
        cleanup = []
        try:
            amqp_delete(args.amqp, made, exchanges)
        except Exception as exc:  # noqa: BLE001 -- swept again at the end
            cleanup.append(f"queues: {exc}")
        try:
            redis_sweep(args.redis, f"{counter}*")
            redis_sweep(args.redis, f"{prefix}*")
        except Exception as exc:  # noqa: BLE001
            cleanup.append(f"redis: {exc}")
    result.update(
        key=config.key, round=round_no, queue=queue, quiet_wait_s=waited, busy_before=busy_before
    )
    if cleanup:
        result["cleanup_error"] = "; ".join(cleanup)
    return result


def stop_measurement(pid: int, pidfile: Path) -> None:
    """Kill a measurement process (by its pid) and its workers' process group (from its
    pidfile), whatever state they are in."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):
        kill_group(int(pidfile.read_text()))


def _git_rev() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)
        return done.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return f"{rev}{' + uncommitted changes in src/' if dirty else ', src/ as committed'}"


def versions(amqp: str, redis_url: str) -> dict[str, str]:
    from importlib.metadata import version

    import pika
    import redis

    out = {"python": platform.python_version(), "baozi": f"{version('baozi')} (git {_git_rev()})"}
    for dist in ("celery", "kombu", "amqp", "dramatiq", "pika", "redis"):
        try:
            out[dist if dist != "redis" else "redis-py"] = version(dist)
        except Exception:  # noqa: BLE001
            out[dist] = "absent"
    connection = pika.BlockingConnection(pika.URLParameters(amqp))
    props = connection._impl.server_properties  # noqa: SLF001 -- pika keeps them there
    server = props.get("version", b"?")
    out["RabbitMQ"] = server.decode() if isinstance(server, bytes) else str(server)
    connection.close()
    out["Redis server"] = str(redis.Redis.from_url(redis_url).info("server")["redis_version"])
    return out


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "model": model, "kernel": platform.release()}


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# celery's global exchanges and its native-delayed-delivery topology (declared by its workers):
# deleted at the end when they did not exist before the run.
CELERY_EXCHANGES = ["celeryev", "celery.pidbox", "reply.celery.pidbox", "celery_delayed_delivery"]
CELERY_EXCHANGES += [f"celery_delayed_{i}" for i in range(28)]
CELERY_QUEUES = [f"celery_delayed_{i}" for i in range(28)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="jobs per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--amqp", default=AMQP_URL)
    ap.add_argument("--redis", default=REDIS_URL, help="the counter's and baozi's store database")
    ap.add_argument("--only", nargs="*", help="config keys or group names (e.g. baozi celery)")
    ap.add_argument("--out", type=Path, help="report file (default bench/results/...)")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="before each measurement, wait up to S seconds for the machine to be quiet "
        "(fewer than --quiet-cores cores busy over 1 s); 0: do not wait",
    )
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        _measure_main(args.measure)
        return
    configs = [c for c in CONFIGS if not args.only or c.key in args.only or c.group in args.only]
    if not configs:
        raise SystemExit(f"nothing selected; keys: {', '.join(c.key for c in CONFIGS)}")

    started = dt.datetime.now(dt.UTC)
    run = Run(
        args,
        uuid.uuid4().hex[:8],
        Path(tempfile.mkdtemp(prefix="transport-bench-")),
        set(),
        set(),
        [],
        {},
    )
    before_load = loadavg()
    info: dict[str, Any] = {"machine": machine(), "versions": versions(args.amqp, args.redis)}
    pre_x = amqp_exists(args.amqp, CELERY_EXCHANGES, "exchange")
    pre_q = amqp_exists(args.amqp, CELERY_QUEUES, "queue")
    print(
        f"run {run.run_id}: {len(configs)} configs x {args.rounds} rounds, n={args.n}; "
        f"load {before_load}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    try:
        for r in range(args.rounds):
            order = configs[r % len(configs) :] + configs[: r % len(configs)]
            print(f"round {r + 1}", flush=True)
            for config in order:
                res = one(run, config, r + 1)
                results.append(res)
                print("  " + progress_line(config, res, args.n), flush=True)
    finally:
        for pid, pidfile in list(run.live.items()):
            stop_measurement(pid, pidfile)
        sweep_errors = final_sweep(run, pre_x, pre_q)
        with contextlib.suppress(OSError):
            for f in run.work.iterdir():
                f.unlink()
            run.work.rmdir()
    info.update(
        load_before=before_load,
        load_after=loadavg(),
        started=started,
        minutes=(time.perf_counter() - t_start) / 60,
        sweep_errors=sweep_errors,
        argv=" ".join(["python", "bench/transport_bench.py", *sys.argv[1:]]),
    )
    text = report(args, configs, results, info)
    out = args.out or HERE / "results" / f"transport-{started:%Y%m%d-%H%M}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "info": {**info, "started": started.isoformat()},
                "args": {k: str(v) for k, v in vars(args).items()},
                "results": results,
            },
            indent=1,
        )
    )
    if args.out is None:
        (HERE / "results" / "transport-latest.md").write_text(text)
    print(text)
    print(f"written to {out}")


def final_sweep(run: Run, pre_x: dict[str, bool], pre_q: dict[str, bool]) -> list[str]:
    """Delete whatever the run made that is still there: its queues and exchanges, Celery's
    global ones if they did not exist before, and its Redis keys."""
    errors = []
    queues = sorted(run.made_queues) + [q for q, had in pre_q.items() if not had]
    exchanges = sorted(run.made_exchanges) + [x for x, had in pre_x.items() if not had]
    try:
        amqp_delete(run.args.amqp, queues, exchanges)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"RabbitMQ: {exc}")
    try:
        redis_sweep(run.args.redis, f"{STAMP}:{run.run_id}:*")
        redis_sweep(run.args.redis, f"{STAMP}-{run.run_id}-*")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"Redis: {exc}")
    return errors


def progress_line(config: Config, res: dict[str, Any], n: int) -> str:
    if not res.get("ok"):
        return f"{config.key:28} FAILED: {res.get('error', '').splitlines()[0]}"
    conf = f" confirmed {n / res['confirmed_s']:7,.0f}/s" if "confirmed_s" in res else ""
    return (
        f"{config.key:28} enqueue {n / res['enqueue_s']:7,.0f}/s{conf}  drain "
        f"{n / res['drain_s']:7,.0f}/s (steady {(n - 1) / res['steady_s']:7,.0f}/s, start "
        f"{res['start_s']:.2f} s)"
    )


# -- the report ---------------------------------------------------------------------------------


def _figures(res: dict[str, Any], n: int) -> dict[str, float]:
    """One measurement's figures: rates in jobs/s, CPU in ms per 1,000 jobs."""
    per_k = 1e6 / n  # seconds for n jobs -> ms per 1,000 jobs
    enq, drain = res["enqueue_servers_cpu_s"], res["drain_servers_cpu_s"]
    steady = res.get("steady_servers_cpu_s") or {}
    out = {
        "enqueue": n / res["enqueue_s"],
        "in_queue": n / res["in_queue_s"],
        "drain": n / res["drain_s"],
        "steady": (n - 1) / res["steady_s"],
        "start": res["start_s"],
        "producer_cpu": res["producer_cpu_s"] * per_k,
        "rabbit_enqueue_cpu": enq["rabbitmq"] * per_k,
        "redis_enqueue_cpu": enq["redis"] * per_k,
        "worker_cpu": res["worker_cpu_s"] * per_k,
        "worker_steady_cpu": res["worker_steady_cpu_s"] * 1e6 / (n - 1),
        "rabbit_drain_cpu": drain["rabbitmq"] * per_k,
        "rabbit_steady_cpu": steady.get("rabbitmq", float("nan")) * 1e6 / (n - 1),
        "redis_steady_cpu": steady.get("redis", float("nan")) * 1e6 / (n - 1),
        # the rest of the machine's busy CPU (other processes), in cores
        "others_enqueue": (
            enq["machine"] - res["process_enqueue_cpu_s"] - enq["rabbitmq"] - enq["redis"]
        )
        / res["in_queue_s"],
        "others_drain": (
            steady.get("machine", float("nan"))
            - res["worker_steady_cpu_s"]
            - res["process_steady_cpu_s"]
            - steady.get("rabbitmq", float("nan"))
            - steady.get("redis", float("nan"))
        )
        / res["steady_s"],
    }
    if "confirmed_s" in res:
        out["confirmed"] = n / res["confirmed_s"]
        out["flush_cpu"] = res["flush_cpu_s"] * per_k
        out["producer_total_cpu"] = (res["producer_cpu_s"] + res["flush_cpu_s"]) * per_k
    return out


def _quiet_note(args: argparse.Namespace, results: list[dict[str, Any]]) -> list[str]:
    if args.quiet_wait <= 0:
        return []
    quiet = [r for r in results if (r.get("busy_before") or 0.0) < args.quiet_cores]
    waited = sum(r.get("quiet_wait_s", 0.0) for r in results)
    return [
        f"Before each measurement the run waited up to {args.quiet_wait:.0f} s for the machine "
        f"to keep fewer than {args.quiet_cores} cores busy: {len(quiet)} of {len(results)} "
        f"measurements started so, after {waited / 60:.1f} min of waiting in all.",
        "",
    ]


def _cell(values: list[float], fmt: str = ",.0f") -> str:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def _med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def report(
    args: argparse.Namespace,
    configs: list[Config],
    results: list[dict[str, Any]],
    info: dict[str, Any],
) -> str:
    n = args.n
    figs: dict[str, list[dict[str, float]]] = {c.key: [] for c in configs}
    failures = []
    for res in results:
        if res.get("ok"):
            figs[res["key"]].append(_figures(res, n))
        else:
            failures.append(res)

    def col(key: str, name: str) -> list[float]:
        return [f[name] for f in figs[key] if name in f]

    def group_col(group: str, name: str) -> list[float]:
        return [f[name] for c in configs if c.group == group for f in figs[c.key] if name in f]

    m, v = info["machine"], info["versions"]
    lines = [
        "# baozi's RabbitMQ transport beside Celery and Dramatiq",
        "",
        f"Run {info['started']:%Y-%m-%d %H:%M} UTC: `{info['argv']}`, {args.rounds} round(s) "
        f"x {len(configs)} configs, N = {n:,} jobs per measurement, {info['minutes']:.1f} min "
        "in all.",
        "",
        f"Machine: {m['cpus']} CPUs ({m['model']}), Linux {m['kernel']}; load average "
        f"(1/5/15 min) {info['load_before']} before, {info['load_after']} after.",
        "",
        *_quiet_note(args, results),
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"RabbitMQ at {args.amqp.split('@')[-1]}; Redis at {args.redis.split('@')[-1]} (the "
        "completion counter of every system, and baozi's store under a fresh prefix per "
        "measurement). Each measurement: its own process and fresh queues; the producer "
        "enqueues N jobs one call each with no worker running, then the worker is launched and "
        "timed to the N-th completion (an `INCR` in every job body). Cells: median (min–max) "
        "over the rounds.",
        "",
        "## Configurations",
        "",
        "| config | broker settings | producer call | worker |",
        "|---|---|---|---|",
    ]
    for c in configs:
        counted = "" if c.counted else " *(not in the ratios)*"
        lines.append(
            f"| {c.key}{counted} | {GUARANTEES[c.group]} | `{CALL[c.system]}` | "
            f"{c.worker}: `{c.shown()}` |"
        )
    lines += [
        "",
        "## Throughput (jobs/s)",
        "",
        "*enqueue*: N calls, until the last returns. *all confirmed*: baozi, until "
        "`app.store.flush()` returns (every confirm in, every pending mark cleared); for the "
        "peers with confirms each call already waited for its confirm. *in the queue*: until "
        "RabbitMQ's queue holds all N (polled every 10 ms). *drain*: from the worker's launch "
        "to the N-th completion; *steady*: first to N-th completion; *start*: launch to the "
        "first completion, seconds. *others*: the busy CPU of every other process on the "
        "machine meanwhile (all cores' busy time minus producer, worker, RabbitMQ and Redis), "
        "in cores, during enqueue / drain steady: what the measurement shared the 2 cores with.",
        "",
        "| config | enqueue | all confirmed | in the queue | drain | drain steady | start s | "
        "others, cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        lines.append(
            f"| {c.key} | {_cell(col(c.key, 'enqueue'))} | {_cell(col(c.key, 'confirmed'))} | "
            f"{_cell(col(c.key, 'in_queue'))} | {_cell(col(c.key, 'drain'))} | "
            f"{_cell(col(c.key, 'steady'))} | {_cell(col(c.key, 'start'), '.2f')} | "
            f"{_cell(col(c.key, 'others_enqueue'), '.2f')} / "
            f"{_cell(col(c.key, 'others_drain'), '.2f')} |"
        )
    lines += [
        "",
        "## CPU (ms per 1,000 jobs, user + system)",
        "",
        "Enqueue: the producer process (baozi: its `delay()` loop, then `+` its wait for the "
        "confirms), RabbitMQ (the beam.smp listening on the AMQP port) and redis-server from "
        "the first call until the queue holds all N. Drain: the worker processes (children included) from the first to the "
        "N-th completion (*steady*) and from their launch (*incl. start*: imports, connections, "
        "declarations); RabbitMQ and Redis from the first to the N-th completion. Both servers "
        "also serve whatever else runs on the machine.",
        "",
        "| config | producer | RabbitMQ, enqueue | Redis, enqueue | worker steady | "
        "worker incl. start | RabbitMQ, drain steady | Redis, drain steady |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        prod = _cell(col(c.key, "producer_cpu"))
        if col(c.key, "flush_cpu"):
            prod += f" + {_cell(col(c.key, 'flush_cpu'))}"
        lines.append(
            f"| {c.key} | {prod} | {_cell(col(c.key, 'rabbit_enqueue_cpu'))} | "
            f"{_cell(col(c.key, 'redis_enqueue_cpu'))} | {_cell(col(c.key, 'worker_steady_cpu'))} | "
            f"{_cell(col(c.key, 'worker_cpu'))} | {_cell(col(c.key, 'rabbit_steady_cpu'))} | "
            f"{_cell(col(c.key, 'redis_steady_cpu'))} |"
        )
    lines += ["", *ratios(configs, figs, col, group_col, n)]
    if failures:
        lines += ["", "## Failures", ""]
        for res in failures:
            lines.append(f"* {res['key']} (round {res['round']}, queue {res['queue']}):")
            lines.append("")
            lines.append("  ```")
            body = res.get("error", "")
            for part in ("worker_log", "stderr"):
                if res.get(part):
                    body += f"\n--- {part.replace('_', ' ')}:\n{res[part]}"
            lines += ["  " + ln for ln in body.splitlines()[:30]]
            lines.append("  ```")
    odd = [
        r for r in results if r.get("ok") and (r["done"] != n or r["ran_early"] or r["depth"] != n)
    ]
    if odd:
        lines += ["", "## Counts off", ""]
        for res in odd:
            lines.append(
                f"* {res['key']} round {res['round']}: {res['depth']} in the queue after the "
                f"enqueue, {res['ran_early']} run before the worker, {res['done']} completions"
            )
    cleanup = [r for r in results if r.get("cleanup_error")]
    if cleanup or info["sweep_errors"]:
        lines += ["", "## Clean-up errors", ""]
        lines += [f"* {r['key']} round {r['round']}: {r['cleanup_error']}" for r in cleanup]
        lines += [f"* final sweep: {e}" for e in info["sweep_errors"]]
    lines += [
        "",
        "## Notes",
        "",
        "* Dramatiq's `RabbitmqBroker` declares classic queues with arguments of its own "
        "(dead-letter to `<queue>.XQ`, a delay queue `<queue>.DQ`) and has no option for the "
        "queue type, so its equal-guarantees rows use classic queues with `confirm_delivery=True`; "
        "the `dramatiq-quorum` row (quorum through a subclass overriding the private "
        "`_build_queue_arguments`) is shown for reference only.",
        "* Celery with a quorum queue: `worker_detect_quorum_queues` (on by default) turns global "
        "QoS off (per-consumer prefetch) and adds the native-delayed-delivery bootstep, which "
        "declares the `celery_delayed_*` exchanges and quorum queues at worker start (part of "
        "its *start* time). `task_acks_late=True` acknowledges after the run, as baozi and "
        "Dramatiq do; Celery's default acknowledges on receipt.",
        "* Each measurement's queues (baozi: `baozi.Q`, `baozi.Q.dead`; Celery: `Q` and its "
        "exchange; Dramatiq: `Q`, `Q.DQ`, `Q.XQ`), its Redis keys and baozi's store prefix are "
        "deleted after it; Celery's global exchanges and delayed-delivery topology are deleted at "
        "the end if the run made them. Every worker runs in its own process group, killed with "
        "SIGKILL once the N-th job completed (after its CPU was read).",
    ]
    return "\n".join(lines) + "\n"


def ratios(configs, figs, col, group_col, n) -> list[str]:  # type: ignore[no-untyped-def]
    """The ratio section: baozi ÷ the faster peer under equal guarantees, and where the time
    goes."""
    out = ["## Ratios: baozi ÷ the faster of Celery and Dramatiq (equal guarantees)", ""]
    peers = [g for g in ("celery", "dramatiq") if any(c.group == g for c in configs)]
    if not any(c.group == "baozi" for c in configs) or not peers:
        return out + ["(needs baozi and at least one peer with equal guarantees in the run)"]

    def best(system_group: str, name: str) -> tuple[str, float]:
        """The config of the group with the highest median ``name``."""
        cands = [(c.key, _med(col(c.key, name))) for c in configs if c.group == system_group]
        cands = [x for x in cands if x[1] == x[1]]
        return max(cands, key=lambda x: x[1]) if cands else ("–", float("nan"))

    # enqueue: the group's samples pooled (every config of a group enqueues the same way)
    enq = {g: _med(group_col(g, "enqueue")) for g in ("baozi", *peers)}
    conf_b = _med(group_col("baozi", "confirmed"))
    fast_peer = max(peers, key=lambda g: enq[g] if enq[g] == enq[g] else -1)
    e_ratio = enq["baozi"] / enq[fast_peer]
    c_ratio = conf_b / enq[fast_peer]
    drain = {g: best(g, "drain") for g in ("baozi", *peers)}
    steady = {g: best(g, "steady") for g in ("baozi", *peers)}
    fast_drain = max(peers, key=lambda g: drain[g][1] if drain[g][1] == drain[g][1] else -1)
    fast_steady = max(peers, key=lambda g: steady[g][1] if steady[g][1] == steady[g][1] else -1)
    d_ratio = drain["baozi"][1] / drain[fast_drain][1]
    s_ratio = steady["baozi"][1] / steady[fast_steady][1]

    def verdict(x: float) -> str:
        return "**met**" if x >= TARGET else "**not met**"

    out += [
        "| measure | baozi | faster peer | ratio | target 1.5x |",
        "|---|---|---|---|---|",
        f"| enqueue (`delay()` returns; all rows of a system pooled) | {enq['baozi']:,.0f}/s | "
        f"{fast_peer} {enq[fast_peer]:,.0f}/s | {e_ratio:.2f}x | {verdict(e_ratio)} |",
        f"| enqueue, baozi until all confirmed (peers' calls wait for theirs) | {conf_b:,.0f}/s "
        f"| {fast_peer} {enq[fast_peer]:,.0f}/s | {c_ratio:.2f}x | (for reference) |",
        f"| drain, launch to N-th (best config each) | {drain['baozi'][0]} "
        f"{drain['baozi'][1]:,.0f}/s | {drain[fast_drain][0]} {drain[fast_drain][1]:,.0f}/s | "
        f"{d_ratio:.2f}x | {verdict(d_ratio)} |",
        f"| drain steady, first to N-th (best config each) | {steady['baozi'][0]} "
        f"{steady['baozi'][1]:,.0f}/s | {steady[fast_steady][0]} "
        f"{steady[fast_steady][1]:,.0f}/s | {s_ratio:.2f}x | (for reference) |",
        "",
        "Every peer group beside baozi (medians; enqueue pooled over the group's rows, drain "
        "from its best config):",
        "",
        "| group | enqueue/s | baozi ÷ it | best drain config | drain/s | baozi ÷ it | "
        "steady/s | baozi ÷ it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in dict.fromkeys(c.group for c in configs):
        if g == "baozi":
            continue
        e = _med(group_col(g, "enqueue"))
        dk, dv = best(g, "drain")
        _, sv = best(g, "steady")
        out.append(
            f"| {g} | {e:,.0f} | {enq['baozi'] / e:.2f}x | {dk} | {dv:,.0f} | "
            f"{drain['baozi'][1] / dv:.2f}x | {sv:,.0f} | {steady['baozi'][1] / sv:.2f}x |"
        )
    out += ["", "## Where the time goes", ""]
    missed = [name for name, x in (("enqueue", e_ratio), ("drain", d_ratio)) if x < TARGET]
    if missed:
        out.append(
            f"baozi misses the 1.5x target for {' and '.join(missed)}. From the same run "
            "(medians, µs per job; wall = 1e6 / rate):"
        )
    else:
        out.append("Both targets met. From the same run (medians, µs per job):")
    out.append("")

    def us(key: str, name: str) -> float:
        return _med(col(key, name))  # ms per 1,000 jobs = µs per job

    # enqueue: baozi's rows pooled vs each equal peer's rows pooled
    out += [
        "Enqueue (one producer process; CPU in µs per job; the servers' CPU runs beside the "
        "producer's, on the other core):",
        "",
        "| group | wall per job | producer CPU | RabbitMQ CPU | Redis CPU | producer off CPU "
        "(waiting on a round trip or for a core) | cores kept busy (all three) | others, cores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in dict.fromkeys(c.group for c in configs):
        wall = 1e6 / _med(group_col(g, "enqueue"))
        prod = _med(group_col(g, "producer_cpu"))
        rab = _med(group_col(g, "rabbit_enqueue_cpu"))
        red = _med(group_col(g, "redis_enqueue_cpu"))
        busy = (prod + rab + red) / wall
        others = _med(group_col(g, "others_enqueue"))
        out.append(
            f"| {g} | {wall:,.0f} | {prod:,.0f} | {rab:,.0f} | {red:,.0f} | "
            f"{max(wall - prod, 0):,.0f} ({max(wall - prod, 0) / wall:.0%}) | {busy:.2f} | "
            f"{others:.2f} |"
        )
    if group_col("baozi", "confirmed"):
        loop = 1e6 / enq["baozi"]
        allc = 1e6 / conf_b
        flush_cpu = _med(group_col("baozi", "flush_cpu"))
        out += [
            "",
            f"baozi's enqueue without waiting for confirms: {enq['baozi']:,.0f}/s "
            f"({loop:,.0f} µs per job, the `delay()` loop: one store call each, the publish "
            f"handed to the link's thread); with the wait for every confirm and cleared mark: "
            f"{conf_b:,.0f}/s ({allc:,.0f} µs per job; the wait after the loop adds "
            f"{allc - loop:,.0f} µs per job and {flush_cpu:,.0f} µs of producer CPU per job). "
            "The producer's CPU (loop, as above) includes the link's IO thread and the "
            "mark-clearing thread running beside the loop.",
        ]
    out += [
        "",
        "Drain (steady state, first to N-th completion; CPU in µs per job; 2 cores give "
        "2,000,000 µs of CPU per second, so `2e6 / total` bounds the rate when the run is "
        "CPU-bound. *cores kept busy* + *others* near 2: the machine was saturated; well "
        "below 2: the system waits on round trips):",
        "",
        "| config | wall per job | worker CPU | RabbitMQ CPU | Redis CPU | total | 2e6 / total | "
        "cores kept busy (total / wall) | others, cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        if not figs[c.key]:
            continue
        wall = 1e6 / _med(col(c.key, "steady"))
        w, rb, rd = (
            us(c.key, "worker_steady_cpu"),
            us(c.key, "rabbit_steady_cpu"),
            us(c.key, "redis_steady_cpu"),
        )
        total = w + rb + rd
        out.append(
            f"| {c.key} | {wall:,.0f} | {w:,.0f} | {rb:,.0f} | {rd:,.0f} | {total:,.0f} | "
            f"{2e6 / total:,.0f}/s | {total / wall:.2f} | {us(c.key, 'others_drain'):.2f} |"
        )
    peer_key, peer_rate = steady[fast_steady]
    budget = 2e6 / (TARGET * peer_rate)
    ours = min(
        us(c.key, "worker_steady_cpu")
        + us(c.key, "rabbit_steady_cpu")
        + us(c.key, "redis_steady_cpu")
        for c in configs
        if c.group == "baozi" and figs[c.key]
    )
    out += [
        "",
        f"CPU budget: {TARGET}x the faster peer's steady drain ({peer_key}, {peer_rate:,.0f}/s) "
        f"is {TARGET * peer_rate:,.0f}/s, which 2 cores allow only at up to {budget:,.0f} µs of "
        f"CPU per job (worker + RabbitMQ + Redis), even with nothing else running; baozi's "
        f"leanest config used {ours:,.0f} µs ({ours / budget:.1f}x the budget).",
    ]
    return out


if __name__ == "__main__":
    main()
