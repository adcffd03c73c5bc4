"""What bench/pg_position.py and bench/pg_contention.py share: the server, a schema of the run's
own (``pgh_<what>_<pid>``, dropped afterwards, and nothing else is ever dropped), the machine
line of the report, percentiles."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

DSN = os.environ.get("BENCH_PG_DSN", "postgresql://root@127.0.0.1:5432/test")
PREFIX = "pgh_"
HERE = Path(__file__).resolve().parent
SETTINGS = ("shared_buffers", "synchronous_commit", "fsync", "autovacuum", "max_connections")


def connect(dsn: str = DSN, **kwargs: object) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, **kwargs)


@contextlib.contextmanager
def schema(what: str, dsn: str = DSN) -> Iterator[str]:
    """A schema name of this run's own; the schema (made by the store on first use) is dropped
    with everything in it when the block ends, however it ends."""
    name = f"{PREFIX}{what}_{os.getpid()}"
    try:
        yield name
    finally:
        drop(name, dsn)


def drop(name: str, dsn: str = DSN) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"not a schema of these benchmarks: {name}")
    with connect(dsn) as conn:
        conn.execute("SET lock_timeout = '60s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def url(name: str, dsn: str = DSN, **params: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={name}{extra}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--", "../src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + (" (with uncommitted changes in src/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(dsn: str = DSN) -> str:
    """One paragraph: the machine, the server and its settings, the code, the load average."""
    with connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = ", ".join(f"{k} {conn.execute(f'SHOW {k}').fetchone()[0]}" for k in SETTINGS)
    where = dsn.rsplit("@", 1)[-1]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} cores ({_cpu_model()}), {_memory_gib():.0f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}, psycopg {psycopg.__version__} "
        f"({psycopg.pq.__impl__}). PostgreSQL {version} at {where} on this machine ({settings}). "
        f"baozi at commit {revision()}. Load average (1, 5, 15 min) when the report was written: "
        f"{load} (2 cores: anything else running shares them)."
    )


def pct(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
