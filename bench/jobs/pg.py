"""The PostgreSQL side of the jobs benchmark: the server, one schema per measurement, and the CPU
the server spends.

Every PostgreSQL measurement gets a schema of its own, ``bench_pg_<system>_<pid>``, created (or
left for the system to create) before it and dropped with everything in it afterwards; the driver
also drops any ``bench_pg_*`` schema a killed measurement left behind, and nothing else.

CPU: the cluster's processes are the postmaster and its children (one backend per connection,
plus the background ones: WAL writer, checkpointer, autovacuum, ...). ``cluster_cpu()`` is the
user + system CPU of all of them, including children that have exited (the postmaster reaps them,
so the kernel adds their time to its "children" counters): a difference of two samples is
everything the server spent between them, connections opened and closed in between included,
but also whatever any other client of the server did. Our own share is the CPU of the backends
serving the TCP connections of the measured client processes (matched by the client port in each
backend's process title); the other clients' backends are summed apart, so that a busy neighbour
shows in the report instead of in our figures.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:  # imported when used: measure.py loads this module for every config,
    import psycopg  # also in an environment without psycopg (celery's, see jobs_bench.py)

PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://root@127.0.0.1:5432/test")
SCHEMA_PREFIX = "bench_pg_"
# The settings the report lists: those that decide what a commit costs, and the server's size.
SETTINGS = (
    "synchronous_commit",
    "fsync",
    "wal_level",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
    "autovacuum",
)
_PORT = re.compile(r"\((\d+)\)")  # "postgres: root test 127.0.0.1(54321) idle"


def connect() -> psycopg.Connection:
    import psycopg

    return psycopg.connect(PG_DSN, autocommit=True)


def schema_name(system: str) -> str:
    """A schema for one measurement of ``system``: unique per measurement process."""
    return f"{SCHEMA_PREFIX}{re.sub(r'[^a-z0-9]+', '_', system.lower())}_{os.getpid()}"


def create_schema(name: str) -> None:
    with connect() as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def drop_schema(name: str) -> None:
    """DROP SCHEMA ... CASCADE: the system's tables, types, functions and triggers with it."""
    if not name.startswith(SCHEMA_PREFIX):
        raise ValueError(f"not a benchmark schema: {name}")
    with connect() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def drop_leftovers() -> list[str]:
    """Drop every ``bench_pg_*`` schema (a measurement killed before its own cleanup)."""
    with connect() as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                (SCHEMA_PREFIX.replace("_", r"\_") + "%",),
            )
        ]
    for name in names:
        drop_schema(name)
    return names


def wait_for_room(need: int, timeout: float = 120.0) -> float:
    """Wait until the server has ``need`` connection slots free (another client of a shared
    server may hold most of them); the seconds waited (``timeout`` at most)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with connect() as conn:
                free = conn.execute(
                    "SELECT current_setting('max_connections')::int"
                    " - current_setting('superuser_reserved_connections')::int"
                    " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
                ).fetchone()[0]
            if free >= need:
                break
        except Exception as exc:  # psycopg.OperationalError: too many clients already
            if type(exc).__name__ != "OperationalError":
                raise
        time.sleep(1.0)
    return time.monotonic() - t0


def server() -> dict[str, str]:
    """The server's version and the settings the report lists."""
    with connect() as conn:
        info = {"version": conn.execute("SHOW server_version").fetchone()[0]}
        for name in SETTINGS:
            info[name] = conn.execute(f"SHOW {name}").fetchone()[0]
        info["postmaster_pid"] = str(postmaster(conn).pid)
    return info


def postmaster(conn: psycopg.Connection | None = None) -> psutil.Process:
    """The cluster's postmaster: the parent of the backend serving a connection of ours."""
    if conn is None:
        with connect() as c:
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            return psutil.Process(pid).parent()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return psutil.Process(pid).parent()


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def cluster_cpu(master: psutil.Process) -> float:
    """CPU seconds of the whole cluster so far: the postmaster, its live children and (through
    the postmaster's children counters) every child it has reaped."""
    t = master.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in master.children():
        try:
            total += _cpu(child)
        except psutil.NoSuchProcess:
            pass  # exited since: its time is in the postmaster's children counters now
    return total


def client_ports(pids: Iterable[int]) -> set[int]:
    """Local ports of the TCP connections to the server held by these processes and their
    children (a worker's pool processes)."""
    from psycopg.conninfo import conninfo_to_dict

    port = int(conninfo_to_dict(PG_DSN).get("port") or 5432)
    seen: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            seen[pid] = root
            seen.update((c.pid, c) for c in root.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    ports = set()
    for proc in seen.values():
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ports.update(c.laddr.port for c in conns if c.raddr and c.raddr.port == port)
    return ports


def backends(master: psutil.Process) -> dict[int, tuple[int, float]]:
    """Every client backend of the cluster: pid -> (client port, CPU seconds so far)."""
    out = {}
    for child in master.children():
        try:
            m = _PORT.search(" ".join(child.cmdline()))
            if m:
                out[child.pid] = (int(m.group(1)), _cpu(child))
        except psutil.NoSuchProcess:
            pass
    return out


class Probe:
    """The server's CPU over one phase of a measurement: ``start()`` before it, ``stop(pids)``
    at its end, while the client processes named still hold their connections. Three figures:
    the whole cluster; our backends (serving those processes); the other clients' backends that
    are alive at both ends (someone else's work on the same server, e.g. a test run)."""

    def __init__(self) -> None:
        self.master = postmaster()
        self.phases: dict[str, dict[str, float]] = {}
        self._open: dict[str, tuple[float, dict[int, tuple[int, float]]]] = {}

    def start(self, phase: str, pids: Iterable[int] = ()) -> None:
        self._open[phase] = (cluster_cpu(self.master), backends(self.master))

    def stop(self, phase: str, pids: Iterable[int]) -> None:
        if phase not in self._open:
            return  # never started (the worker never signalled its first job)
        total0, before = self._open.pop(phase)
        ports = client_ports(pids)
        after = backends(self.master)
        total1 = cluster_cpu(self.master)
        # A backend of ours born during the phase counts from zero (its start-up included).
        ours = {
            pid: cpu - before.get(pid, (0, 0.0))[1]
            for pid, (port, cpu) in after.items()
            if port in ports
        }
        others = [
            cpu - before[pid][1]
            for pid, (port, cpu) in after.items()
            if port not in ports and pid in before
        ]
        self.phases[phase] = {
            "cluster": total1 - total0,
            "ours": sum(ours.values()),
            "others": sum(others),
            "backends": len(ours),
        }

    def result(self, jobs: dict[str, int]) -> dict[str, float]:
        """Per-job microseconds for each phase measured: ``pg_<phase>_cluster_us``, ``_ours_us``,
        ``_others_us`` (and ``_backends``, how many backends were ours at its end)."""
        out: dict[str, float] = {}
        for phase, got in self.phases.items():
            n = jobs.get(phase, 0)
            if not n:
                continue
            for what in ("cluster", "ours", "others"):
                out[f"pg_{phase}_{what}_us"] = got[what] / n * 1e6
            out[f"pg_{phase}_backends"] = got["backends"]
        return out


class NoProbe(Probe):
    """The probe of a configuration that does not run on PostgreSQL: measures nothing."""

    def __init__(self) -> None:
        self.phases = {}

    def start(self, phase: str, pids: Iterable[int] = ()) -> None:
        pass

    def stop(self, phase: str, pids: Iterable[int]) -> None:
        pass
