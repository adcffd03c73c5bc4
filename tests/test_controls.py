"""Controls on jobs, on every store: concurrency and rate limits and lock keys across workers,
pausing a queue, delayed jobs, and periodic jobs with several schedulers."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from baozi import App
from baozi.beat import Beat, schedule_runs
from tests import _coordprocs, beatapp
from tests._helpers import wait_for, working

spawn = multiprocessing.get_context("spawn")


class Tracker:
    """Records when each job of a task runs, to check overlap afterwards (jobs run in this
    process's worker threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.spans: list[tuple[str, float, float]] = []

    def run(self, key: str, seconds: float) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        start = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            self.running -= 1
            self.spans.append((key, start, time.monotonic()))


def test_concurrency_two_with_eight_slots(url: str) -> None:
    app = App(url, lease=5)
    tracker = Tracker()

    @app.task(concurrency=2)
    def limited(i: int) -> int:
        tracker.run("x", 0.05)
        return i

    jobs = limited.map(range(20))
    with working(app, concurrency=8):
        assert [j.result(timeout=60) for j in jobs] == list(range(20))
    assert tracker.peak == 2
    assert max(j.attempts for j in jobs) == 1  # held back: no delivery counted
    assert app.store.slot_holders(f"task:{limited.name}") == []


def test_concurrency_holds_across_two_workers(shared_url: str) -> None:
    app = App(shared_url, lease=5)
    tracker = Tracker()

    @app.task(concurrency=3)
    def limited(i: int) -> None:
        tracker.run("x", 0.05)

    jobs = limited.map(range(24))
    with working(app, concurrency=4), working(app, concurrency=4):
        for j in jobs:
            j.result(timeout=60)
    assert tracker.peak == 3


def test_jobs_with_one_lock_key_never_overlap(url: str) -> None:
    app = App(url, lease=5)
    tracker = Tracker()

    @app.task(lock="account:{account_id}")
    def transfer(account_id: int, amount: int = 0) -> None:
        tracker.run(str(account_id), 0.03)

    jobs = [transfer.delay(i % 3, amount=i) for i in range(18)]
    with working(app, concurrency=8):
        for j in jobs:
            j.result(timeout=60)
    by_key: dict[str, list[tuple[float, float]]] = {}
    for key, start, end in tracker.spans:
        by_key.setdefault(key, []).append((start, end))
    for spans in by_key.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert tracker.peak >= 2  # different keys did run side by side


def test_the_task_lock_is_the_apps_lock_of_that_key(url: str) -> None:
    app = App(url, lease=5)
    ran: list[int] = []

    @app.task(lock="account:{account_id}")
    def touch(account_id: int) -> None:
        ran.append(account_id)

    with app.lock("account:7"):
        job = touch.delay(7)
        with working(app, concurrency=2):
            time.sleep(0.5)
            assert ran == [] and job.status in ("scheduled", "queued")
    with working(app, concurrency=2):
        job.result(timeout=30)
    assert ran == [7]


def test_a_rate_limit_of_20_per_second_spreads_100_jobs_over_5_seconds(url: str) -> None:
    app = App(url, lease=5)
    starts: dict[int, float] = {}
    store = app.store
    # Each job's first call books its turn: the store's time of the call plus the wait it
    # returns. The call is timed from both sides, so each turn is known to lie in [low, high].
    turns: dict[str, tuple[float, float]] = {}
    acquire = store.rate_acquire

    def booking(name: str, interval: float, burst: int = 1, ticket: str | None = None) -> float:
        before = time.time()
        wait = acquire(name, interval, burst, ticket)
        if ticket is not None and ticket not in turns:
            turns[ticket] = (before + wait, time.time() + wait)
        return wait

    store.rate_acquire = booking  # type: ignore[method-assign]

    @app.task(rate_limit="20/s")
    def limited(i: int) -> None:
        starts[i] = time.time()

    jobs = limited.map(range(100))
    t0 = time.time()
    with working(app, concurrency=8):
        for j in jobs:
            j.result(timeout=60)
    assert len(starts) == 100 and len(turns) == 100
    spread = max(starts.values()) - min(starts.values())
    assert 4.5 <= spread, spread  # 99 gaps of 1/20 s: never faster than the limit
    assert time.time() - t0 < 30
    # No job starts before its turn (10 ms for the two clocks' reading).
    late = [starts[i] - turns[j.id][0] for i, j in enumerate(jobs)]
    assert min(late) > -0.01, min(late)
    # The turns are 1/20 s apart. Each lies in its [low, high], so the k-th lowest high is at
    # or after the k-th turn and the k-th lowest low at or before it: any two turns k apart in
    # time have highs and lows at least k/20 s apart. Without the limit (or at 40/s) the 100
    # turns would all fall within the calls' own time. This holds however late a loaded
    # machine runs the bodies; how late they ran is printed on failure.
    lows = sorted(low for low, _ in turns.values())
    highs = sorted(high for _, high in turns.values())
    short = [
        (i, k, highs[k] - lows[i])
        for i in range(100)
        for k in range(i + 1, 100)
        if highs[k] - lows[i] < (k - i) / 20 - 0.01
    ]
    assert not short, (short[:5], sorted(late)[-5:])


def test_pause_stops_new_starts_and_resume_restarts_them(url: str) -> None:
    app = App(url, lease=5)
    starts: list[float] = []

    @app.task(queue="work")
    def step(i: int) -> None:
        starts.append(time.monotonic())
        time.sleep(0.1)

    with working(app, concurrency=2):
        first = step.map(range(4))
        for j in first:
            j.result(timeout=30)
        app.pause("work")
        paused_at = time.monotonic()
        assert app.is_paused("work")
        held = step.map(range(6))  # enqueueing works while paused
        time.sleep(1.5)
        assert [s for s in starts if s > paused_at + 1.0] == []
        assert all(j.status == "queued" for j in held)
        assert held[0].position() == 0
        app.resume("work")
        resumed_at = time.monotonic()
        assert not app.is_paused("work")
        for j in held:
            j.result(timeout=30)
    assert min(s for s in starts if s > paused_at) - resumed_at < 1.0


def test_a_job_running_when_paused_finishes(url: str) -> None:
    app = App(url, lease=5)
    started = threading.Event()

    @app.task(queue="work")
    def long() -> str:
        started.set()
        time.sleep(0.5)
        return "done"

    with working(app, concurrency=1):
        job = long.delay()
        assert started.wait(30)
        app.pause("work")
        assert job.result(timeout=30) == "done"
    app.resume("work")


def test_pause_and_resume_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = [sys.executable, "-m", "baozi"]
    out = subprocess.run([*run, "pause", "mail", "--url", url], capture_output=True, text=True)
    assert out.returncode == 2 and "no queue 'mail'" in out.stderr  # a name nobody uses
    App(url).store.push("mail", [b"x"])
    out = subprocess.run([*run, "pause", "mail", "--url", url], capture_output=True, text=True)
    assert out.returncode == 0 and "paused mail" in out.stdout
    assert App(url).is_paused("mail")
    out = subprocess.run([*run, "resume", "mail", "--url", url], capture_output=True, text=True)
    assert out.returncode == 0 and not App(url).is_paused("mail")


def test_delayed_and_eta_jobs_start_within_100_ms_of_their_time(url: str) -> None:
    app = App(url)
    started: dict[int, float] = {}

    @app.task
    def stamp(i: int) -> None:
        started[i] = time.time()

    with working(app, concurrency=4):
        time.sleep(0.2)  # the worker is idle, waiting
        due: dict[int, float] = {}
        for i in range(5):
            delay = 0.3 + 0.2 * i
            due[i] = time.time() + delay
            if i % 2:
                stamp.apply_async((i,), delay=delay)
            else:
                eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
                stamp.apply_async((i,), eta=eta)
        wait_for(lambda: len(started) == 5, timeout=30)
    lateness = sorted(started[i] - due[i] for i in range(5))
    assert lateness[0] >= -0.01  # never early
    assert lateness[2] < 0.1, lateness  # the median within 100 ms


def test_eta_must_be_an_aware_datetime(url: str) -> None:
    app = App(url)
    task = app.task(name="t")(lambda: None)
    with pytest.raises(ValueError, match="no time zone"):
        task.apply_async(eta=dt.datetime.now())
    with pytest.raises(TypeError, match="datetime"):
        task.apply_async(eta=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        task.apply_async(delay=1, eta=dt.datetime.now(dt.UTC))
    assert app.store.counts("default").total == 0


def test_bad_control_options_fail_at_definition(url: str) -> None:
    app = App(url)

    def f(account_id: int) -> None: ...

    with pytest.raises(ValueError, match="rate_limit must look like '100/m'"):
        app.task(rate_limit="fast")(f)
    with pytest.raises(ValueError, match="rate_limit"):
        app.task(rate_limit="0/s")(f)
    with pytest.raises(ValueError, match="concurrency"):
        app.task(concurrency=0)(f)
    with pytest.raises(ValueError, match="names 'user'"):
        app.task(lock="user:{user}")(f)
    with pytest.raises(ValueError, match="name the parameter"):
        app.task(lock="x:{}")(f)
    with pytest.raises(ValueError, match="cron"):
        app.periodic(cron="every tuesday")(f)
    with pytest.raises(ValueError, match="every"):
        app.periodic(every=-1)(f)
    with pytest.raises(ValueError, match="either cron"):
        app.periodic()(f)
    with pytest.raises(ValueError, match="time zone"):
        app.periodic(cron="* * * * *", tz="Mars/Olympus")(f)
    assert app.schedules == []


def test_a_lock_key_the_arguments_cannot_fill_fails_the_job(url: str) -> None:
    app = App(url)

    @app.task(lock="k:{a}")
    def f(a: int) -> None: ...

    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        f.apply_async((), {"b": 1})  # refused at the call site; one already stored fails:
    (job,) = app._enqueue(f.name, [((), {"b": 1})], "default", 0, None, False, True, None)
    with working(app, concurrency=1):
        with pytest.raises(Exception, match="lock key"):
            job.result(timeout=30)


# -- periodic jobs -----------------------------------------------------------------------------


def test_each_tick_enqueues_one_job_whatever_the_schedulers(url: str) -> None:
    app = beatapp.make_app(url)
    a, b = Beat(app), Beat(beatapp.make_app(url))
    assert a.tick(now=1000.5) == []  # the first scheduler ever starts counting from now
    assert len(a.tick(now=1003.2)) == 3  # 1001, 1002, 1003
    assert b.tick(now=1003.9) == []  # already claimed
    assert len(b.tick(now=1004.0)) == 1
    assert a.tick(now=1004.5) == []
    assert app.store.counts("beat").ready == 4


def test_a_restarted_scheduler_catches_up_the_last_hour_only(url: str) -> None:
    app = App(url)

    @app.periodic(every=dt.timedelta(minutes=1))
    @app.task(queue="beat")
    def minutely() -> None: ...

    beat = Beat(app)
    beat.tick(now=60_000.0)
    assert beat.tick(now=60_000.0 + 3 * 60 + 1) and app.store.counts("beat").ready == 3
    # Down for five hours: only the ticks of the last hour run, one job each.
    restarted = Beat(app)
    jobs = restarted.tick(now=60_000.0 + 5 * 3600 + 10)
    assert len(jobs) == 60
    assert restarted.tick(now=60_000.0 + 5 * 3600 + 20) == []


def test_cron_ticks(url: str) -> None:
    app = App(url)

    @app.periodic(cron="*/5 * * * *")
    @app.task(queue="beat")
    def five() -> None: ...

    beat = Beat(app)
    t0 = dt.datetime(2026, 1, 1, 12, 2, tzinfo=dt.UTC).timestamp()
    beat.tick(now=t0)
    assert len(beat.tick(now=t0 + 4 * 60)) == 1  # 12:05
    assert len(beat.tick(now=t0 + 14 * 60)) == 2  # 12:10, 12:15
    assert beat.tick(now=t0 + 17 * 60) == []


def test_three_schedulers_for_ten_seconds_enqueue_ten_jobs(url: str) -> None:
    if url.startswith("memory://"):
        beats = [Beat(beatapp.make_app(url)) for _ in range(3)]
        for b in beats:
            b.start()
        time.sleep(10)
        for b in beats:
            b.stop()
    else:
        procs = [spawn.Process(target=_coordprocs.run_beat, args=(url, 10.0)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    ticks = App(url).store.counts("beat").ready
    assert 9 <= ticks <= 11, ticks


@pytest.mark.parametrize("command", [["beat"], ["worker", "--beat", "-Q", "idle"]])
def test_the_scheduler_runs_from_the_command_line(tmp_path: Path, command: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'beat.db'}"
    app = beatapp.make_app(url)
    Beat(app).tick()  # start counting now
    proc = subprocess.Popen(
        [sys.executable, "-m", "baozi", *command, "tests.beatapp:make_app_default", "-q"],
        env={**__import__("os").environ, "BAOZI_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: app.store.counts("beat").ready >= 2, timeout=30)
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""


def test_held_back_jobs_start_in_queue_order(url: str) -> None:
    app = App(url, lease=5)
    order: list[int] = []

    @app.task(concurrency=1)
    def one_at_a_time(i: int) -> None:
        order.append(i)
        time.sleep(0.01)

    jobs = one_at_a_time.map(range(15))
    with working(app, concurrency=8):
        for j in jobs:
            j.result(timeout=60)
    assert order == list(range(15))


def test_held_back_jobs_wait_without_polling(url: str, caplog: pytest.LogCaptureFixture) -> None:
    app = App(url, lease=5)

    @app.task(concurrency=1)
    def slow(i: int) -> None:
        time.sleep(0.3)

    @app.task(rate_limit="50/s")
    def paced(i: int) -> None: ...

    jobs = slow.map(range(4)) + paced.map(range(40))
    with caplog.at_level("DEBUG", logger="baozi.worker"), working(app, concurrency=8):
        for j in jobs:
            j.result(timeout=60)
    held = [r.getMessage() for r in caplog.records if "held back" in r.getMessage()]
    by_job: dict[str, int] = {}
    for message in held:
        job_id = message.split()[1]
        by_job[job_id] = by_job.get(job_id, 0) + 1
    # Each waits for its slot or its booked turn: a few tries at most, not one every few ms.
    assert max(by_job.values(), default=0) <= 3, by_job


def test_schedules_of_one_task_with_other_arguments_are_claimed_apart(url: str) -> None:
    app = App(url)

    @app.task(queue="beat")
    def report(kind: str) -> str:
        return kind

    app.periodic(every=60, args=("daily",))(report)
    app.periodic(every=60, args=("weekly",))(report)
    with pytest.raises(ValueError, match="already has this schedule"):
        app.periodic(every=60, args=("weekly",))(report)
    with pytest.raises(TypeError, match="do not fit"):
        app.periodic(every=60, kwargs={"nope": 1})(report)
    with pytest.raises(ValueError, match="every"):
        app.periodic(every=float("inf"))(report)
    beat = Beat(app)
    beat.tick(now=6000.0)
    jobs = beat.tick(now=6000.0 + 3 * 60)
    kinds = sorted(app.codec.loads(app.store.record(j.id).payload)[0][0] for j in jobs)  # type: ignore[union-attr]
    assert kinds == ["daily"] * 3 + ["weekly"] * 3


def test_a_fractional_interval_enqueues_one_job_per_tick(url: str) -> None:
    app = App(url)

    @app.periodic(every=216.62)
    @app.task(queue="beat")
    def odd() -> None: ...

    tick = 1798565749.82  # a multiple of 216.62 that rounds onto itself
    beat = Beat(app)
    beat.tick(now=tick - 1)
    assert len(beat.tick(now=tick + 0.001)) == 1
    assert beat.tick(now=tick + 1) == []


def test_the_store_keeps_each_schedule_s_last_run_for_every_process(url: str) -> None:
    app, elsewhere = beatapp.make_app(url), beatapp.make_app(url)  # another handle reads it
    (unseen,) = schedule_runs(elsewhere, now=1000.5)
    assert (unseen.last_run, unseen.next_run, unseen.counting_since) == (None, 1001.0, None)
    Beat(app).tick(now=1000.0)  # the first scheduler starts counting on a tick: not a run
    (counting,) = schedule_runs(elsewhere, now=1000.5)
    assert counting.last_run is None and counting.next_run == 1001.0
    assert counting.counting_since is not None and 1000.0 <= counting.counting_since < 1000.001
    assert len(Beat(app).tick(now=1003.2)) == 3
    (ran,) = schedule_runs(elsewhere, now=1003.5)
    assert (ran.last_run, ran.next_run, ran.counting_since) == (1003.0, 1004.0, None)
    (overdue,) = schedule_runs(elsewhere, now=1007.5)  # no scheduler ran since: 1004 is due
    assert (overdue.last_run, overdue.next_run) == (1003.0, 1004.0)
