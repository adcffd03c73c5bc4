"""The fault tests' private PostgreSQL cluster (tests/_pgserver.py): it starts, restarts and dies
on demand, keeps what was committed, and never outlives its test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._helpers import wait_for
from ._pgserver import PrivatePostgres, process_tree, still_running
from .conftest import private_postgres_or_skip

ROOT = Path(__file__).resolve().parent.parent


def _refused(server: PrivatePostgres) -> bool:
    import psycopg

    try:
        psycopg.connect(server.dsn, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_private_cluster_restarts_and_survives_a_kill_with_what_it_committed(
    private_postgres: PrivatePostgres,
) -> None:
    server = private_postgres
    assert server.startup_seconds is not None and server.startup_seconds < 10
    with server.connect() as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (1)")
        assert conn.info.port == server.port and conn.info.host == "127.0.0.1"

    server.restart()
    with server.connect() as conn:
        conn.execute("INSERT INTO kept VALUES (2)")
        assert conn.info.backend_pid in server.processes()  # so kill() waits for it

    cluster = server.processes()
    assert len(cluster) >= 4  # the postmaster, its checkpointer, writers and launcher
    server.kill()
    assert not server.running
    assert still_running(cluster) == []  # its backends and helpers are gone too
    assert _refused(server)

    server.start()  # crash recovery, on the same port and data
    with server.connect() as conn:
        assert conn.execute("SELECT n FROM kept ORDER BY n").fetchall() == [(1,), (2,)]
        conn.execute("CREATE SCHEMA faults")  # what a store URL's ?schema= names
    assert server.url("faults", retry=0.5) == f"{server.dsn}?schema=faults&retry=0.5"


def test_a_cluster_is_gone_when_its_block_fails() -> None:
    private_postgres_or_skip()
    with pytest.raises(RuntimeError, match="the test failed"):
        with PrivatePostgres() as server:
            with server.connect() as conn:
                conn.execute("SELECT 1")
                cluster, folder = server.processes(), server.folder
            raise RuntimeError("the test failed")
    assert cluster and still_running(cluster) == []
    assert not folder.exists()
    assert _refused(server)


_ORPHAN = """
import sys, time
from tests._pgserver import PrivatePostgres, _template_data
server = PrivatePostgres()
server.start()
print(server.process.pid, server.folder, _template_data().parent, flush=True)
time.sleep(600)
"""


def test_a_cluster_dies_with_a_test_process_killed_outright() -> None:
    # No teardown, no atexit: the kernel's parent-death signal is what stops the postmaster.
    private_postgres_or_skip()
    owner = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    cluster: dict[int, int] = {}
    folders: list[str] = []
    try:
        assert owner.stdout is not None
        postmaster, *folders = owner.stdout.readline().split()
        cluster = process_tree(int(postmaster))
        assert len(cluster) >= 4
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        started = time.monotonic()
        wait_for(lambda: still_running(cluster) == [], timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        for pid in still_running(cluster):  # the signal failed: clean up anyway
            os.kill(pid, signal.SIGKILL)
        for folder in folders:  # what its atexit would have removed
            shutil.rmtree(folder, ignore_errors=True)
