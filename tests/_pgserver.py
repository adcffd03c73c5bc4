"""A PostgreSQL cluster of a test's own, on a free loopback port: to stop, restart and kill.

``initdb`` refuses to run as root, and so does ``postgres``: when the tests run as root, both run
as the ``postgres`` OS user (``Popen(user=...)``: a plain setuid in the child before exec, so the
postmaster is our own child and ``kill()`` reaches it directly), in a folder of their own under
the system's temporary directory (pytest's ``tmp_path`` is private to root).

Start-up is kept fast: each process runs ``initdb`` once (about a second) into a template, and
every cluster starts from a copy of it (a fifth of a second, then some 50 ms until it answers).
The server listens on 127.0.0.1 alone (no Unix socket), trusts every local connection and runs
with ``fsync=off``: a killed postmaster loses nothing it committed (the writes are in the kernel
already), only a crash of the machine would.

A cluster never outlives its test: the fixture closes it however the test ends; a cluster
started from the main thread gets SIGKILL from the kernel when that thread dies (even by
SIGKILL, when no teardown runs); and whatever is still running at interpreter exit is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

SUPERUSER = "postgres"
"""The cluster's superuser; trust authentication, so no password."""

_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP alone: nothing in /var/run/postgresql to collide with
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "logging_collector": "off",
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def initdb_path() -> Path | None:
    """The ``initdb`` to use: /usr/local/bin/initdb, else the one on PATH, else Debian's newest."""
    candidates = ["/usr/local/bin/initdb", shutil.which("initdb")]
    debian = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates += sorted(debian, key=lambda p: _version(p.split("/")[-3]), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def missing() -> str | None:
    """Why no private cluster can run here (None when one can)."""
    initdb = initdb_path()
    if initdb is None:
        return "PostgreSQL's initdb is not installed (looked in /usr/local/bin, PATH, /usr/lib/postgresql)"
    if not (Path(os.path.realpath(initdb)).parent / "postgres").exists():
        return f"no postgres binary beside {os.path.realpath(initdb)}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres OS user to run initdb as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


# -- the OS user the cluster runs as, and the template every cluster is copied from -------------


def _owner() -> tuple[int, int] | None:
    """The (uid, gid) to run as when we are root; None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _as_owner() -> dict[str, Any]:
    """Popen's keywords to run a command as the cluster's owner."""
    owner = _owner()
    if owner is None:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}


def _folder(prefix: str) -> Path:
    """A new folder under the system's temporary directory, the owner's own."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    owner = _owner()
    if owner is not None:
        os.chown(path, *owner)
    return path


_template_lock = threading.Lock()
_template: Path | None = None


def _template_data() -> Path:
    """This process's initdb'd data directory, made on first use, removed at exit."""
    global _template
    with _template_lock:
        if _template is None:
            folder = _folder("baozi-pg-template-")
            atexit.register(shutil.rmtree, folder, True)
            data = folder / "data"
            initdb = initdb_path()
            assert initdb is not None, missing()
            done = subprocess.run(
                [str(initdb), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
                + ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                capture_output=True,
                text=True,
                cwd=folder,
                **_as_owner(),
            )
            assert done.returncode == 0, f"initdb failed:\n{done.stdout}\n{done.stderr}"
            _template = data
        return _template


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True)  # copystat keeps the 0700 postgres demands
    owner = _owner()
    if owner is None:
        return
    os.chown(target, *owner)
    for root, dirs, files in os.walk(target):
        for name in dirs + files:
            os.chown(os.path.join(root, name), *owner, follow_symlinks=False)


# -- the kernel's help when the test process dies without a teardown ---------------------------

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl  # resolved here, so the child calls it without loading anything


def _die_with_parent() -> None:
    """In the child, after Popen's setuid (a change of user would clear it): SIGKILL when the
    thread that started us ends, be it by a test process killed outright."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_live: set[PrivatePostgres] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        server.close()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """A process's state letter, parent pid and start time (clock ticks after boot); None when
    it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def process_tree(postmaster: int) -> dict[int, int]:
    """The postmaster and its children (backends, checkpointer, ...): pid -> start time. Each
    child makes a session of its own (setsid), so the parent pid is what ties them together."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and (int(entry) == postmaster or stat[1] == postmaster):
                found[int(entry)] = stat[2]
    return found


def still_running(tree: dict[int, int]) -> list[int]:
    """Those of ``tree``'s processes still alive (a zombie, or a new process that was given a
    pid again, does not count)."""
    alive = []
    for pid, started in tree.items():
        stat = _stat(pid)
        if stat is not None and stat[0] not in "ZX" and stat[2] == started:
            alive.append(pid)
    return alive


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port of 127.0.0.1, trust authentication.

    ``start()`` (again after ``stop()`` or ``kill()``: same port, same data), ``stop()`` (a fast
    shutdown, as a service manager does), ``restart()``, ``kill()`` (SIGKILL to the postmaster,
    then its children notice and leave), ``close()`` (kill and remove everything; also the end
    of a ``with`` block). ``url(schema)`` is a baozi store URL on it, ``dsn`` a plain libpq one.
    """

    def __init__(self, **settings: object) -> None:
        """``settings`` are server settings over the defaults: ``PrivatePostgres(max_connections=
        10)``; ``self.settings`` may be changed before a ``start()``."""
        self.settings = {**_SETTINGS, **{k: str(v) for k, v in settings.items()}}
        self.folder = _folder("baozi-pg-")
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None  # the last start(), until it answered
        self._copied = False
        _live.add(self)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def url(self, schema: str = "baozi", **params: object) -> str:
        """A baozi store URL on this cluster: ``url("faults", retry=0.5)``."""
        query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **params}.items())
        return f"{self.dsn}?{query}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster (on the first call, from a copy of the template) and return once
        it accepts connections; crash recovery after a ``kill()`` is part of the wait."""
        import psycopg

        assert not self.running, "the private PostgreSQL is already running"
        began = time.monotonic()
        if not self._copied:
            _copy_tree(_template_data(), self.data)
            self._copied = True
        postgres = Path(os.path.realpath(initdb_path() or "initdb")).parent / "postgres"
        command = [str(postgres), "-D", str(self.data), "-p", str(self.port)]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        main = threading.current_thread() is threading.main_thread()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.folder,
                start_new_session=True,  # a Ctrl-C meant for pytest does not stop it
                preexec_fn=_die_with_parent if main else None,
                **_as_owner(),
            )
        deadline = began + timeout
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the private PostgreSQL exited:\n{self.log_tail()}"
                    ) from None
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"the private PostgreSQL did not answer:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.01)
        self.startup_seconds = time.monotonic() - began

    def stop(self, timeout: float = 30.0) -> None:
        """A fast shutdown (SIGINT): clients are disconnected, a checkpoint is written."""
        if not self.running:
            return
        assert self.process is not None
        tree = process_tree(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._wait_for(tree)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; return once its children have noticed and
        left, so that ``start()`` can reuse the data directory (it does crash recovery)."""
        if self.process is None:
            return
        tree = process_tree(self.process.pid) if self.process.poll() is None else {}
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._wait_for(tree)

    def processes(self) -> dict[int, int]:
        """The running cluster's processes, the postmaster and its children: pid -> start time
        (for ``still_running``)."""
        return process_tree(self.process.pid) if self.running and self.process else {}

    @staticmethod
    def _wait_for(tree: dict[int, int], grace: float = 5.0) -> None:
        """Each backend and helper leaves on its own once the postmaster is gone (it watches
        for that); any still there after ``grace`` seconds is killed."""
        deadline = time.monotonic() + grace
        while left := still_running(tree):
            if time.monotonic() > deadline:
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10  # after SIGKILL, only the reaping is left
            time.sleep(0.01)

    def close(self) -> None:
        """Kill the cluster and remove its files. Safe to call twice."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            _live.discard(self)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg connection (autocommit) to the cluster's ``postgres`` database."""
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, **kwargs)
