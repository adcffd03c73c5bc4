"""Unique jobs, dependencies and workflows (chain, group, chord), and failed jobs kept until
removed -- through the App and a real worker, on every store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import baozi
from baozi import App, DependencyFailed, JobCancelled, JobFailed, JobNotFound, chain, chord, group

from . import faultapp, jobtasks
from ._helpers import lines, working

ROOT = Path(__file__).resolve().parent.parent


def _app(url: str, **options: object) -> tuple[App, baozi.Task, baozi.Task]:
    app = App(url, lease=5.0, **options)  # type: ignore[arg-type]
    add = app.task(name="add")(jobtasks.add)
    fail = app.task(name="fail")(jobtasks.fail)
    return app, add, fail


# -- unique jobs ---------------------------------------------------------------------------------


def test_a_second_enqueue_of_a_held_key_returns_the_first_job(url: str) -> None:
    app, add, _ = _app(url)
    first = add.apply_async((1, 2), unique_key="sum")
    again = add.apply_async((5, 5), unique_key="sum", queue="other")
    assert first.deduplicated is False and again.deduplicated is True
    assert again.id == first.id and again == first
    assert app.store.counts("default").total == 1
    assert first.unique_key == "sum"
    with working(app, concurrency=2):
        assert again.result(timeout=30) == 3
    after = add.apply_async((5, 5), unique_key="sum")  # the key went with the job's end
    assert after.deduplicated is False and after.id != first.id


def test_unique_for_holds_the_key_after_the_end(url: str) -> None:
    app, add, _ = _app(url)
    first = add.apply_async((1, 2), unique_key="k", unique_for=60)
    with working(app, concurrency=1):
        first.result(timeout=30)
    assert add.apply_async((1, 2), unique_key="k").id == first.id


def test_a_unique_task_keys_its_arguments_as_bound_to_its_signature(url: str) -> None:
    app = App(url)

    @app.task(name="scale", unique=True)
    def scale(a: float, b: float = 2.0, *rest: int, **named: int) -> float:
        return a * b

    one = scale.delay(1, 2.0)
    assert one.deduplicated is False
    for same in (scale.delay(1), scale.delay(1, b=2.0), scale.apply_async((), {"a": 1})):
        assert same.deduplicated and same.id == one.id
    assert not scale.delay(1.0).deduplicated  # 1 and 1.0 are different arguments
    assert not scale.delay(1, 3.0).deduplicated
    assert scale.delay(1, 2.0, x=1, y=2).id == scale.delay(1, 2.0, y=2, x=1).id
    assert scale.unique_key((1,), {}) == scale.unique_key((), {"a": 1, "b": 2.0})
    assert scale.unique_key((1,), {}).startswith("scale:")
    explicit = scale.apply_async((1,), unique_key="mine")  # a given key wins
    assert not explicit.deduplicated and explicit.id != one.id


def _race(url: str, start: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    app = App(url)
    add = app.task(name="add")(jobtasks.add)
    while time.time() < start:
        time.sleep(0.001)
    jobs = [add.apply_async((1, 2), unique_key="race") for _ in range(5)]
    out.put([(j.id, j.deduplicated) for j in jobs])


def test_eight_processes_racing_for_one_key_make_one_job(shared_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 3.0
    procs = [ctx.Process(target=_race, args=(shared_url, start, out)) for _ in range(8)]
    for p in procs:
        p.start()
    got = [pair for _ in procs for pair in out.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert len(got) == 40
    assert len({job_id for job_id, _ in got}) == 1
    assert sum(not dedup for _, dedup in got) == 1
    assert App(shared_url).store.counts("default").total == 1


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"unique_key": ""}, ValueError, "unique_key must be a non-empty str"),
        ({"unique_key": 7}, ValueError, "unique_key must be"),
        ({"unique_key": "k", "unique_while": "always"}, ValueError, "unique_while must be one of"),
        ({"unique_key": "k", "unique_for": -1}, ValueError, "unique_for must be"),
        ({"unique_key": "k", "unique_for": float("nan")}, ValueError, "unique_for must be"),
        ({"depends_on": [object()]}, TypeError, "depends_on must hold jobs"),
        ({"depends_on": 7}, TypeError, "depends_on must be jobs"),
        ({"on_dependency_failure": "ignore"}, ValueError, "on_dependency_failure must be"),
    ],
)
def test_bad_unique_and_dependency_options_are_refused_at_the_call(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    app, add, _ = _app("memory://bad-workflow-options")
    with pytest.raises(error, match=match):
        add.apply_async((1, 2), **options)  # type: ignore[arg-type]
    assert app.store.counts("default").total == 0
    with pytest.raises(ValueError, match="unique_while"):
        app.task(name="bad", unique=True, unique_while="sometimes")(jobtasks.add)
    with pytest.raises(TypeError, match="unique must be True or False"):
        app.task(name="bad", unique="yes")(jobtasks.add)  # type: ignore[arg-type]


def test_a_dependency_the_store_does_not_hold_enqueues_nothing(url: str) -> None:
    app, add, _ = _app(url)
    real = add.delay(1, 1)
    with pytest.raises(JobNotFound, match="depends on"):
        add.apply_async((1, 2), depends_on=[real, "424242424"])
    assert app.store.counts("default").total == 1 and real.children == []


# -- dependencies and workflows ------------------------------------------------------------------


def test_a_dependent_waits_then_runs(url: str) -> None:
    app, add, _ = _app(url)
    first = add.apply_async((1, 2), delay=0.5)
    second = add.apply_async((3, 4), depends_on=[first])
    assert second.status == "waiting" and second.position() is None
    assert app.store.job_counts("default")["waiting"] == 1
    assert second.parents == [first] and first.children == [second]
    with working(app, concurrency=2):
        assert second.result(timeout=30) == 7
    assert first.status == "succeeded"
    assert first.finished_at is not None and second.started_at is not None
    assert second.started_at >= first.finished_at


def test_what_a_failed_dependency_does_to_each_policy(url: str) -> None:
    app, add, fail = _app(url)
    bad = fail.delay("no")
    cancelled = add.apply_async((1, 1), depends_on=[bad])
    failed = add.apply_async((1, 2), depends_on=[bad], on_dependency_failure="fail")
    ran = add.apply_async((1, 3), depends_on=[bad], on_dependency_failure="run")
    with working(app, concurrency=2):
        assert ran.result(timeout=30) == 4
        with pytest.raises(JobCancelled):
            cancelled.result(timeout=30)
        with pytest.raises(DependencyFailed, match=bad.id) as caught:
            failed.result(timeout=30)
    assert isinstance(caught.value, JobFailed) and caught.value.exc_type == "DependencyFailed"
    assert failed.attempts == 0 and cancelled.attempts == 0  # they never ran


def test_a_chain_feeds_each_result_to_the_next_step(url: str) -> None:
    app, add, _ = _app(url)
    flow = chain(add.s(1, 2), add.s(10), add.s(100)).delay()
    assert len(flow.jobs) == 3 and [j.status for j in flow.jobs[1:]] == ["waiting", "waiting"]
    assert flow.jobs[1].parents == [flow.jobs[0]] and flow.jobs[1].children == [flow.jobs[2]]
    with working(app, concurrency=2):
        assert flow.result(timeout=30) == 113
    assert flow.status == "succeeded"
    assert [j.result(0) for j in flow.jobs] == [3, 13, 113]


def test_a_chain_whose_step_fails_raises_that_steps_failure(url: str) -> None:
    app, add, fail = _app(url)
    flow = chain(add.s(1, 2), fail.s(), add.s(100)).delay()  # fail(3): ValueError("3")
    with working(app, concurrency=2):
        with pytest.raises(JobFailed, match="ValueError") as caught:
            flow.result(timeout=30)
    assert caught.value.job_id == flow.jobs[1].id
    assert flow.status == "cancelled" and flow.jobs[2].status == "cancelled"


def test_a_group_runs_in_parallel_and_returns_results_in_order(url: str) -> None:
    app, add, fail = _app(url)
    members = group(add.s(i, i) for i in range(10)).delay()
    assert members.status == "running" and len(members.jobs) == 10
    with working(app, concurrency=4):
        assert members.result(timeout=30) == [2 * i for i in range(10)]
        assert members.status == "succeeded"
        broken = group(add.s(1, 1), fail.s("member"), add.s(2, 2)).delay()
        with pytest.raises(JobFailed, match="member"):
            broken.result(timeout=30)
        assert broken.status == "failed"


def test_a_chord_calls_its_callback_once_with_every_result(url: str) -> None:
    app, add, fail = _app(url)
    total = app.task(name="total")(jobtasks.echo)
    flow = chord(group(add.s(i, 1) for i in range(5)), total.s("tail")).delay()
    callback = flow.jobs[-1]
    assert callback.status == "waiting" and len(callback.parents) == 5
    with working(app, concurrency=3):
        assert flow.result(timeout=30) == [([1, 2, 3, 4, 5], "tail"), {}]
        broken = chord([add.s(1, 1), fail.s("member")], total.s()).delay()
        with pytest.raises(JobFailed, match="member"):
            broken.result(timeout=30)
    assert broken.status == "cancelled" and broken.jobs[-1].attempts == 0


def test_a_group_inside_a_chain_gets_the_result_before_it(url: str) -> None:
    app, add, _ = _app(url)
    total = app.task(name="total")(jobtasks.echo)
    flow = chain(add.s(1, 1), group(add.s(10), add.s(20)), total.s()).delay()
    with working(app, concurrency=3):
        assert flow.result(timeout=30) == [([12, 22],), {}]


def test_depends_on_takes_a_workflow_handle(url: str) -> None:
    app, add, _ = _app(url)
    flow = group(add.s(1, 1), add.s(2, 2)).delay()
    after = add.apply_async((0, 0), depends_on=flow)
    assert [p.id for p in after.parents] == [j.id for j in flow.jobs]
    with working(app, concurrency=2):
        assert after.result(timeout=30) == 0


def test_a_chord_survives_killed_workers_and_calls_back_exactly_once(
    shared_url: str, tmp_path: Path
) -> None:
    """Workers are killed (SIGKILL) over and over while a 1,000-member chord runs; the callback
    still runs once, with every member's result."""
    app = App(shared_url, lease=1.0)
    member = app.task(name="member")(faultapp.member)
    gather = app.task(name="gather")(faultapp.gather)
    log = tmp_path / "log"
    flow = chord(group(member.s(str(log), i) for i in range(1000)), gather.s(str(log))).delay()
    env = {**os.environ, "BAOZI_TEST_URL": shared_url}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "baozi", "worker", "tests.faultapp:app", "-q", "-c", "8"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    workers = [start(), start()]
    kills = 0
    deadline = time.monotonic() + 240
    try:
        while flow.status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"the chord is still {flow.status}"
            time.sleep(0.3)
            if kills < 12:
                victim = workers.pop(0)
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(30)
                kills += 1
                workers.append(start())
        assert flow.result(timeout=5) == sum(i * i for i in range(1000))
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
            w.wait(30)
    ran = lines(log)
    assert ran.count("callback") == 1
    assert {f"m{i}" for i in range(1000)} <= set(ran)
    assert kills >= 3, f"only {kills} kills landed before the chord ended"


# -- failed jobs kept until removed --------------------------------------------------------------


def test_failed_jobs_stay_listed_and_retryable_until_forgotten(url: str) -> None:
    app, add, fail = _app(url, result_ttl=0.2)
    with working(app, concurrency=2):
        bad = fail.delay("kept")
        good = add.delay(1, 1)
        with pytest.raises(JobFailed):
            bad.result(timeout=30)
        good.result(timeout=30)
    time.sleep(0.3)
    assert app.store.purge_expired() >= 1
    with pytest.raises(JobNotFound):
        good.record()
    assert [r.id for r in app.store.records(status="failed")] == [bad.id]
    assert bad.retry() is True
    with working(app, concurrency=1):
        with pytest.raises(JobFailed):
            bad.result(timeout=30)
    assert bad.attempts == 1
    assert bad.forget() is True and bad.forget() is False
    with pytest.raises(JobNotFound):
        bad.record()


def test_a_failed_ttl_purges_failed_jobs_too(url: str) -> None:
    app, _, fail = _app(url, failed_ttl=0.2)
    with working(app, concurrency=1):
        bad = fail.delay("gone")
        with pytest.raises(JobFailed):
            bad.result(timeout=30)
    time.sleep(0.3)
    app.store.purge_expired()
    with pytest.raises(JobNotFound):
        bad.record()
    with pytest.raises(ValueError, match="failed_ttl must be a positive number"):
        App(url, failed_ttl=0)


def test_map_of_a_unique_task_makes_one_job_per_key(url: str) -> None:
    app = App(url)
    double = app.task(name="double", unique=True)(jobtasks.add)
    jobs = double.map([(1, 1), (2, 2), (1, 1)])
    assert [j.deduplicated for j in jobs] == [False, False, True] and jobs[2].id == jobs[0].id
    assert double.delay(2, 2).id == jobs[1].id


def test_a_chain_ending_in_a_group_returns_the_groups_results(url: str) -> None:
    app, add, _ = _app(url)
    flow = chain(add.s(1, 1), group(add.s(1), add.s(2))).delay()
    with working(app, concurrency=2):
        assert flow.result(timeout=30) == [3, 4]
    assert flow.status == "succeeded" and len(flow.ends()) == 2


def test_cancelling_a_workflow_cancels_what_has_not_finished(url: str) -> None:
    app, add, _ = _app(url)
    flow = chain(add.s(1, 1), add.s(2), add.s(3)).delay()
    assert flow.cancel() == 3
    assert [j.status for j in flow.jobs] == ["cancelled"] * 3
    with pytest.raises(JobCancelled):
        flow.result(timeout=5)
