"""The ticket office: a page where buying a ticket posts an order and follows it to "confirmed".

The order is put on the queue and answered at once (202, with its place in line); the page then
asks about it every half second. No request waits for the clerk.

    python office.py [--host 127.0.0.1] [--port 8001]
"""

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from tickets import app, sell_ticket

import baozi

HERE = Path(__file__).resolve().parent
TRAINS = ("G1 Beijing - Shanghai", "D312 Xi'an - Chengdu", "K21 Guangzhou - Kunming")


async def page(request: Request) -> Response:
    return FileResponse(HERE / "office.html")


async def script(request: Request) -> Response:
    return FileResponse(HERE / "office.js", media_type="text/javascript")


async def trains(request: Request) -> Response:
    return JSONResponse({"trains": TRAINS})


def _text(value: str) -> bool:
    """Whether the string can be stored: JSON may carry half of a surrogate pair, UTF-8 not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def order(request: Request) -> Response:
    try:
        body: Any = await request.json()
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser follows
        return JSONResponse({"error": "send the order as JSON"}, status_code=422)
    name = body.get("name") if isinstance(body, dict) else None
    train = body.get("train") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 100 or not _text(name):
        return JSONResponse({"error": "name: give a name of 1 to 100 characters"}, status_code=422)
    if train not in TRAINS:
        return JSONResponse({"error": "train: pick one of the trains"}, status_code=422)
    job = await sell_ticket.delay_async(name.strip(), train)
    ahead = await job.position_async()
    url = f"/orders/{job.id}"
    return JSONResponse({"id": job.id, "ahead": ahead, "url": url}, 202, {"Location": url})


async def follow(request: Request) -> Response:
    job = baozi.Job(app, request.path_params["order_id"])
    try:
        status = await job.status_async()
    except baozi.JobNotFound:
        return JSONResponse({"error": "no such order"}, status_code=404)
    answer: dict[str, Any] = {"status": status, "ahead": await job.position_async()}
    if status == "succeeded":
        answer["ticket"] = await job.result_async(timeout=1)
    return JSONResponse(answer)


site = Starlette(
    routes=[
        Route("/", page),
        Route("/office.js", script),
        Route("/trains", trains),
        Route("/orders", order, methods=["POST"]),
        Route("/orders/{order_id}", follow),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    options = parser.parse_args()
    print(f"the ticket office is open at http://{options.host}:{options.port}", flush=True)
    uvicorn.run(site, host=options.host, port=options.port, log_level="warning")
