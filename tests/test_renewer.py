"""The renewer keeps each registered group of holds alive every third of its ttl, until the holds
are given back; a forked child starts with nothing to renew."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from dataclasses import dataclass, field

import pytest

from baozi._renewer import Group, Renewer, renewer


@dataclass(frozen=True)
class Recorded(Group):
    """A group whose renewals are written down; ``keep`` decides how many holds the store had."""

    name: str
    ttl: float
    renewals: list[tuple[float, list[str]]] = field(default_factory=list, compare=False)
    """Every attempt: when, and with which members."""
    lost_counts: list[int] = field(default_factory=list, compare=False)
    errors: list[Exception] = field(default_factory=list, compare=False)
    renewed: threading.Event = field(default_factory=threading.Event, compare=False)
    keep: object = field(default=None, compare=False)  # a callable(members) -> int, or None

    def renew(self, members: list[str]) -> int:
        self.renewals.append((time.monotonic(), members))
        self.renewed.set()
        return len(members) if self.keep is None else self.keep(members)  # type: ignore[operator]

    def lost(self, count: int) -> None:
        self.lost_counts.append(count)

    def failed(self, exc: Exception, count: int) -> None:
        self.errors.append(exc)


def wait_for_renewals(group: Recorded, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(group.renewals) < n:
        group.renewed.clear()
        assert group.renewed.wait(deadline - time.monotonic()), "no renewal came"


def test_a_group_is_renewed_every_third_of_its_ttl_with_all_its_members() -> None:
    r, group = Renewer(), Recorded("q", ttl=0.3)
    registered = time.monotonic()
    r.register(group, "a", "b")
    r.register(group, "c")
    wait_for_renewals(group, 3)
    times = [registered] + [t for t, _ in group.renewals]
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(times))
    assert group.renewals[0][1] == ["a", "b", "c"]
    assert r.held() == {group: ["a", "b", "c"]}


def test_equal_groups_share_their_members() -> None:
    r = Renewer()
    r.register(Recorded("q", ttl=30.0), "a")
    r.register(Recorded("q", ttl=30.0), "b")
    assert list(r.held().values()) == [["a", "b"]]


def test_members_given_back_are_no_longer_renewed() -> None:
    r, group = Renewer(), Recorded("q", ttl=0.15)
    r.register(group, "a", "b")
    r.unregister(group, "a", "unknown")
    wait_for_renewals(group, 1)
    assert group.renewals[0][1] == ["b"]
    r.unregister(group, "b")
    assert r.held() == {}
    count = len(group.renewals)
    time.sleep(0.3)  # two renewal periods: nothing is due any more
    assert len(group.renewals) == count


def test_a_group_due_sooner_wakes_the_sleeping_thread() -> None:
    r, slow, fast = Renewer(), Recorded("slow", ttl=3600.0), Recorded("fast", ttl=0.3)
    r.register(slow, "a")  # the thread now sleeps for twenty minutes
    time.sleep(0.05)
    started = time.monotonic()
    r.register(fast, "b")
    wait_for_renewals(fast, 1)
    assert fast.renewals[0][0] - started < 1.0
    assert slow.renewals == []


def test_a_hold_that_ran_out_is_reported_lost() -> None:
    r, group = Renewer(), Recorded("q", ttl=0.15, keep=lambda members: 0)
    r.register(group, "a", "b")
    wait_for_renewals(group, 1)
    deadline = time.monotonic() + 5
    while not group.lost_counts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group.lost_counts[0] == 2


def test_a_hold_given_back_while_it_was_renewed_is_not_reported_lost() -> None:
    r = Renewer()

    def give_back_b(members: list[str]) -> int:
        r.unregister(group, "b")  # released while the renewal call ran
        return 1

    group = Recorded("q", ttl=0.15, keep=give_back_b)
    r.register(group, "a", "b")
    wait_for_renewals(group, 2)
    assert group.lost_counts == []


def test_a_failed_renewal_is_reported_and_tried_again() -> None:
    def down(members: list[str]) -> int:
        raise ConnectionError("store down")

    r, group = Renewer(), Recorded("q", ttl=0.15, keep=down)
    r.register(group, "a")
    wait_for_renewals(group, 3)
    assert len(group.errors) >= 2 and isinstance(group.errors[0], ConnectionError)


def _child_renewer_is_empty(conn) -> None:  # type: ignore[no-untyped-def]
    conn.send(renewer().held() == {})


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_child_has_a_renewer_of_its_own_holding_nothing() -> None:
    group = Recorded("parent", ttl=3600.0)
    renewer().register(group, "held-by-the-parent")
    try:
        ctx = multiprocessing.get_context("fork")
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=_child_renewer_is_empty, args=(child_end,))
        child.start()
        assert parent_end.poll(30) and parent_end.recv() is True
        child.join(30)
        assert child.exitcode == 0
    finally:
        renewer().unregister(group, "held-by-the-parent")
