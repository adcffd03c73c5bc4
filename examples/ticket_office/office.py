"""The ticket office: a page where buying a ticket posts an order and follows it to "confirmed".

The order is put on the queue and answered at once (202, with its place in line); the page then
asks about it every half second. No request waits for the clerk.

An order's id is the job's id and a signature of it (an HMAC under a key only this server
knows), so only the browser that placed the order -- the one that was told its id -- can read
it: job ids count up, and anyone could guess the next one. The key comes from TICKET_OFFICE_KEY,
else a new one is made at each start (orders placed before a restart can no longer be read).

    python office.py [--host 127.0.0.1] [--port 8001]
"""

import argparse
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from tickets import app, sell_ticket

import baozi

HERE = Path(__file__).resolve().parent
KEY = os.environ.get("TICKET_OFFICE_KEY", "").encode() or secrets.token_bytes(32)
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


def order_id(job_id: str) -> str:
    """The id the buyer is given: the job's id and its signature, which no one else can make."""
    signature = hmac.new(KEY, job_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{job_id}-{signature}"


def job_id_of(order: str) -> str | None:
    """The job an order id names, if its signature is right; else None."""
    job_id, _, _ = order.rpartition("-")
    return job_id if job_id and hmac.compare_digest(order_id(job_id), order) else None


def refusal(request: Request) -> Response | None:
    """Why a POST is refused before it is read, as the baozi API does: a body that is not
    JSON (a page of another site may send a form or text/plain to any server without asking,
    but not JSON), or a request a browser says comes from another site's page."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return JSONResponse({"error": "send the order as application/json"}, status_code=415)
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return JSONResponse({"error": "refused: an order from another site's page"}, 403)
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return JSONResponse({"error": "refused: an order from another site's page"}, 403)
    return None


async def order(request: Request) -> Response:
    refused = refusal(request)
    if refused is not None:
        return refused
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
    now = await job.snapshot_async()  # its status and its place in line, read together
    number = order_id(job.id)
    url = f"/orders/{number}"
    answer = {"id": number, "status": now.status, "ahead": now.position, "url": url}
    return JSONResponse(answer, 202, {"Location": url})


async def follow(request: Request) -> Response:
    job_id = job_id_of(request.path_params["order_id"])
    if job_id is None:  # a guessed id, or one from before a restart: as unknown as a wrong one
        return JSONResponse({"error": "no such order"}, status_code=404)
    job = baozi.Job(app, job_id)
    try:
        now = await job.snapshot_async()  # its status and its place in line, read together
    except baozi.JobNotFound:
        return JSONResponse({"error": "no such order"}, status_code=404)
    answer: dict[str, Any] = {"status": now.status, "ahead": now.position}
    if now.status == "succeeded":
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
