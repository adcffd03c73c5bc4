"""A store that cannot serve a feature says so where it is asked for: NotSupported, a StoreError
naming the feature, the store and what to use instead -- before anything is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import baozi
from baozi import App, Deque, LifoQueue, NotSupported, PriorityQueue, Queue, StoreError
from baozi.backends import SCHEMES, open_store
from baozi.backends.base import FEATURES
from baozi.backends.memory import MemoryStore


class FifoOnlyStore(MemoryStore):
    """A memory store that declares it cannot order, reorder or rank (as a broker cannot)."""

    unsupported = {
        "position": "ask the job's status instead",
        "lifo": "use a FIFO Queue",
        "priority": "use one queue per priority",
        "cancel": "let the job run and ignore its result",
    }


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(SCHEMES, "fifo-only", f"{__name__}:FifoOnlyStore")
    yield "fifo-only://not-supported"


def test_every_declared_feature_is_one_the_contract_names() -> None:
    assert set(FifoOnlyStore.unsupported) <= set(FEATURES)


def test_the_stores_baozi_ships_support_every_feature() -> None:
    for scheme in ("memory", "sqlite", "redis"):
        cls = baozi.backends.store_class(f"{scheme}://x" if scheme != "sqlite" else "sqlite://")
        assert cls.unsupported == {}, scheme


def test_a_queue_variant_the_store_cannot_order_is_refused_when_opened(url: str) -> None:
    with Queue("fifo", url=url) as q:  # FIFO is fine
        q.put(1)
        assert q.get(timeout=1) == 1
        q.task_done()
    for cls, feature in ((LifoQueue, "pushing to the front"), (PriorityQueue, "ordering")):
        with pytest.raises(NotSupported, match=feature) as caught:
            cls("other", url=url)
        assert isinstance(caught.value, StoreError)
        assert caught.value.store == "fifo-only://not-supported"
    with pytest.raises(NotSupported, match="use a FIFO Queue"):
        Deque("d", url=url)


def test_a_job_option_the_store_cannot_serve_fails_at_the_call_and_enqueues_nothing(
    url: str,
) -> None:
    app = App(url)
    task = app.task(name="t")(lambda: None)
    job = task.delay()
    with pytest.raises(NotSupported, match="one queue per priority") as caught:
        task.apply_async(priority=5)
    assert caught.value.feature.startswith("ordering by priority")
    with pytest.raises(NotSupported, match="pushing to the front"):
        task.apply_async(front=True)
    app.queue("stack", order="lifo")
    with pytest.raises(NotSupported):
        app.task(name="s", queue="stack")(lambda: None).delay()
    assert open_store(url).counts("default").total == 1  # only the first
    with pytest.raises(NotSupported, match="ask the job's status instead"):
        job.position()
    with pytest.raises(NotSupported, match="cancel"):
        job.cancel()
    assert job.status == "queued"
