"""The change signal behind every blocking call: wakes on local and foreign changes, never misses one."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from baozi import Queue
from baozi.backends import _signal
from baozi.backends.sqlite import _db as sqlite_backend


def test_notify_wakes_a_waiter() -> None:
    signal = _signal.ChangeSignal()
    token = signal.token()
    threading.Timer(0.05, signal.notify).start()
    assert signal.wait(token, 10) is True


def test_a_change_before_the_wait_is_not_missed() -> None:
    signal = _signal.ChangeSignal()
    token = signal.token()
    signal.notify()
    assert signal.wait(token, 0) is True


def test_a_probe_change_wakes_a_waiter_without_any_notify() -> None:
    value = [0]
    signal = _signal.ChangeSignal(lambda: value[0])
    token = signal.token()
    threading.Timer(0.05, lambda: value.__setitem__(0, 1)).start()
    assert signal.wait(token, 10) is True
    token = signal.token()
    assert signal.wait(token, 0.05) is False  # and nothing more after that


def test_close_releases_at_once_without_a_poller_and_later_with_one() -> None:
    released: list[str] = []
    idle = _signal.ChangeSignal(lambda: 0)
    idle.close(lambda: released.append("idle"))
    assert released == ["idle"]
    busy = _signal.ChangeSignal(lambda: 0)
    busy.wait(busy.token(), 0.02)  # starts the poller
    busy.close(lambda: released.append("busy"))
    deadline = time.monotonic() + 5
    while "busy" not in released and time.monotonic() < deadline:
        time.sleep(0.01)
    assert released == ["idle", "busy"]


@pytest.mark.parametrize("watch", [True, False], ids=["inotify", "polling"])
def test_sqlite_waiters_wake_on_a_commit_by_another_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: bool
) -> None:
    if not watch:
        monkeypatch.setattr(sqlite_backend, "_watch", lambda path: None)
    elif sqlite_backend._watch(str(tmp_path / "probe.db")) is None:
        pytest.skip("inotify is not available here")
    path = tmp_path / "q.db"
    with Queue("q", url=f"sqlite:///{path}") as q:
        q.put("warm-up")
        q.get()
        q.task_done()

        def foreign_put() -> None:  # as another process would: its own connection, no local notify
            with sqlite3.connect(path) as conn:
                qid = conn.execute("SELECT id FROM baozi_queues WHERE name='q'").fetchone()[0]
                conn.execute(
                    "INSERT INTO baozi_items (qid, state, priority, seq, payload) "
                    "VALUES (?, 0, 0, 0, ?)",
                    (qid, b'"foreign"'),
                )
            conn.close()

        threading.Timer(0.2, foreign_put).start()
        start = time.monotonic()
        assert q.get(timeout=20) == "foreign"
        assert time.monotonic() - start < 10


def test_a_closed_sqlite_store_handle_refuses_use(tmp_path: Path) -> None:
    from baozi.backends import open_store

    store = open_store(f"sqlite:///{tmp_path}/s.db")
    store.close()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.counts("q")


def test_the_last_handle_to_close_lets_go_of_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    a, b = Queue("q", url=url), Queue("q", url=url)
    key = (f"{tmp_path}/s.db", "process")
    assert key in sqlite_backend._DATABASES
    a.close()
    assert key in sqlite_backend._DATABASES
    b.close()
    assert key not in sqlite_backend._DATABASES
