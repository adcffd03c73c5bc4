"""Kill storm: SIGKILL worker processes of every pool kind while they drain a queue of jobs, then
check that no job was lost and that the only jobs that ran twice are jobs a killed worker held.

    python bench/killstorm.py                          # SQLite and Redis: 10,000 jobs, 100 kills each
    python bench/killstorm.py --store postgres         # PostgreSQL (--postgres URL), the same run
    python bench/killstorm.py --store all              # SQLite, Redis and PostgreSQL
    python bench/killstorm.py --store redis --jobs 500 --kills 10 --out ''   # a quick run

Per store, one ``baozi worker -p 2`` supervisor per pool kind (thread, process, async, gevent) serves
a queue of its own; the storm kills one of their worker processes (never a supervisor, which starts
another) every ``--interval`` seconds, round robin over the kinds that still have jobs, until it has
killed ``--kills``. Every run of a job first appends "job pid parent-pid" to a file, so a job that
ran twice can be traced to the processes that ran it: a repeat is expected only when the earlier
runs were in killed workers (or in their process-pool children). Exit status 1 when a job is lost,
a job ran twice otherwise, a worker printed a traceback, fewer kills landed than asked, or the
queues did not drain within ``--time-limit``.

Each run works in a store of its own and removes it afterwards: a SQLite file in a temporary
folder, a Redis key prefix (``--prefix``, default a new one), a PostgreSQL schema (``--schema``,
default a new one; dropped with everything in it).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import killstorm_app

import baozi

BENCH = Path(__file__).resolve().parent
REDIS = "redis://127.0.0.1:6379/15"  # the default of --redis
POSTGRES = os.environ.get("BAOZI_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
"""The default of --postgres: the test suite's server and database."""
STORES = {"sqlite": ["sqlite"], "redis": ["redis"], "postgres": ["postgres"]}
STORES |= {"both": ["sqlite", "redis"], "all": ["sqlite", "redis", "postgres"]}
SLOTS = {"thread": 4, "process": 2, "async": 8, "gevent": 8}


@dataclass
class Outcome:
    store: str
    jobs: int
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    expected: int = 0  # duplicates whose earlier runs were all in killed workers
    most_runs: int = 0  # of any one job
    tracebacks: int = 0
    orphaned_forkservers: int = 0  # see _is_orphaned_forkserver
    seconds: float = 0.0
    drained: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- processes ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _live_children(
    app: baozi.App, supervisors: dict[str, subprocess.Popen[bytes]]
) -> dict[str, list[int]]:
    """The worker processes (heartbeating, alive, children of our supervisors) of each kind."""
    found: dict[str, list[int]] = {kind: [] for kind in supervisors}
    for info in app.store.workers():
        sup = supervisors.get(info.pool)
        stat = _stat(info.pid)
        if sup is not None and stat is not None and stat[0] not in "ZX" and stat[1] == sup.pid:
            found[info.pool].append(info.pid)
    return found


def _start_supervisors(env: dict[str, str], logs: Path) -> dict[str, subprocess.Popen[bytes]]:
    supervisors = {}
    for kind in killstorm_app.KINDS:
        command = [sys.executable, "-m", "baozi", "worker", "killstorm_app:app", "-q"]
        command += ["-P", kind, "-p", "2", "-c", str(SLOTS[kind]), "-Q", kind]
        err = (logs / f"{kind}.stderr").open("wb")
        supervisors[kind] = subprocess.Popen(
            command, cwd=BENCH, env=env, stderr=err, start_new_session=True
        )
        err.close()
    return supervisors


def _stop(supervisors: dict[str, subprocess.Popen[bytes]]) -> None:
    for sup in supervisors.values():
        if sup.poll() is None:
            sup.send_signal(signal.SIGTERM)
    for sup in supervisors.values():
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)  # its own session: only what it started
            sup.wait(10)


# -- the storm ---------------------------------------------------------------------------------


def _remaining(app: baozi.App) -> dict[str, int]:
    return {kind: app.store.counts(kind).total for kind in killstorm_app.KINDS}


def _storm(
    app: baozi.App,
    supervisors: dict[str, subprocess.Popen[bytes]],
    args: argparse.Namespace,
    out: Outcome,
    deadline: float,
) -> set[int]:
    """Kill worker processes until ``args.kills`` died or the jobs ran out; return their pids."""
    killed: set[int] = set()
    rng = random.Random(args.seed)
    turn = 0
    while len(killed) < args.kills and time.monotonic() < deadline:
        time.sleep(args.interval)
        busy = [kind for kind, left in _remaining(app).items() if left]
        if not busy:
            break
        live = _live_children(app, supervisors)
        for k in range(len(busy)):  # round robin; a kind whose workers are all booting is skipped
            kind = busy[(turn + k) % len(busy)]
            if live[kind]:
                pid = rng.choice(live[kind])
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                out.kills[kind] += 1
                turn += k + 1
                break
    return killed


def _drain(app: baozi.App, deadline: float) -> bool:
    """Wait until every job is settled (none ready, scheduled or leased); whether they were."""
    while time.monotonic() < deadline:
        if not any(_remaining(app).values()):
            return True
        time.sleep(0.2)
    return False


# -- the verdict -------------------------------------------------------------------------------


def _judge(
    app: baozi.App, jobs: list[baozi.Job], runlog: Path, killed: set[int], out: Outcome
) -> None:
    runs: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    for line in runlog.read_text().splitlines() if runlog.exists() else []:
        n, pid, parent = (int(x) for x in line.split())
        runs[n].append((pid, parent))
    out.runs = sum(len(r) for r in runs.values())
    out.most_runs = max((len(r) for r in runs.values()), default=0)
    statuses: dict[str, str] = {}
    for i in range(0, len(jobs), 1000):
        statuses.update(app.store.statuses([j.id for j in jobs[i : i + 1000]]))
    for n, job in enumerate(jobs):
        if statuses.get(job.id) != "succeeded" or not runs[n]:
            out.lost += 1
        elif len(runs[n]) > 1:
            out.duplicated += 1
            in_killed = sum(pid in killed or parent in killed for pid, parent in runs[n])
            out.expected += in_killed >= len(runs[n]) - 1
    if out.lost:
        out.problems.append(f"{out.lost} job(s) lost")
    if out.duplicated > out.expected:
        out.problems.append(
            f"{out.duplicated - out.expected} job(s) ran twice outside a killed worker"
        )


def _traceback_blocks(text: str) -> list[str]:
    """Each traceback in a log: its header, its indented frames and the exception line."""
    blocks: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last):"):
            continue
        block = [line]
        for more in lines[i + 1 :]:
            block.append(more)
            if more and not more.startswith(" "):
                break
        blocks.append("\n".join(block))
    return blocks


def _is_orphaned_forkserver(block: str) -> bool:
    # The stdlib forkserver of a worker process that was SIGKILLed while asking it for a child:
    # the request socket closes half-read, the forkserver prints this and exits with its owner.
    # No job passes through it; every other traceback fails the run.
    return (
        "multiprocessing/forkserver.py" in block
        and "recvfds" in block
        and block.rstrip().endswith("EOFError")
    )


def _count_tracebacks(logs: Path, out: Outcome) -> None:
    for err in sorted(logs.glob("*.stderr")):
        text = err.read_text(errors="replace")
        for block in _traceback_blocks(text):
            if _is_orphaned_forkserver(block):
                out.orphaned_forkservers += 1
            else:
                out.tracebacks += 1
        if "Traceback" in text:
            print(f"--- {err.name}\n{text[-3000:]}", file=sys.stderr)
    if out.tracebacks:
        out.problems.append(f"{out.tracebacks} traceback(s) printed by the workers")


def _store_url(store: str, tmp: Path, args: argparse.Namespace) -> str:
    if store == "sqlite":
        return f"sqlite:///{tmp / 'storm.db'}"
    if store == "postgres":
        schema = args.schema or "killstorm_" + uuid.uuid4().hex[:12]
        return f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    return f"{args.redis}?prefix={args.prefix or 'killstorm-' + uuid.uuid4().hex[:12]}"


def _drop_redis(url: str) -> None:
    import redis

    server, prefix = url.rsplit("?prefix=", 1)
    client = redis.Redis.from_url(server)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])
    client.close()


def _drop_postgres(url: str) -> None:
    import psycopg
    from psycopg import sql

    server, schema = url.rsplit("schema=", 1)
    with psycopg.connect(server.rstrip("?&"), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET lock_timeout = '30s'")  # the workers are stopped; nothing should hold one
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run_storm(store: str, args: argparse.Namespace) -> Outcome:
    out = Outcome(store, args.jobs)
    with tempfile.TemporaryDirectory(prefix="killstorm-") as name:
        tmp = Path(name)
        url, runlog = _store_url(store, tmp, args), tmp / "runs.txt"
        env = {
            **os.environ,
            "KILLSTORM_URL": url,
            "KILLSTORM_LEASE": str(args.lease),
            "KILLSTORM_LOG": str(runlog),
            "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")]),
        }
        app = baozi.App(url, lease=args.lease)
        tasks = [app.task(name=t.name, queue=t.queue)(t.fn) for t in killstorm_app.TASKS.values()]
        try:
            started = time.monotonic()
            deadline = started + args.time_limit
            per_kind = [range(k, args.jobs, len(tasks)) for k in range(len(tasks))]
            by_n: dict[int, baozi.Job] = {}
            for task, ns in zip(tasks, per_kind, strict=True):
                by_n.update(zip(ns, task.map([(n, args.work) for n in ns]), strict=True))
            jobs = [by_n[n] for n in range(args.jobs)]
            supervisors = _start_supervisors(env, tmp)
            try:
                killed = _storm(app, supervisors, args, out, deadline)
                out.drained = _drain(app, deadline)
            finally:
                _stop(supervisors)
            out.seconds = time.monotonic() - started
            _judge(app, jobs, runlog, killed, out)
            _count_tracebacks(tmp, out)
        finally:
            app.store.close()
            if store == "redis":
                _drop_redis(url)
            elif store == "postgres":
                _drop_postgres(url)
    kills = sum(out.kills.values())
    if kills < args.kills:
        out.problems.append(f"only {kills} of {args.kills} kills landed before the jobs ran out")
    if not out.drained:
        out.problems.append(f"the queues did not drain within {args.time_limit:.0f} s")
    return out


# -- the report --------------------------------------------------------------------------------


def _server_versions(stores: list[str], args: argparse.Namespace) -> str:
    """The servers the run used, with their versions (what the table's figures depend on)."""
    said = []
    if "redis" in stores:
        try:
            import redis

            version = redis.Redis.from_url(args.redis).info("server")["redis_version"]
            said.append(f"Redis {version}")
        except Exception as exc:  # noqa: BLE001 -- the machine line only says it is unknown
            said.append(f"Redis unknown ({exc})")
    if "postgres" in stores:
        try:
            import psycopg

            with psycopg.connect(args.postgres, connect_timeout=5) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            said.append(f"PostgreSQL {row[0] if row else 'unknown'}")
        except Exception as exc:  # noqa: BLE001 -- as above
            said.append(f"PostgreSQL unknown ({exc})")
    return ", ".join(said) + " on 127.0.0.1; " if said else ""


def _machine(stores: list[str], args: argparse.Namespace) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem = next(
        (
            int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    servers = _server_versions(stores, args)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (shared with other work while it ran)",
        f"- memory: {mem:,} MiB; {platform.platform()}",
        f"- Python {platform.python_version()}; {servers}baozi at {commit or 'unknown'}",
    ]


def report(results: list[Outcome], args: argparse.Namespace) -> str:
    head = "| store | jobs | kills (thread/process/async/gevent) | runs | lost | duplicated | of them held by killed workers | most runs of a job | tracebacks | wall time | verdict |"
    rows = [head, "|" + "---|" * 11]
    for r in results:
        by_kind = "/".join(str(r.kills[k]) for k in killstorm_app.KINDS)
        verdict = "pass" if r.ok else "FAIL: " + "; ".join(r.problems)
        tracebacks = str(r.tracebacks)
        if r.orphaned_forkservers:
            tracebacks += f" (+{r.orphaned_forkservers} from the forkserver of a killed process)"
        rows.append(
            f"| {r.store} | {r.jobs:,} | {sum(r.kills.values())} ({by_kind}) | {r.runs:,} | "
            f"{r.lost} | {r.duplicated} | {r.expected} | {r.most_runs} | {tracebacks} | {r.seconds:.1f} s | {verdict} |"
        )
    settings = (
        f"Each store: one `baozi worker -p 2` per pool kind (slots {SLOTS}), its own queue, "
        f"{args.jobs:,} jobs of {args.work} s (max_deliveries={killstorm_app.MAX_DELIVERIES}), "
        f"App(lease={args.lease}), a SIGKILL of a worker "
        f"process every {args.interval} s. Command: `python bench/killstorm.py "
        + " ".join(sys.argv[1:])
        + "`"
    )
    machine = _machine([r.store for r in results], args)
    return "\n".join(["# Kill storm", "", settings, "", *rows, "", "Machine:", *machine, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store",
        choices=list(STORES),
        default="both",
        help="sqlite, redis, postgres; both = sqlite and redis; all = the three",
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.15, help="seconds between kills")
    parser.add_argument("--work", type=float, default=0.05, help="seconds each job works")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds, per store")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--redis", default=REDIS, help="the Redis server and database to use")
    parser.add_argument("--prefix", default="", help="its key prefix (default: a new one)")
    parser.add_argument(
        "--postgres", default=POSTGRES, help="the PostgreSQL server and database to use"
    )
    parser.add_argument(
        "--schema", default="", help="its schema, dropped afterwards (default: a new one)"
    )
    parser.add_argument(
        "--out",
        default=str(BENCH / "results" / time.strftime("killstorm-%Y%m%d-%H%M.md")),
        help="where to write the table ('' for nowhere)",
    )
    args = parser.parse_args(argv)
    stores = STORES[args.store]
    results = []
    for store in stores:
        print(f"kill storm on {store}: {args.jobs:,} jobs, {args.kills} kills", flush=True)
        results.append(run_storm(store, args))
    text = report(results, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
