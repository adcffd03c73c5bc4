"""The ceiling of the burst benchmark: the same server stack as ``baozi serve`` (uvicorn with
baozi's capped httptools protocol, see ``baozi.web.server.run_server``) in front of a Starlette
app whose ``POST /api/jobs`` reads the body and answers 202 with a constant body -- no store."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"bare": true, "status": "queued"}'


async def accept(request: Request) -> Response:
    await request.body()
    return Response(BODY, status_code=202, media_type="application/json")


def make() -> Starlette:
    return Starlette(routes=[Route("/api/jobs", accept, methods=["POST"])])
