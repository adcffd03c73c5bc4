"""Tasks and jobs: enqueueing, order and position, status, results and errors, cancel, executor."""

from __future__ import annotations

import concurrent.futures
import queue as stdlib_queue
import threading
import time

import pytest

import baozi
from baozi import App, Job, JobCancelled, JobFailed, JobNotFound

from . import jobtasks
from ._helpers import working


@pytest.fixture
def app(url: str) -> App:
    return App(url, lease=5.0)


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


def test_delay_returns_a_queued_job_that_a_worker_completes(app: App) -> None:
    add = app.task(jobtasks.add)
    job = add.delay(2, 3)
    assert isinstance(job, Job) and isinstance(job.id, str)
    assert job.status == "queued" and job.position() == 0 and job.attempts == 0
    assert job.task == "tests.jobtasks.add" and job.queue == "default"
    with working(app):
        assert job.result(timeout=10) == 5
    assert job.status == "succeeded" and job.attempts == 1
    assert job.created_at <= job.started_at <= job.finished_at  # type: ignore[operator]
    assert job.position() is None


def test_arguments_and_results_round_trip_with_their_types(app: App) -> None:
    echo = app.task(jobtasks.echo)
    job = echo.delay((1, 2), {"k": {3, 4}}, when=b"\x00", n=None)
    with working(app):
        args, kwargs = job.result(timeout=10)
    assert args == ((1, 2), {"k": {3, 4}}) and type(args[0]) is tuple
    assert kwargs == {"when": b"\x00", "n": None}


def test_fifo_lifo_priority_and_front_order_and_positions(app: App, tmp_path: object) -> None:
    note = app.task(jobtasks.note)
    app.queue("stack", order="lifo")
    path = str(tmp_path) + "/order.txt"  # type: ignore[operator]
    fifo = [
        note.apply_async(
            (
                path,
                f"f{i}",
            )
        )
        for i in range(3)
    ]
    urgent = note.apply_async((path, "urgent"), priority=-1)
    front = note.apply_async((path, "front"), front=True)
    assert [j.position() for j in fifo + [urgent, front]] == [2, 3, 4, 0, 1]
    lifo = [
        note.apply_async(
            (
                path,
                f"l{i}",
            ),
            queue="stack",
        )
        for i in range(3)
    ]
    assert [j.position() for j in lifo] == [2, 1, 0]
    with working(app, queues=["default"], concurrency=1):
        for job in fifo + [urgent, front]:
            job.result(timeout=10)
    with working(app, queues=["stack"], concurrency=1):
        for job in lifo:
            job.result(timeout=10)
    with open(path) as f:
        assert f.read().split() == ["urgent", "front", "f0", "f1", "f2", "l2", "l1", "l0"]


def test_a_failed_job_raises_jobfailed_with_the_remote_details(app: App) -> None:
    fail = app.task(jobtasks.fail)
    job = fail.delay("it broke")
    with working(app):
        with pytest.raises(JobFailed) as caught:
            job.result(timeout=10)
    assert caught.value.exc_type == "ValueError"
    assert caught.value.exc_message == "it broke"
    assert "jobtasks.py" in caught.value.traceback and "raise ValueError" in caught.value.traceback
    assert job.status == "failed"


def test_result_times_out_while_the_job_waits(app: App) -> None:
    job = app.task(jobtasks.add).delay(1, 1)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.1)
    with pytest.raises(ValueError):
        job.result(timeout=-1)


def test_cancel_a_waiting_job(app: App) -> None:
    sleep = app.task(jobtasks.sleep)
    waiting = sleep.delay(0)
    assert waiting.cancel() is True and waiting.status == "cancelled" and waiting.cancelled
    assert waiting.cancel() is False
    with pytest.raises(JobCancelled):
        waiting.result(timeout=1)
    done = sleep.delay(0)
    with working(app):
        assert done.result(timeout=30) == 0
    assert done.cancel() is False and not done.cancelled  # finished: nothing to cancel


def test_a_job_by_id_from_anywhere_and_unknown_ids(app: App) -> None:
    job = app.task(jobtasks.add).delay(1, 2)
    again = app.job(job.id)
    assert again == job and again.status == "queued"
    with pytest.raises(JobNotFound):
        app.job("999999")
    with pytest.raises(JobNotFound):
        app.job("nonsense")
    with pytest.raises(LookupError):
        _ = Job(app, "424242").status


def test_unserializable_arguments_fail_in_the_caller_and_enqueue_nothing(app: App) -> None:
    echo = app.task(jobtasks.echo)
    with pytest.raises(TypeError, match="object"):
        echo.delay(object())
    with pytest.raises(TypeError):
        echo.map([(1,), (object(),)])
    assert app.store.records() == []


def test_map_enqueues_one_job_per_argument_in_one_go(app: App) -> None:
    add = app.task(jobtasks.add)
    jobs = add.map([(i, i) for i in range(20)])
    assert len(set(ids(jobs))) == 20
    assert [j.position() for j in jobs] == list(range(20))
    with working(app):
        assert [j.result(timeout=10) for j in jobs] == [2 * i for i in range(20)]


def test_a_bounded_queue_makes_enqueue_wait_then_raise_full(app: App) -> None:
    app.queue("small", maxsize=2)
    add = app.task(queue="small")(jobtasks.add)
    add.delay(1, 1)
    add.delay(1, 2)
    with pytest.raises(stdlib_queue.Full):
        add.apply_async((1, 3), block=False)
    with pytest.raises(stdlib_queue.Full):
        add.apply_async((1, 3), timeout=0.05)
    with working(app, queues=["small"]):
        assert add.apply_async((1, 4), timeout=10).result(timeout=10) == 5


def test_delay_keeps_to_a_queue_declared_or_a_task_changed_after_it_ran(app: App) -> None:
    add = app.task(queue="later")(jobtasks.add)
    first = add.delay(1, 1)  # an undeclared queue: FIFO, unbounded
    app.queue("later", order="lifo", maxsize=2)
    second = add.delay(1, 2)
    assert second.position() == 0 and first.position() == 1  # LIFO from now on
    with pytest.raises(stdlib_queue.Full):
        add.apply_async((1, 3), block=False)
    with pytest.raises(stdlib_queue.Full, match="full"):
        add.apply_async((1, 3), timeout=0.01)
    add.queue, add.priority = "elsewhere", 5
    moved = add.delay(1, 4)
    assert moved.queue == "elsewhere" and moved.record().priority == 5
    add.priority = "high"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="priority must be a number"):
        add.delay(1, 5)


def test_delayed_jobs_wait_their_time(app: App) -> None:
    add = app.task(jobtasks.add)
    job = add.apply_async((1, 1), delay=0.3)
    assert job.status == "scheduled" and job.position() is None
    start = time.monotonic()
    with working(app):
        assert job.result(timeout=10) == 2
    assert job.started_at is not None and job.started_at >= job.created_at + 0.29
    assert time.monotonic() - start < 5


def test_progress_reported_inside_the_task_is_visible_outside(app: App, tmp_path: object) -> None:
    task = app.task(jobtasks.report_progress)
    flag = str(tmp_path) + "/go"  # type: ignore[operator]
    job = task.delay(flag)
    assert job.progress is None
    with working(app):
        deadline = time.monotonic() + 10
        while job.progress is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert job.progress == (0.5, "half way")
        open(flag, "w").close()
        assert job.result(timeout=10) == "done"
    with pytest.raises(RuntimeError):
        baozi.current_job()
    with pytest.raises(RuntimeError, match="inside the running task"):
        job.set_progress(1.0)


def test_done_callbacks_fire_once_the_job_finishes(app: App) -> None:
    job = app.task(jobtasks.add).delay(2, 2)
    seen: list[str] = []
    done = threading.Event()
    job.add_done_callback(lambda j: (seen.append(j.status), done.set()))
    assert not done.is_set()
    with working(app):
        assert done.wait(10)
    assert seen == ["succeeded"]
    late: list[str] = []
    job.add_done_callback(lambda j: late.append(j.id))  # already done: called at once
    assert late == [job.id]


def test_task_callbacks_run_in_the_worker_and_cannot_kill_it(app: App) -> None:
    events: list[tuple[str, object]] = []

    def on_success(job: Job, result: object) -> None:
        events.append(("success", result))
        raise RuntimeError("a broken callback")

    def on_failure(job: Job, exc: BaseException) -> None:
        events.append(("failure", type(exc).__name__))

    add = app.task(on_success=on_success)(jobtasks.add)
    fail = app.task(on_failure=on_failure)(jobtasks.fail)
    with working(app):
        add.delay(1, 1).result(timeout=10)
        with pytest.raises(JobFailed):
            fail.delay("x").result(timeout=10)
        assert add.delay(2, 2).result(timeout=10) == 4  # the worker is still up
    assert ("success", 2) in events and ("failure", "ValueError") in events


def test_the_executor_works_like_a_thread_pool_executor(app: App) -> None:
    add = app.task(jobtasks.add)
    with working(app):
        with app.executor() as pool:
            future = pool.submit(add, 1, 2)
            assert isinstance(future, concurrent.futures.Future)
            assert future.result(timeout=10) == 3
            assert list(pool.map(add, [1, 2, 3], [10, 20, 30], timeout=10)) == [11, 22, 33]
            futures = [pool.submit(jobtasks.add, i, i) for i in range(5)]  # a plain function
            done = {f.result() for f in concurrent.futures.as_completed(futures, timeout=10)}
            assert done == {0, 2, 4, 6, 8}
            failing = pool.submit(jobtasks.fail, "nope")
            assert isinstance(failing.exception(timeout=10), JobFailed)
        with pytest.raises(RuntimeError, match="shutdown"):
            pool.submit(add, 1, 1)


def test_executor_futures_cancel_jobs_that_have_not_started(app: App) -> None:
    pool = app.executor()
    future = pool.submit(app.task(jobtasks.add), 1, 1)
    assert future.cancel() is True and future.cancelled()
    assert future.job.status == "cancelled"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="top level"):
        pool.submit(lambda: 1)


def test_task_options_are_checked(app: App) -> None:
    with pytest.raises(TypeError, match="unknown task option"):
        app.task(retry=3)(jobtasks.add)
    with pytest.raises(ValueError, match="retries"):
        app.task(retries=-1)(jobtasks.add)
    with pytest.raises(ValueError, match="order"):
        app.queue("q", order="random")
    add = app.task(jobtasks.add)
    assert add(2, 2) == 4  # calling a task runs it here
    with pytest.raises(ValueError, match="delay"):
        add.apply_async((1, 1), delay=-1)
