"""A job's workflow graph as the API shows it: the jobs linked to it by dependencies, in layers."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TypedDict

from ..backends.base import JobRecord

__all__ = ["MAX_GRAPH", "GraphView", "job_graph"]

MAX_GRAPH = 200
"""The most jobs a graph holds; a workflow bigger than this is shown in part (``truncated``)."""


class NodeView(TypedDict):
    id: str
    task: str | None
    queue: str | None
    status: str | None
    layer: int


class EdgeView(TypedDict):
    parent: str
    child: str


class GraphView(TypedDict):
    id: str
    nodes: list[NodeView]
    edges: list[EdgeView]
    truncated: bool


def job_graph(
    read: Callable[[str], JobRecord | None], root: JobRecord, limit: int = MAX_GRAPH
) -> GraphView:
    """The jobs reachable from ``root`` through parents and children, either way and any number
    of steps (at most ``limit`` of them, nearest first), read one by one with ``read``. A job
    whose record is gone (forgotten, purged) is a node with no task, queue or status."""
    found: dict[str, JobRecord | None] = {root.id: root}
    todo = deque([root])
    truncated = False
    while todo:
        rec = todo.popleft()
        for other in (*rec.parents, *rec.children):
            if other in found:
                continue
            if len(found) >= limit:
                truncated = True
                continue
            found[other] = linked = read(other)
            if linked is not None:
                todo.append(linked)
    edges = sorted(_edges(found))
    layers = _layers(list(found), edges)
    order = {job_id: i for i, job_id in enumerate(found)}
    nodes: list[NodeView] = [
        {
            "id": job_id,
            "task": None if rec is None else rec.task,
            "queue": None if rec is None else rec.queue,
            "status": None if rec is None else rec.status,
            "layer": layers[job_id],
        }
        for job_id, rec in found.items()
    ]
    nodes.sort(key=lambda n: (n["layer"], _created(found[n["id"]]), order[n["id"]]))
    return {
        "id": root.id,
        "nodes": nodes,
        "edges": [{"parent": p, "child": c} for p, c in edges],
        "truncated": truncated,
    }


def _created(rec: JobRecord | None) -> float:
    return float("inf") if rec is None else rec.created_at


def _edges(found: dict[str, JobRecord | None]) -> set[tuple[str, str]]:
    """(parent, child) pairs between the jobs found, as either end's record tells them."""
    out: set[tuple[str, str]] = set()
    for job_id, rec in found.items():
        if rec is None:
            continue
        out.update((p, job_id) for p in rec.parents if p in found)
        out.update((job_id, c) for c in rec.children if c in found)
    return out


def _layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each job's layer: 0 for a job with no parent among them, else one more than its deepest
    parent's (the longest path to it; dependencies form no cycle, as a job can only depend on
    jobs made before it)."""
    parents: dict[str, list[str]] = {i: [] for i in ids}
    children: dict[str, list[str]] = {i: [] for i in ids}
    for p, c in edges:
        parents[c].append(p)
        children[p].append(c)
    layer = dict.fromkeys(ids, 0)
    left = {i: len(parents[i]) for i in ids}
    ready = deque(i for i in ids if not left[i])
    while ready:
        job_id = ready.popleft()
        for c in children[job_id]:
            layer[c] = max(layer[c], layer[job_id] + 1)
            left[c] -= 1
            if not left[c]:
                ready.append(c)
    return layer
