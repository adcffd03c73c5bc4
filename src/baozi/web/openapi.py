"""The OpenAPI 3.1 document served at ``/openapi.json``: every JSON operation, status and body.

The event stream (``GET /api/events``) and the login form's targets (``POST /login``,
``/logout``) are the dashboard's, and the README describes them."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..backends.base import STATUSES
from ._graph import MAX_GRAPH
from ._schemas import QUEUE, job_schemas, ref, service_schemas
from ._wire import MAX_BATCH_JOBS, MAX_LIMIT, MAX_OFFSET, WINDOWS

__all__ = ["openapi_document"]


def _json(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return out


def _error(description: str, **headers: str) -> dict[str, Any]:
    return _json(ref("Error"), description, **headers)


_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "A job id, as returned when the job was enqueued.",
}
_QUEUE_NAME = {"name": "name", "in": "path", "required": True, "schema": QUEUE}
_LINKS = {
    f"{action}Job": {"operationId": f"{action}Job", "parameters": {"job_id": "$response.body#/id"}}
    for action in ("get", "cancel", "retry", "forget")
}
_LINKS["getJobGraph"] = {
    "operationId": "getJobGraph",
    "parameters": {"job_id": "$response.body#/id"},
}


_UNAUTHORIZED = _error("A token is needed (the server was started with one).")
_WINDOW = {
    "name": "window",
    "in": "query",
    "schema": {"type": "string", "enum": list(WINDOWS), "default": "10m"},
    "description": "How far back: 10 s buckets over 10m, a minute over 1h, 15 minutes over 24h.",
}


def _job_operations() -> dict[str, Any]:
    unauthorized, not_found, job = _UNAUTHORIZED, _error("No job with this id."), ref("Job")
    return {
        "/api/jobs": {
            "post": {
                "operationId": "enqueueJob",
                "summary": "Enqueue a job; answers at once with its place in line.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewJob")}},
                },
                "responses": {
                    "200": {
                        **_json(
                            job,
                            "Another job holds the unique key: that job, with deduplicated "
                            "true; nothing was enqueued.",
                            Location="The job's URL.",
                        ),
                        "links": _LINKS,
                    },
                    "202": {**_json(job, "Enqueued.", Location="The job's URL."), "links": _LINKS},
                    "401": unauthorized,
                    "404": _error("No task of that name; nothing was enqueued."),
                    "413": _error("The body is over 1 MiB."),
                    "415": _error("The body is not JSON."),
                    "422": _error(
                        "Malformed JSON, a field of the wrong type, arguments the task cannot "
                        "take (checked against its signature), or a job in depends_on the store "
                        "does not hold; `field` names it. Nothing was enqueued."
                    ),
                    "429": _error(
                        "The queue is at its maxsize.", **{"Retry-After": "Seconds to wait."}
                    ),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "Jobs, newest first, a page at a time.",
                "parameters": [
                    {"name": "queue", "in": "query", "schema": QUEUE},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(STATUSES)},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": 50,
                        },
                    },
                    {
                        "name": "task",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "number", "minimum": 0, "maximum": 1e11},
                        "description": "Made at or after this time (Unix time).",
                    },
                    {
                        "name": "until",
                        "in": "query",
                        "schema": {"type": "number", "minimum": 0, "maximum": 1e11},
                        "description": "Made before this time (Unix time).",
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "A job's id, or part of a task's name (any case).",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "The next_cursor of the page before (keyset paging: "
                        "jobs made meanwhile do not shift the pages).",
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                        "description": "Offset paging, for older clients: only with queue and "
                        "status, not with cursor or the other filters.",
                    },
                ],
                "responses": {
                    "200": _json(ref("JobList"), "A page of jobs."),
                    "401": unauthorized,
                    "422": _error("A query parameter is out of range; `field` names it."),
                },
            },
        },
        "/api/jobs:batch": {
            "post": {
                "operationId": "enqueueBatch",
                "summary": f"Enqueue up to {MAX_BATCH_JOBS} jobs of any tasks and queues, all "
                "or none, in one store step; answers with each one's place, in order.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewBatch")}},
                },
                "responses": {
                    "202": _json(ref("Batch"), "Every job enqueued."),
                    "401": unauthorized,
                    "409": _error("The app has enqueue middleware: send jobs one by one."),
                    "413": _error("The body is over 16 MiB, or one job is over 1 MiB."),
                    "415": _error("The body is not JSON."),
                    "422": _error(
                        "An entry is malformed, names no task, cannot be filed with others "
                        "(depends_on, unique_key, delay, front), or the batch holds more jobs "
                        "than a bounded queue ever can; `field` names it (jobs[3].args). "
                        "Nothing was enqueued."
                    ),
                    "429": _error(
                        "A queue would go over its maxsize; nothing was enqueued.",
                        **{"Retry-After": "Seconds to wait."},
                    ),
                },
            }
        },
        **{
            f"/api/jobs:{action}": {
                "post": {
                    "operationId": f"{action}All",
                    "summary": summary,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref(schema)}},
                    },
                    "responses": {
                        "200": _json(ref("BulkDone"), "Done: how many."),
                        "401": unauthorized,
                        "415": _error("The body is not JSON."),
                        "422": _error("A status this action does not take, or a bad queue."),
                    },
                }
            }
            for action, schema, summary in (
                (
                    "retry",
                    "BulkRetry",
                    "Run again every failed (or cancelled) job, of one queue or all.",
                ),
                ("forget", "BulkForget", "Remove the records of every finished job of a status."),
            )
        },
        "/api/jobs/{job_id}/attempts": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "getJobAttempts",
                "summary": "Each run of the job: its worker, times, and how it ended.",
                "responses": {
                    "200": _json(ref("Attempts"), "The runs, oldest first."),
                    "401": unauthorized,
                    "404": not_found,
                },
            },
        },
        "/api/jobs/{job_id}": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "getJob",
                "summary": "A job's status, place in line, estimate, and its result or error.",
                "responses": {"200": _json(job, "The job."), "401": unauthorized, "404": not_found},
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a job that has not finished; a running one is stopped.",
                "responses": {
                    "200": _json(job, "Cancelled."),
                    "401": unauthorized,
                    "404": not_found,
                    "409": _error("The job has finished."),
                },
            },
        },
        "/api/jobs/{job_id}/retry": {
            "parameters": [_JOB_ID],
            "post": {
                "operationId": "retryJob",
                "summary": "Run a failed (or cancelled) job again.",
                "responses": {
                    "202": _json(job, "Queued again.", Location="The job's URL."),
                    "401": unauthorized,
                    "404": not_found,
                    "409": _error("The job is neither failed nor cancelled."),
                },
            },
        },
        "/api/jobs/{job_id}/forget": {
            "parameters": [_JOB_ID],
            "post": {
                "operationId": "forgetJob",
                "summary": "Remove a finished job's record (failed jobs are kept until this).",
                "responses": {
                    "200": _json(ref("Forgotten"), "Removed: the job's URL now answers 404."),
                    "401": unauthorized,
                    "404": not_found,
                    "409": _error("The job has not finished."),
                },
            },
        },
        "/api/jobs/{job_id}/graph": {
            "parameters": [_JOB_ID],
            "get": {
                "operationId": "getJobGraph",
                "summary": "The jobs linked to this one by dependencies, either way and any "
                f"number of steps (at most {MAX_GRAPH}), and their links.",
                "responses": {
                    "200": _json(ref("Graph"), "The graph, nodes in layers."),
                    "401": unauthorized,
                    "404": not_found,
                },
            },
        },
    }


def _service_operations() -> dict[str, Any]:
    unauthorized = _UNAUTHORIZED
    return {
        "/api/queues": {
            "get": {
                "operationId": "listQueues",
                "summary": "Every queue: jobs by state and the completion rate of the last minute.",
                "responses": {"200": _json(ref("QueueList"), "The queues."), "401": unauthorized},
            }
        },
        **{
            path.format(action=action): {
                "parameters": [where],
                "post": {
                    "operationId": f"{action}Queue{suffix}",
                    "summary": f"{action.capitalize()} a queue (where this baozi can){note}.",
                    "responses": {
                        "200": _json(ref("QueueState"), "Done."),
                        "401": unauthorized,
                        "404": _error("No such queue: none held a job, and the app names none."),
                        "409": _error("This baozi cannot pause queues."),
                        "422": _error("Not a queue name."),
                    },
                },
            }
            for action in ("pause", "resume")
            for path, where, suffix, note in (
                ("/api/queues/{{name}}/{action}", _QUEUE_NAME, "", ""),
                (
                    "/api/queues/{action}",
                    {**_QUEUE_NAME, "in": "query"},
                    "ByQuery",
                    ', named in the query (for names such as ".." that a path cannot carry)',
                ),
            )
        },
        **{
            path: {
                "parameters": [where],
                "post": {
                    "operationId": f"purgeQueue{suffix}",
                    "summary": "Remove every job of the queue: waiting, scheduled, running and "
                    "finished.",
                    "responses": {
                        "200": _json(ref("Purged"), "How many jobs were removed."),
                        "401": unauthorized,
                        "404": _error("No such queue."),
                        "422": _error("Not a queue name."),
                    },
                },
            }
            for path, where, suffix in (
                ("/api/queues/{name}/purge", _QUEUE_NAME, ""),
                ("/api/queues/purge", {**_QUEUE_NAME, "in": "query"}, "ByQuery"),
            )
        },
        **{
            path: {
                "parameters": [where, _WINDOW],
                "get": {
                    "operationId": f"getQueueDepth{suffix}",
                    "summary": "The queue's jobs by state over the window, as servers sampled "
                    "them (kept in the store).",
                    "responses": {
                        "200": _json(ref("Depth"), "The series."),
                        "401": unauthorized,
                        "404": _error("No such queue."),
                        "422": _error("Not a queue name, or not a window."),
                    },
                },
            }
            for path, where, suffix in (
                ("/api/queues/{name}/depth", _QUEUE_NAME, ""),
                ("/api/queues/depth", {**_QUEUE_NAME, "in": "query"}, "ByQuery"),
            )
        },
        "/api/tasks": {
            "parameters": [_WINDOW],
            "get": {
                "operationId": "getTaskStats",
                "summary": "Per task and queue: runs that succeeded and failed, the failure "
                "rate and run-time percentiles over the window (kept in the store).",
                "responses": {
                    "200": _json(ref("TaskStats"), "The statistics."),
                    "401": unauthorized,
                    "422": _error("Not a window."),
                },
            },
        },
        "/api/schedules": {
            "get": {
                "operationId": "listSchedules",
                "summary": "The app's periodic schedules with their last and next runs.",
                "responses": {
                    "200": _json(ref("Schedules"), "The schedules."),
                    "401": unauthorized,
                },
            }
        },
        "/api/session": {
            "get": {
                "operationId": "getSession",
                "summary": "How this request is let in: no token needed, the login cookie, or "
                "a bearer token.",
                "responses": {"200": _json(ref("Session"), "Let in."), "401": unauthorized},
            }
        },
        "/api/queues/{name}": {
            "parameters": [_QUEUE_NAME],
            "delete": {
                "operationId": "deleteQueue",
                "summary": "Forget an empty queue: its name, options and job totals.",
                "responses": {
                    "200": _json(ref("QueueDeleted"), "Deleted."),
                    "401": unauthorized,
                    "404": _error("No such queue."),
                    "409": _error("The queue holds jobs or their records: purge it first."),
                    "422": _error("Not a queue name."),
                },
            },
        },
        "/api/workers": {
            "get": {
                "operationId": "listWorkers",
                "summary": "Live workers: host, pid, pool, slots and last heartbeat.",
                "responses": {
                    "200": _json(ref("WorkerList"), "The workers."),
                    "401": unauthorized,
                },
            }
        },
        "/api/throughput": {
            "get": {
                "operationId": "getThroughput",
                "summary": "Runs ended per bucket, per queue: with window, succeeded, failed "
                "and retried apart, from the store; without, all finishes per 10 s over the "
                "last ten minutes as this server saw them.",
                "parameters": [
                    {**_WINDOW, "required": False},
                    {"name": "queue", "in": "query", "schema": QUEUE},
                ],
                "responses": {
                    "200": _json(ref("Throughput"), "The series."),
                    "401": unauthorized,
                    "422": _error("Not a window, or not a queue name."),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Whether the server and its store answer (no token needed).",
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string"},
                                "warnings": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "Up; warnings name store settings that may lose jobs.",
                    ),
                    "503": _error("The store cannot be reached."),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format).",
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": unauthorized,
                },
            }
        },
    }


def openapi_document(tasks: list[str], *, secured: bool) -> dict[str, Any]:
    """The document for an app with these task names; ``secured`` when the server wants a
    bearer token."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "baozi",
            "version": __version__,
            "description": "Enqueue jobs and follow them: a job is accepted at once (202) with "
            "its place in line, and its URL answers with its status until it is done.",
        },
        "paths": {**_job_operations(), **_service_operations()},
        "components": {"schemas": {**job_schemas(sorted(tasks)), **service_schemas()}},
    }
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    for item in doc["paths"].values():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            if method in ("post", "delete"):
                op["responses"]["403"] = _error(
                    "Sent from another site's page (its Origin or Sec-Fetch-Site says so)."
                )
            if not secured:
                op["responses"].pop("401", None)
                op["responses"]["421"] = _error(
                    "Without a token the server answers only to loopback names "
                    "(localhost, 127.0.0.1, [::1]) in the Host header."
                )
    return doc
