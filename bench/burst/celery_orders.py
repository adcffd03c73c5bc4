"""The Celery comparison of the burst benchmark (run from a venv with celery 5.7, see
bench/burst_bench.py): the same trivial task on Celery with a Redis broker, and a plain
Starlette endpoint whose ``POST /api/jobs`` calls ``order.delay()`` and answers 202 with the
task id. Served by plain uvicorn:

    BURST_CELERY_BROKER=redis://127.0.0.1:6379/13 uvicorn celery_orders:web --http httptools
"""

from __future__ import annotations

import json
import os

from celery import Celery
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUEUE = os.environ.get("BURST_CELERY_QUEUE", "burst-celery")

celery = Celery("celery_orders", broker=os.environ.get("BURST_CELERY_BROKER"))
celery.conf.task_default_queue = QUEUE
celery.conf.task_ignore_result = True
celery.conf.broker_connection_retry_on_startup = True


@celery.task(name="orders.order")
def order(customer: int, ref: str) -> str:
    return ref


async def accept(request: Request) -> Response:
    order_ = json.loads(await request.body())
    result = await run_in_threadpool(order.delay, *order_.get("args", []))
    body = json.dumps({"id": result.id, "status": "queued"}).encode()
    return Response(body, status_code=202, media_type="application/json")


web = Starlette(routes=[Route("/api/jobs", accept, methods=["POST"])])
