"""Locks, semaphores, events, conditions and shared dicts, on every store.

Tests that need several processes run on the stores processes can share (SQLite, Redis); the
in-memory store gets the same test with threads.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import baozi
from baozi import App
from baozi._renewer import renewer
from tests import _coordprocs

spawn = multiprocessing.get_context("spawn")


def _run_all(procs: list, timeout: float = 90) -> None:  # type: ignore[type-arg]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"child exited with {p.exitcode}"


def _parallel(url: str, target, args: tuple, n: int) -> None:  # type: ignore[no-untyped-def]
    """Run ``target(url, *args)`` n times at once: processes where the store is shared, threads
    for memory://."""
    if url.startswith("memory://"):
        threads = [threading.Thread(target=target, args=(url, *args)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
            assert not t.is_alive()
    else:
        _run_all([spawn.Process(target=target, args=(url, *args)) for _ in range(n)])


# -- Lock --------------------------------------------------------------------------------------


def test_eight_workers_count_to_1600_under_the_lock(url: str) -> None:
    _parallel(url, _coordprocs.count_under_lock, (200,), 8)
    assert App(url).dict("shared")["n"] == 1600


def test_the_lock_is_reentrant_for_its_thread(url: str) -> None:
    lock = App(url).lock("r")
    assert lock.acquire() and lock.acquire(blocking=False)
    assert lock.locked()
    lock.release()
    assert lock.locked()  # still held once
    other: list[bool] = []
    t = threading.Thread(target=lambda: other.append(lock.acquire(blocking=False)))
    t.start()
    t.join()
    assert other == [False]
    lock.release()
    assert not lock.locked()


def test_two_handles_with_one_name_are_one_lock(url: str) -> None:
    app = App(url)
    with app.lock("same"):
        got: list[bool] = []
        t = threading.Thread(target=lambda: got.append(app.lock("same").acquire(timeout=0.2)))
        t.start()
        t.join()
        assert got == [False]


def test_releasing_a_lock_not_held_raises_runtime_error(url: str) -> None:
    lock = App(url).lock("x")
    with pytest.raises(RuntimeError, match="un-acquired lock 'x'"):
        lock.release()
    lock.acquire()
    errors: list[BaseException] = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=release_elsewhere)
    t.start()
    t.join()
    assert len(errors) == 1 and lock.locked()
    lock.release()


def test_lock_arguments_follow_the_stdlib(url: str) -> None:
    lock = App(url).lock("args")
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="ttl"):
        App(url).lock("bad", ttl=0)
    with pytest.raises(TypeError, match="lock name"):
        App(url).lock("")  # type: ignore[arg-type]


def test_a_blocked_acquire_times_out_and_wakes_promptly_on_release(url: str) -> None:
    app = App(url)
    lock = app.lock("wake")
    lock.acquire()
    t0 = time.monotonic()
    woke: list[float] = []

    def waiter() -> None:
        assert not app.lock("wake").acquire(timeout=0.2)
        assert app.lock("wake").acquire(timeout=30)
        woke.append(time.monotonic())
        app.lock("wake").release()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    released = time.monotonic()
    lock.release()
    t.join(30)
    assert woke and woke[0] - released < 2.0  # a waiter's idle re-check is 5 s: this was a wake-up
    assert time.monotonic() - t0 >= 0.5


def test_a_live_holder_keeps_its_lock_past_the_ttl(url: str) -> None:
    app = App(url)
    lock = app.lock("renewed", ttl=1.0)
    with lock:
        time.sleep(3.0)  # three times its ttl: the renewer thread extends it all along
        got: list[bool] = []
        t = threading.Thread(target=lambda: got.append(app.lock("renewed").acquire(blocking=False)))
        t.start()
        t.join()
        assert got == [False]


def test_a_killed_holders_lock_frees_after_its_ttl(shared_url: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = spawn.Process(target=_coordprocs.hold_lock_forever, args=(shared_url, 1.0, str(ready)))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and child.is_alive()
            time.sleep(0.02)
        lock = App(shared_url).lock("doomed", ttl=1.0)
        time.sleep(1.5)  # renewed by the live holder all along
        assert not lock.acquire(blocking=False)
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        killed = time.monotonic()
        assert lock.acquire(timeout=10)
        assert time.monotonic() - killed <= 2.0  # within the ttl (1 s) and a renewal period
        lock.release()
    finally:
        child.kill()
        child.join()


# -- Semaphore ---------------------------------------------------------------------------------


def test_a_semaphore_of_three_never_has_more_than_three_holders(url: str) -> None:
    _parallel(url, _coordprocs.hold_semaphore, (5,), 10)
    with baozi.Queue("inside", url=url) as inside:  # closed: nothing left for the renewer
        seen = [inside.get_nowait() for _ in range(50)]
        inside.task_done(50)
    assert len(seen) == 50
    assert max(seen) <= 3
    assert max(seen) >= 2  # they did overlap: the bound was what held them back
    assert App(url).dict("stats")["inside"] == 0


def test_a_semaphore_released_too_often_raises_value_error(url: str) -> None:
    sem = App(url).semaphore("two", value=2)
    assert sem.acquire() and sem.acquire()
    assert not sem.acquire(blocking=False)
    assert not sem.acquire(timeout=0.1)
    assert sem.holders() == 2
    sem.release()
    sem.release()
    with pytest.raises(ValueError, match="released too many times"):
        sem.release()
    with pytest.raises(ValueError, match="positive int"):
        App(url).semaphore("bad", value=0)


def test_a_dead_holders_semaphore_slot_comes_back_after_its_ttl(url: str) -> None:
    store = App(url).store
    # A holder that died: its slot is in the store and nobody renews it.
    assert store.acquire_slot("sem:solo", "dead-process:1", 1, 0.3) is None
    sem = App(url).semaphore("solo", value=1)
    assert not sem.acquire(blocking=False)
    t0 = time.monotonic()
    assert sem.acquire(timeout=5)
    assert 0.1 < time.monotonic() - t0 < 2.0
    sem.release()


# -- Event -------------------------------------------------------------------------------------


def test_an_event_holds_every_waiter_until_set(url: str) -> None:
    app = App(url)
    light = app.event("green")
    assert not light.is_set()
    assert not light.wait(timeout=0.1)
    results: list[bool] = []
    waiters = [
        threading.Thread(target=lambda: results.append(app.event("green").wait(timeout=30)))
        for _ in range(4)
    ]
    for t in waiters:
        t.start()
    time.sleep(0.3)
    assert results == []
    set_at = time.monotonic()
    light.set()
    for t in waiters:
        t.join(30)
    assert results == [True] * 4
    assert time.monotonic() - set_at < 2.0
    assert light.is_set() and light.wait(0)
    light.clear()
    assert not light.is_set()


# -- Condition ---------------------------------------------------------------------------------


def test_notify_two_lets_exactly_two_of_five_waiters_through(url: str, tmp_path: Path) -> None:
    app = App(url)
    cond = app.condition("gate")
    outs = [tmp_path / f"w{i}" for i in range(5)]
    if url.startswith("memory://"):
        workers = [
            threading.Thread(target=_coordprocs.wait_on_condition, args=(url, str(o))) for o in outs
        ]
    else:
        workers = [
            spawn.Process(target=_coordprocs.wait_on_condition, args=(url, str(o))) for o in outs
        ]
    for w in workers:
        w.start()
    tickets = app.store
    deadline = time.monotonic() + 60
    while tickets.counts("baozi.cond.gate").ready < 5:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with cond:
        cond.notify(2)
    time.sleep(1.0)
    assert sorted(o.read_text() for o in outs if o.exists()) == ["notified", "notified"]
    with cond:
        cond.notify_all()
    for w in workers:
        w.join(30)
    assert [o.read_text() for o in outs] == ["notified"] * 5


def test_condition_wait_needs_the_lock_and_times_out(url: str) -> None:
    cond = App(url).condition("c")
    with pytest.raises(RuntimeError, match="un-acquired"):
        cond.wait(0.1)
    with pytest.raises(RuntimeError, match="un-acquired"):
        cond.notify()
    with cond:
        with cond:  # reentrant: wait releases every level and takes them all back
            assert not cond.wait(timeout=0.1)
        assert cond._lock._is_owned()
    assert App(url).store.counts("baozi.cond.c").ready == 0  # the timed-out ticket is gone


def test_wait_for_a_predicate(url: str) -> None:
    app = App(url)
    cond, state = app.condition("pred"), app.dict("state")
    state["ready"] = False

    def producer() -> None:
        time.sleep(0.2)
        with app.condition("pred") as _:
            state["ready"] = True
            app.condition("pred").notify_all()

    threading.Thread(target=producer).start()
    with cond:
        assert cond.wait_for(lambda: state["ready"], timeout=20) is True
        assert cond.wait_for(lambda: False, timeout=0.1) is False


# -- Dict --------------------------------------------------------------------------------------


def test_four_processes_incr_one_key_to_exactly_2000(url: str) -> None:
    _parallel(url, _coordprocs.incr_many, (500,), 4)
    assert baozi.Dict("counts", url=url)["hits"] == 2000


def test_dict_is_a_mutable_mapping(url: str) -> None:
    d = baozi.Dict("m", url=url)
    d["a"] = {"nested": [1, 2]}
    d[5] = "five"
    d[None] = 1.5
    assert d["a"] == {"nested": [1, 2]} and d[5] == "five" and d[None] == 1.5
    assert "a" in d and 5 in d and "5" not in d and (1, 2) not in d
    assert len(d) == 3
    assert sorted(map(str, d)) == ["5", "None", "a"]
    assert d.get("zz", "dflt") == "dflt"
    with pytest.raises(KeyError):
        d["zz"]
    with pytest.raises(KeyError):
        del d["zz"]
    assert d.setdefault("s", [1]) == [1]
    assert d.setdefault("s", [2]) == [1]
    assert d.pop("s") == [1] and d.pop("s", None) is None
    d.update({"x": 1, "y": 2})
    assert d.copy() == {"a": {"nested": [1, 2]}, 5: "five", None: 1.5, "x": 1, "y": 2}
    assert d.incr("x", 10) == 11 and d["x"] == 11
    assert d.incr("new") == 1
    with pytest.raises(TypeError, match="not a number"):
        d.incr("a")
    assert d["a"] == {"nested": [1, 2]}  # untouched
    with pytest.raises(TypeError, match="cannot be of type builtins.object"):
        d[object()] = 3
    with pytest.raises(TypeError, match="amount"):
        d.incr("x", "1")  # type: ignore[arg-type]
    d.clear()
    assert len(d) == 0 and d.copy() == {}
    assert baozi.Dict("other", url=url).copy() == {}


def test_a_dict_survives_reopening_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    d = baozi.Dict("kept", url=url)
    d["k"] = [1, "two"]
    d.incr("n", 3)
    d.close()
    again = baozi.Dict("kept", url=url)
    assert again.copy() == {"k": [1, "two"], "n": 3}


def test_a_set_then_clear_during_a_wait_still_wakes_the_waiter(url: str) -> None:
    app = App(url)
    light = app.event("blink")
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(app.event("blink").wait(timeout=20)))
    t.start()
    time.sleep(0.3)
    light.set()
    light.clear()
    t.join(30)
    assert got == [True]


def test_a_forked_child_holds_none_of_its_parents_slots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    sem = App(url).semaphore("one", value=1)
    assert sem.acquire()
    fork = multiprocessing.get_context("fork")
    out = tmp_path / "child"
    child = fork.Process(target=_coordprocs.release_in_child, args=(url, str(out)))
    child.start()
    child.join(30)
    assert out.read_text() == "ValueError"
    assert sem.holders() == 1  # the parent's slot is still held
    sem.release()


def test_popitem_hands_each_item_to_one_caller(url: str) -> None:
    d = baozi.Dict("pop", url=url)
    d.update({f"k{i}": i for i in range(200)})
    taken: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        while True:
            try:
                _, value = d.popitem()
            except KeyError:
                return
            with lock:
                taken.append(value)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == list(range(200))


def test_incr_refuses_what_no_store_keeps_exactly(url: str) -> None:
    d = baozi.Dict("n", url=url)
    with pytest.raises(ValueError, match="finite"):
        d.incr("x", float("nan"))
    with pytest.raises(ValueError, match="64 bits"):
        d.incr("x", 2**64)
    d["x"] = 2**63 - 1
    with pytest.raises(OverflowError):
        d.incr("x")
    assert d["x"] == 2**63 - 1


def test_a_slot_released_through_another_handle_is_no_longer_renewed(url: str) -> None:
    first, second = App(url).semaphore("handles", value=2), App(url).semaphore("handles", value=2)
    assert first.acquire()
    assert renewed_holders("sem:handles") == 1
    second.release()  # the slot this process holds, given back through another handle
    assert renewed_holders("sem:handles") == 0
    assert first.holders() == 0


def renewed_holders(slot: str) -> int:
    """How many holders of ``slot`` this process's renewer keeps alive."""
    held = renewer().held()
    return sum(len(members) for group, members in held.items() if getattr(group, "slot", 0) == slot)


# -- made without an App -----------------------------------------------------------------------


def test_primitives_made_by_url_are_the_apps_primitives(url: str) -> None:
    app = App(url)
    with baozi.Lock("door", url=url):
        assert app.lock("door").locked()
    assert not app.lock("door").locked()
    sem = baozi.Semaphore("pool", url=url, value=2)
    assert sem.acquire(blocking=False)
    assert app.semaphore("pool", value=2).holders() == 1
    sem.release()
    baozi.Event("bell", url=url).set()
    assert app.event("bell").is_set()
    cond = baozi.Condition("gate", url=url)
    with cond:
        assert app.condition("gate")._lock.locked()
        assert cond.wait(timeout=0.01) is False


def test_primitives_made_by_url_share_one_store_handle(url: str) -> None:
    assert baozi.Lock("a", url=url)._owner is baozi.Event("b", url=url)._owner
    assert baozi.Lock("a", url=url).url == App(url).lock("a").url


def test_options_are_keywords(url: str) -> None:
    with pytest.raises(TypeError):
        baozi.Semaphore("s", url, 2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        App(url).semaphore("s", 2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        baozi.Dict("d", url)  # type: ignore[misc]


def test_a_condition_over_a_lock_of_another_store_is_refused(tmp_path: Path) -> None:
    lock = baozi.Lock("l", url=f"sqlite:///{tmp_path}/a.db")
    with pytest.raises(ValueError, match="same store"):
        baozi.Condition("c", url=f"sqlite:///{tmp_path}/b.db", lock=lock)
    assert baozi.Condition("c", lock=lock).url == lock.url  # the lock's store, when no url
