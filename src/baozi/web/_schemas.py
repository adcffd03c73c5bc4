"""The component schemas of the OpenAPI document: jobs, their graphs, queues and workers."""

from __future__ import annotations

from typing import Any

from ..backends.base import ON_DEPENDENCY_FAILURE, STATUSES, UNIQUE_WHILE
from ._graph import MAX_GRAPH
from ._wire import (
    DEQUE_PREFIX,
    MAX_DELAY,
    MAX_DEPENDENCIES,
    MAX_JOB_ID,
    MAX_PRIORITY,
    MAX_UNIQUE_KEY,
    NAME_PATTERN,
)

__all__ = ["QUEUE", "job_schemas", "ref", "service_schemas"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NAME_PATTERN}
QUEUE = {**_NAME, "not": {"pattern": f"^{DEQUE_PREFIX}"}}
_NO_NUL = "^[^\\u0000]*$"
_IDS = {"type": "array", "items": {"type": "string"}}


def job_schemas(tasks: list[str]) -> dict[str, Any]:
    job_fields = _job_fields()
    summary = ["id", "task", "queue", "status", "position", "position_supported", "summary"]
    summary += ["eta_seconds", "attempts"]
    summary += ["scheduled_for", "waiting_for", "url"]
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong."},
                "field": {"type": "string", "description": "The request field at fault."},
            },
        },
        "NewJob": _new_job(tasks),
        "BatchJob": _batch_job(tasks),
        "Job": {"type": "object", "required": summary, "properties": job_fields},
        **_graph_schemas(),
        "Progress": {
            "type": "object",
            "required": ["fraction"],
            "properties": {"fraction": {"type": "number"}, "message": {"type": ["string", "null"]}},
        },
        "JobError": {
            "type": "object",
            "required": ["type", "message", "traceback"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "traceback": {"type": "string"},
            },
        },
        "JobList": {
            "type": "object",
            "required": ["jobs", "limit"],
            "properties": {
                "jobs": {"type": "array", "items": ref("Job")},
                "limit": {"type": "integer"},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as cursor for the next page; null on the last. A "
                    "page may be shorter than limit and still have one.",
                },
                "offset": {"type": "integer", "description": "With offset paging only."},
                "next_offset": {"type": ["integer", "null"]},
            },
        },
        "NewBatch": {
            "type": "object",
            "required": ["jobs"],
            "additionalProperties": False,
            "properties": {
                "jobs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": ref("BatchJob"),
                }
            },
        },
        "Batch": {
            "type": "object",
            "required": ["jobs"],
            "properties": {
                "jobs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "task", "queue", "status", "position", "url"],
                        "properties": {
                            k: job_fields[k]
                            for k in (
                                "id",
                                "task",
                                "queue",
                                "status",
                                "position",
                                "position_supported",
                                "summary",
                                "eta_seconds",
                                "url",
                            )
                        },
                    },
                }
            },
        },
        **{
            name: {
                "type": "object",
                "required": ["status"],
                "additionalProperties": False,
                "properties": {"status": {"type": "string", "enum": statuses}, "queue": QUEUE},
            }
            for name, statuses in (
                ("BulkRetry", ["failed", "cancelled"]),
                ("BulkForget", ["succeeded", "failed", "cancelled"]),
            )
        },
        "BulkDone": {
            "type": "object",
            "required": ["status", "queue"],
            "properties": {
                "status": {"type": "string"},
                "queue": {"type": ["string", "null"]},
                "retried": {"type": "integer", "minimum": 0},
                "forgotten": {"type": "integer", "minimum": 0},
            },
        },
        "Attempts": {
            "type": "object",
            "required": ["id", "attempts"],
            "properties": {
                "id": {"type": "string"},
                "attempts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["attempt", "outcome"],
                        "properties": {
                            "run": {
                                "type": "integer",
                                "minimum": 1,
                                "description": "Its place among all the job's runs.",
                            },
                            "attempt": {
                                "type": "integer",
                                "minimum": 1,
                                "description": "Its attempt number (counted anew after a "
                                "retry by hand).",
                            },
                            "worker": {"type": ["string", "null"]},
                            "started_at": _NULLABLE_NUMBER,
                            "finished_at": _NULLABLE_NUMBER,
                            "outcome": {
                                "type": ["string", "null"],
                                "description": "succeeded, failed, retried, running, "
                                "cancelled, or lost (its worker stopped before it told).",
                            },
                            "error": {
                                "type": ["object", "null"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }


def service_schemas() -> dict[str, Any]:
    queue_fields = {
        name: {"type": "integer", "minimum": 0}
        for name in (
            "waiting",
            "ready",
            "scheduled",
            "running",
            "succeeded",
            "failed",
            "cancelled",
        )
    }
    return {
        "Queue": {
            "type": "object",
            "required": ["name", *queue_fields, "rate_per_second", "pausable", "paused"],
            "properties": {
                "name": {"type": "string"},
                **queue_fields,
                "finished_last_minute": {"type": "integer", "minimum": 0},
                "rate_per_second": {
                    "type": ["number", "null"],
                    "description": "Jobs finished per second over the last minute; null "
                    "before any was seen to finish.",
                },
                "maxsize": {"type": "integer", "minimum": 0},
                "oldest_ready_at": {
                    **_NULLABLE_NUMBER,
                    "description": "When its oldest ready job was made; null when none waits.",
                },
                "latency_seconds": {
                    **_NULLABLE_NUMBER,
                    "description": "How long its oldest ready job has waited.",
                },
                "pausable": {"type": "boolean"},
                "paused": {"type": ["boolean", "null"]},
            },
        },
        "QueueList": {
            "type": "object",
            "required": ["queues"],
            "properties": {"queues": {"type": "array", "items": ref("Queue")}},
        },
        "QueueDeleted": {
            "type": "object",
            "required": ["name", "deleted"],
            "properties": {"name": {"type": "string"}, "deleted": {"type": "boolean"}},
        },
        "QueueState": {
            "type": "object",
            "required": ["name", "paused"],
            "properties": {"name": {"type": "string"}, "paused": {"type": ["boolean", "null"]}},
        },
        "Worker": {
            "type": "object",
            "required": ["id", "host", "pid", "pool", "concurrency", "busy", "last_heartbeat"],
            "properties": {
                "id": {"type": "string"},
                "host": {"type": "string"},
                "pid": {"type": "integer"},
                "pool": {"type": "string"},
                "concurrency": {"type": "integer"},
                "busy": {"type": "integer", "description": "Slots running a job."},
                "queues": {"type": "array", "items": {"type": "string"}},
                "started_at": {"type": "number"},
                "last_heartbeat": {"type": "number"},
                "jobs": {**_IDS, "description": "The jobs it holds now (from the leases)."},
                "stale": {
                    "type": "boolean",
                    "description": "It has missed two heartbeats: it may be stuck or gone.",
                },
                "dead": {
                    "type": "boolean",
                    "description": "Its heartbeats stopped: the store no longer lists it (this "
                    "server saw it alive in the last ten minutes).",
                },
            },
        },
        "WorkerList": {
            "type": "object",
            "required": ["workers"],
            "properties": {
                "workers": {"type": "array", "items": ref("Worker")},
                "gone": {
                    "type": "array",
                    "description": "Lease holders with no heartbeat: workers that died with "
                    "jobs in hand, which run again once their leases run out.",
                    "items": {
                        "type": "object",
                        "required": ["id", "jobs"],
                        "properties": {"id": {"type": "string"}, "jobs": _IDS},
                    },
                },
            },
        },
        "Throughput": {
            "type": "object",
            "required": ["bucket_seconds", "end", "queues"],
            "properties": {
                "window": {"type": "string", "enum": ["10m", "1h", "24h"]},
                "window_seconds": {"type": "integer"},
                "bucket_seconds": {"type": "number"},
                "start": {"type": "number", "description": "When the first bucket begins."},
                "end": {"type": "number", "description": "When the last bucket ends."},
                "queues": {
                    "type": "object",
                    "description": "Per queue: with a window, its succeeded, failed and "
                    "retried runs per bucket; without, its finishes per bucket.",
                    "additionalProperties": {
                        "oneOf": [
                            _COUNTS,
                            {"type": "object", "additionalProperties": _COUNTS},
                        ]
                    },
                },
            },
        },
        "Depth": {
            "type": "object",
            "required": ["window", "name", "bucket_seconds", "start", "end", "series"],
            "properties": {
                "window": {"type": "string"},
                "name": {"type": "string"},
                "window_seconds": {"type": "integer"},
                "bucket_seconds": {"type": "number"},
                "start": {"type": "number"},
                "end": {"type": "number"},
                "series": {
                    "type": "object",
                    "description": "The largest count sampled in each bucket (null: none).",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": ["integer", "null"]},
                    },
                },
            },
        },
        "TaskStats": {
            "type": "object",
            "required": ["window", "tasks"],
            "properties": {
                "window": {"type": "string"},
                "tasks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["task", "queue", "succeeded", "failed", "failure_rate"],
                        "properties": {
                            "task": {"type": "string"},
                            "queue": {"type": "string"},
                            "succeeded": {"type": "integer", "minimum": 0},
                            "failed": {"type": "integer", "minimum": 0},
                            "retried": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Of the failed runs, those whose job was "
                                "scheduled to run again.",
                            },
                            "failure_rate": _NULLABLE_NUMBER,
                            "run_ms": {
                                "type": "object",
                                "properties": {p: _NULLABLE_NUMBER for p in ("p50", "p95", "p99")},
                            },
                        },
                    },
                },
            },
        },
        "Schedules": {
            "type": "object",
            "required": ["schedules"],
            "properties": {
                "schedules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "task", "schedule", "next_run", "overdue"],
                        "properties": {
                            "name": {"type": "string"},
                            "task": {"type": "string"},
                            "queue": {"type": "string"},
                            "schedule": {"type": "string"},
                            "args": {"type": "array"},
                            "kwargs": {"type": "object"},
                            "last_run": _NULLABLE_NUMBER,
                            "next_run": {"type": "number"},
                            "overdue": {"type": "boolean"},
                        },
                    },
                }
            },
        },
        "Purged": {
            "type": "object",
            "required": ["name", "purged"],
            "properties": {"name": {"type": "string"}, "purged": {"type": "integer"}},
        },
        "Session": {
            "type": "object",
            "required": ["auth", "token_required"],
            "properties": {
                "auth": {"type": "string", "enum": ["none", "cookie", "bearer"]},
                "token_required": {"type": "boolean"},
            },
        },
    }


_COUNTS = {"type": "array", "items": {"type": "integer"}}


def _job_fields() -> dict[str, Any]:
    return {
        "id": {"type": "string"},
        "task": {"type": "string"},
        "queue": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "priority": {"type": ["number", "string"]},
        "position": {
            "type": ["integer", "null"],
            "description": "Jobs that will be served before this one (0 = next): a number "
            "exactly when the status is queued (read with it, at the same moment), on a "
            "store that can rank; always null where position_supported is false.",
        },
        "position_supported": {
            "type": "boolean",
            "description": "False where the jobs travel through a broker that cannot say how "
            "many are ahead of one (a RabbitMQ transport).",
        },
        "summary": {
            "type": "string",
            "description": 'Where it stands, in words: "queued, 3 ahead of it", "running, 40% '
            '(step 2)", "scheduled for 2026-12-07T09:30:00+00:00", "waiting for 2 jobs", or how it '
            "ended.",
        },
        "scheduled_for": {
            **_NULLABLE_NUMBER,
            "description": "When a scheduled job becomes ready (Unix time); null otherwise.",
        },
        "waiting_for": {
            "type": ["integer", "null"],
            "description": "How many of the jobs it depends on have not ended, while it is "
            "waiting; null otherwise.",
        },
        "eta_seconds": {
            "type": ["number", "null"],
            "description": "Estimated seconds until it is done (0 once it has ended): its "
            "place, the free and total slots of the live workers serving its queue and its "
            "task's typical run time as workers report it, or the queue's completion rate "
            "once ten or more of its jobs finished in the last minute. Null when nothing is "
            "known: no live worker serves the queue, no run of the task was reported, or it "
            "waits for other jobs.",
        },
        "attempts": {"type": "integer"},
        "created_at": {"type": "number"},
        "started_at": _NULLABLE_NUMBER,
        "finished_at": _NULLABLE_NUMBER,
        "args": {
            "description": "The positional arguments (null if this server cannot decode them)."
        },
        "kwargs": {"description": "The keyword arguments."},
        "progress": {"oneOf": [{"type": "null"}, ref("Progress")]},
        "result": {"description": "The value the task returned, once it succeeded."},
        "error": {"oneOf": [{"type": "null"}, ref("JobError")]},
        "url": {"type": "string"},
        "unique_key": {
            "type": ["string", "null"],
            "description": "The key no other job may hold while this one does.",
        },
        "worker": {
            "type": ["string", "null"],
            "description": "The worker running it, or the one that ran it last.",
        },
        "parents": {
            **_IDS,
            "description": "The jobs it depends on, in the order given (in a single job's view).",
        },
        "children": {
            **_IDS,
            "description": "The jobs that depend on it, oldest first (in a single job's view).",
        },
        "on_dependency_failure": {
            "type": "string",
            "enum": list(ON_DEPENDENCY_FAILURE),
            "description": "What becomes of it if a job it depends on does not succeed "
            "(in a single job's view).",
        },
        "deduplicated": {
            "type": "boolean",
            "description": "In the answer to an enqueue: true when another job held the unique "
            "key, and this is that job (nothing was made).",
        },
    }


_NOT_IN_BATCH = (
    "delay",
    "front",
    "unique_key",
    "unique_while",
    "unique_for",
    "depends_on",
    "on_dependency_failure",
)


def _batch_job(tasks: list[str]) -> dict[str, Any]:
    """A job of a batch: the fields of a POST /api/jobs body that a batch files (plain jobs,
    ready now, at the back of their queues)."""
    job = _new_job(tasks)
    fields = {k: v for k, v in job["properties"].items() if k not in _NOT_IN_BATCH}
    return {
        **job,
        "properties": fields,
        "description": "A job as POST /api/jobs takes it, without "
        + ", ".join(_NOT_IN_BATCH)
        + ": a job that needs them is sent alone.",
    }


def _new_job(tasks: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["task"],
        "properties": {
            "task": {**_NAME, "enum": tasks, "description": "A task registered on the app."},
            "args": {"type": "array", "default": []},
            "kwargs": {"type": "object", "default": {}},
            "queue": {
                "oneOf": [{"type": "null"}, QUEUE],
                "description": "Default: the task's.",
            },
            "priority": {
                "type": ["number", "null"],
                "minimum": -MAX_PRIORITY,
                "maximum": MAX_PRIORITY,
                "description": "Lower runs first. Default: the task's.",
            },
            "delay": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": MAX_DELAY,
                "description": "Seconds before the job becomes ready.",
            },
            "front": {
                "type": ["boolean", "null"],
                "default": False,
                "description": "Put the job at the head of its queue.",
            },
            "unique_key": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": MAX_UNIQUE_KEY,
                "pattern": _NO_NUL,
                "description": "While a job of this key holds it (see unique_while and "
                "unique_for), no other is made: the answer is that job, 200, with "
                "deduplicated true. Default: none, or the task's own (unique=True).",
            },
            "unique_while": {
                "type": ["string", "null"],
                "enum": [*UNIQUE_WHILE, None],
                "description": "When the key is held: before the job runs (queued), while "
                "it runs (running), or both. Default: the task's (queued_or_running).",
            },
            "unique_for": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": MAX_DELAY,
                "description": "Seconds the key stays held after the job finished.",
            },
            "depends_on": {
                "type": ["array", "null"],
                "maxItems": MAX_DEPENDENCIES,
                "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_JOB_ID,
                    "pattern": _NO_NUL,
                },
                "description": "Ids of jobs that must succeed first: until they have, the "
                "job is waiting. An id the store holds no job for is refused (422).",
            },
            "on_dependency_failure": {
                "type": ["string", "null"],
                "enum": [*ON_DEPENDENCY_FAILURE, None],
                "default": "cancel",
                "description": "If a job it depends on fails or is cancelled: cancel this "
                "one, fail it (DependencyFailed), or run it anyway.",
            },
        },
    }


def _graph_schemas() -> dict[str, Any]:
    return {
        "Forgotten": {
            "type": "object",
            "required": ["id", "forgotten"],
            "properties": {"id": {"type": "string"}, "forgotten": {"type": "boolean"}},
        },
        "Graph": {
            "type": "object",
            "required": ["id", "nodes", "edges", "truncated"],
            "properties": {
                "id": {"type": "string"},
                "nodes": {"type": "array", "items": ref("GraphNode"), "maxItems": MAX_GRAPH},
                "edges": {"type": "array", "items": ref("GraphEdge")},
                "truncated": {
                    "type": "boolean",
                    "description": f"True when more jobs are linked than the {MAX_GRAPH} shown.",
                },
            },
        },
        "GraphNode": {
            "type": "object",
            "required": ["id", "task", "queue", "status", "layer"],
            "properties": {
                "id": {"type": "string"},
                "task": {"type": ["string", "null"]},
                "queue": {"type": ["string", "null"]},
                "status": {
                    "type": ["string", "null"],
                    "enum": [*STATUSES, None],
                    "description": "null: the job's record is gone (forgotten or purged).",
                },
                "layer": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "0 for a job with no parent shown, else one more than its "
                    "deepest parent's.",
                },
            },
        },
        "GraphEdge": {
            "type": "object",
            "required": ["parent", "child"],
            "properties": {
                "parent": {"type": "string", "description": "The job depended on."},
                "child": {"type": "string", "description": "The job that depends on it."},
            },
        },
    }
