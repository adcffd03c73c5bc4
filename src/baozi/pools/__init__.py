"""Pools by name; each kind is imported only when asked for."""

from __future__ import annotations

import importlib

from .base import Call, Pool, WorkerLost

__all__ = ["POOLS", "Call", "Pool", "WorkerLost", "make_pool"]

POOLS: dict[str, str] = {
    "thread": "baozi.pools.thread:ThreadPool",
    "process": "baozi.pools.process:ProcessPool",
    "async": "baozi.pools.aio:AsyncPool",
    "gevent": "baozi.pools.green:GeventPool",
}


def pool_class(kind: str) -> type[Pool]:
    target = POOLS.get(kind)
    if target is None:
        raise ValueError(f"unknown pool {kind!r}: use one of {', '.join(POOLS)}")
    module, name = target.split(":")
    cls: type[Pool] = getattr(importlib.import_module(module), name)
    return cls


def make_pool(kind: str, concurrency: int | None = None, **options: object) -> Pool:
    cls = pool_class(kind)
    return cls(concurrency or cls.default_concurrency, **options)
