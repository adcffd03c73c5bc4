"""What ``pip install 'baozi[...]'`` offers matches what baozi has."""

from __future__ import annotations

import tomllib
from pathlib import Path

from baozi.backends import INTEROP, SCHEMES

ROOT = Path(__file__).resolve().parent.parent
# Extras for a pool, a middleware, and for working on baozi.
NOT_STORES = {"test", "bench", "dev", "gevent", "otel", "web", "monitor"}


def test_each_store_extra_belongs_to_a_store_that_exists() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    store_extras = set(project["optional-dependencies"]) - NOT_STORES
    # A driver nothing imports is no feature: postgres and amqp return with their stores.
    # amqp is a broker's, not a store's: it opens baozi.Queue on amqp:// (backends.INTEROP).
    known = set(SCHEMES) | set(INTEROP)
    assert store_extras <= known, store_extras - known
