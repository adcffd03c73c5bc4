"""A RabbitMQ node of a test's own, on free loopback ports and in a folder of its own: to kill
(SIGKILL, as a crash would) and start again on the same data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pika
import psutil

from baozi.amqp._pika import quiet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def missing() -> str | None:
    """Why no private node can run here, or None."""
    if shutil.which("rabbitmq-server") is None:
        return "rabbitmq-server is not installed"
    return None


class PrivateRabbit:
    """``rabbitmq-server`` run as a node named for this test, with no plugins, listening on a
    free loopback port. The server script runs the node as the ``rabbitmq`` user, so its folder
    is that user's; the node runs in a session of its own, so it is stopped by walking the
    process tree this object started, never by name."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="baozi-rabbit-"))
        self.port = _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.node = f"baozi-{os.getpid()}-{self.port}@localhost"
        (self.folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.folder / "plugins").write_text("[].\n")
        (self.folder / "env.conf").write_text("")
        shutil.chown(self.folder, "rabbitmq", "rabbitmq")
        for child in self.folder.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.folder / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.folder / "plugins-expand"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            cwd=self.folder,
            env=self.env,
            stdout=(self.folder / "out.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with quiet():  # pika's ERROR lines for each refused attempt
                    pika.BlockingConnection(pika.URLParameters(self.url)).close()
                return
            except Exception:  # noqa: BLE001 -- not up yet
                failed = self.process.poll() is not None or time.monotonic() > deadline
            if failed:
                log = (self.folder / "out.log").read_text(errors="replace")[-2000:]
                self.kill()
                raise AssertionError(f"the private RabbitMQ node did not start:\n{log}")
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the node as its service manager would (SIGTERM: a clean shutdown)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        beams = [p for p in root.children(recursive=True) if p.name() == "beam.smp"]
        for beam in beams:
            beam.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # what did not stop by itself

    def eval(self, expression: str) -> str:
        """Run an Erlang expression on the node (``rabbitmqctl eval``), as its operator can."""
        done = subprocess.run(
            ["rabbitmqctl", "-n", self.node, "eval", expression],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def kill(self) -> None:
        """SIGKILL the node and everything it started, as a crash would."""
        if self.process is None:
            return
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for proc in tree:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=10)
        self.process.wait(10)
        self.process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
