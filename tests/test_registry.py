"""The per-process registry that every handle on one store shares: one value per key, made by the
first acquire, closed by the last release, and never shared with a forked child."""

from __future__ import annotations

import pytest

from baozi.backends import _registry
from baozi.backends._registry import Registry


def _registry_of(closed: list[str]) -> Registry[str, list[str]]:
    return Registry(lambda key: [key], lambda value: closed.append(value[0]))


def test_handles_on_one_key_share_one_value_until_the_last_lets_go() -> None:
    closed: list[str] = []
    shared = _registry_of(closed)
    a, b = shared.acquire("x"), shared.acquire("x")
    assert a is b and a is not shared.acquire("y")
    shared.release("x")
    assert closed == [] and "x" in shared
    shared.release("x")
    assert closed == ["x"] and "x" not in shared
    assert shared.acquire("x") is not a  # made again for the next handle


def test_a_forked_child_gets_its_own_value(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    shared = _registry_of(closed)
    parent = shared.acquire("x")
    monkeypatch.setattr(_registry, "current_pid", lambda: -1)  # as in a child after fork()
    child = shared.acquire("x")
    assert child is not parent
    shared.release("x")
    assert closed == ["x"]  # the child's, not the parent's
    monkeypatch.undo()
    assert "x" in shared
