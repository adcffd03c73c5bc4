"""Helpers shared by the job and worker tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from baozi import App, Queue, Worker
from baozi._renewer import renewer


def abandon(q: Queue) -> None:
    """Stop renewing the leases of what ``q`` got, and forget them, as if its process had died:
    they run out, and its ``close()`` puts nothing back."""
    with q._lock:
        ids = list(q._leased)
        q._leased.clear()
        q._unfinished.clear()
        q._by_thread.clear()
    renewer().unregister(q._leases, *ids)


@contextmanager
def working(app: App, **options: object) -> Iterator[Worker]:
    """A worker running in a background thread for the duration of the block, closed after."""
    worker = Worker(app, **options)  # type: ignore[arg-type]
    worker.start()
    try:
        yield worker
    finally:
        worker.close()
        assert worker.join(60)


def wait_for(predicate: Callable[[], object], timeout: float = 30) -> None:
    """Poll a condition that no event announces (a count in the store), up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
