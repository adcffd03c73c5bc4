"""A redis-server of a test's own, on a free loopback port: to kill, restart and reconfigure."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class PrivateRedis:
    """A redis-server of our own on a free loopback port, persisting every write to its AOF."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown save; what the AOF holds is what survives
        self.process.wait(10)

    def commands(self) -> int:
        """Commands the server has run, leaving out INFO itself."""
        import redis

        stats = redis.Redis(port=self.port).info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
