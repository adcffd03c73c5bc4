"""The OpenAPI 3.1 document served at ``/openapi.json``: every operation, status and body."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..backends.base import STATUSES
from ._graph import MAX_GRAPH
from ._schemas import QUEUE, job_schemas, ref, service_schemas
from ._wire import MAX_LIMIT, MAX_OFFSET

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
                        "name": "offset",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_OFFSET,
                            "default": 0,
                        },
                    },
                ],
                "responses": {
                    "200": _json(ref("JobList"), "A page of jobs."),
                    "401": unauthorized,
                    "422": _error("A query parameter is out of range; `field` names it."),
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
                "summary": "Jobs finished per 10 s over the last ten minutes, per queue.",
                "responses": {"200": _json(ref("Throughput"), "The series."), "401": unauthorized},
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
