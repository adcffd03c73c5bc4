"""Store fixtures: every queue test runs on every store baozi has."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from baozi.backends import open_store
from baozi.backends.base import Store

STORES = ["memory", "sqlite"]
SHARED_STORES = ["sqlite"]  # stores that other processes can open


def make_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    raise AssertionError(kind)


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL for each kind of store."""
    return make_url(request.param, tmp_path)


@pytest.fixture(params=SHARED_STORES)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL that several processes can share."""
    return make_url(request.param, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = open_store(url)
    yield s
    s.close()
