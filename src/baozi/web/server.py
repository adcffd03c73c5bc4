"""The ASGI application (``create_app``) and running it with uvicorn (``serve``)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._gc import tune as tune_gc
from ..app import App
from ..errors import StoreError
from ._http import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_CONNECTIONS, protocol, raise_file_limit
from ._wire import MAX_BATCH_BODY, MAX_BODY, ApiError
from .api import Api
from .metrics import Metrics
from .openapi import openapi_document
from .stats import Observer

__all__ = ["app_from_environment", "check_bind", "create_app", "run_server", "serve"]

log = logging.getLogger("baozi.web")
STATIC = Path(__file__).with_name("static")
_PUBLIC = ("/", "/healthz", "/favicon.ico", "/login", "/logout")
"""Paths that answer without a token: the dashboard's empty page and its files (they hold no
data; the page asks for the token before it reads anything), the login and logout forms' targets
and the health check. The schema is not among them: it names every task."""
MAX_LOGIN_BODY = 4096
"""The largest login form body (bytes)."""
COOKIE = "baozi_session"
"""The cookie the login form sets: a value derived from the token (:func:`session_value`),
HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it)."""
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class _Guard:
    """Outermost layer: who may ask (a loopback Host name without a token, a bearer token with
    one, no writes from another site's page), a body size limit, and headers that keep a
    browser from treating any answer as anything but what it says."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        on_request: Callable[[], None] | None = None,
        api: Api | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.on_request = on_request
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        if self.on_request is not None:
            self.on_request()
        path = _route_path(scope)
        refusal = self._refusal(scope, dict(scope["headers"]), path)
        if refusal is not None:
            status, message, headers = refusal
            await JSONResponse({"error": message}, status_code=status, headers=headers)(
                scope, receive, send_with_headers
            )
            return
        if self.api is not None and path.startswith("/api/jobs"):
            if path == "/api/jobs" and scope["method"] == "POST":
                await self.api.post_job(scope, receive, send_with_headers, _on_error)
                return
            job_id = path[len("/api/jobs/") :]
            if scope["method"] == "GET" and path[9:10] == "/" and job_id and "/" not in job_id:
                await self.api.get_job_raw(scope, receive, send_with_headers, job_id, _on_error)
                return
        await self.app(scope, receive, send_with_headers)

    def _refusal(
        self, scope: Scope, headers: dict[bytes, bytes], path: str
    ) -> tuple[int, str, dict[str, str] | None] | None:
        """Why the request is refused before it reaches the application, if it is."""
        host = headers.get(b"host", b"").decode("latin-1")
        if self.token is None and not _loopback_name(host):
            # A page of another site can reach a loopback server through a name of its own
            # that it points at 127.0.0.1 (DNS rebinding); such a request carries that name.
            return (
                421,
                f"without a token this server answers only to loopback names ({_LOOPBACK})",
                None,
            )
        public = path in _PUBLIC or path.startswith("/static/")
        if self.token is not None and not public and not self._authorized(headers):
            return (
                401,
                "this server needs a bearer token",
                {"WWW-Authenticate": 'Bearer realm="baozi"'},
            )
        if scope["method"] not in _SAFE_METHODS and _from_another_site(headers, host):
            return 403, "refused: a change sent from another site's page", None
        length = headers.get(b"content-length", b"0")
        limit = MAX_BATCH_BODY if path == "/api/jobs:batch" else MAX_BODY
        if length.isdigit() and int(length) > limit:
            return 413, f"the request body is over {limit} bytes", None
        return None

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        return _auth(self.token, headers) is not None


def _auth(token: bytes | None, headers: dict[bytes, bytes]) -> str | None:
    """How a request proves it may ask: "bearer" (the Authorization header), "cookie" (the
    login form's cookie), "none" (no token is needed), or None (it does not)."""
    if token is None:
        return "none"
    scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token):
        return "bearer"
    cookie = _cookie(headers.get(b"cookie", b""), COOKIE.encode())
    if cookie is not None and hmac.compare_digest(cookie, session_value(token).encode()):
        return "cookie"
    return None


@functools.lru_cache(maxsize=8)
def session_value(token: bytes) -> str:
    """What the login cookie holds: a value derived from the token, not the token itself, so
    that a cookie read off a browser is no bearer token for the API (and holds no character a
    cookie must quote)."""
    return hmac.new(token, b"baozi dashboard session", hashlib.sha256).hexdigest()


def _cookie(header: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in a Cookie header, if it is there."""
    for part in header.split(b";"):
        key, eq, value = part.strip().partition(b"=")
        if eq and key == name:
            return value.strip(b'"')
    return None


_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_LOOPBACK = "localhost, 127.0.0.1, [::1]"
_DEFAULT_PORTS = {"http": 80, "https": 443}


_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]*)(?::([0-9]{1,5}))?", re.IGNORECASE)


def _split_host(host: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, no brackets) and port; None if it is not one."""
    match = _HOST.fullmatch(host)
    if match is None:
        return None
    name, port = match.groups()
    return name.lower().strip("[]"), None if port is None else int(port)


@functools.lru_cache(maxsize=256)
def _loopback_name(host: str) -> bool:
    """Whether a Host header names this machine: localhost or a loopback address, any port."""
    split = _split_host(host)
    if split is None:
        return False
    name = split[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _from_another_site(headers: dict[bytes, bytes], host: str) -> bool:
    """Whether the browser says the request comes from a page that is not this server's: a
    ``Sec-Fetch-Site: cross-site``, or an ``Origin`` other than the scheme's host and port the
    request was sent to (any scheme: a proxy in front may speak https for it)."""
    site = headers.get(b"sec-fetch-site", b"").lower()
    if site == b"cross-site":
        return True
    origin = headers.get(b"origin")
    if origin is None:
        return False  # not sent by a browser's page
    if origin == b"null" and site == b"same-origin":
        # A form posted by this server's own page under a no-referrer policy: the browser
        # hides the origin but says, in a header no page can set, that it is this one.
        return False
    try:
        parts = urlsplit(origin.decode("latin-1"))
        default = _DEFAULT_PORTS.get(parts.scheme)
        theirs = (parts.hostname, parts.port or default)
    except ValueError:
        return True
    ours = _split_host(host)
    return ours is None or theirs != (ours[0], ours[1] or default) or not parts.hostname


def _route_path(scope: Scope) -> str:
    """The request's path below the point the application is mounted at (its root path)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :]
    return path or "/"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body: dict[str, Any] = {"error": exc.message}
    if exc.field is not None:
        body["field"] = exc.field
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class _StoreFailures:
    """The log of requests the store failed: one WARNING at most every ``every`` seconds, with
    how many failed since the last one, so that an outage under load is a few lines, not one per
    request (a log that floods can block the server on a full pipe)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.last = -math.inf
        self.unsaid = 0

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.unsaid += 1
            log.debug("store failed: %s", exc)
            return
        more, self.unsaid, self.last = self.unsaid, 0, now
        if more:
            log.warning(
                "store failed: %s (and %d requests more since the last such line)", exc, more
            )
        else:
            log.warning("store failed: %s", exc)


_store_failures = _StoreFailures()


async def _store_error(request: Request, exc: Exception) -> Response:
    _store_failures.failed(exc)
    return JSONResponse(
        {"error": f"the store is unavailable: {type(exc).__name__}"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error"}, status_code=500)


async def _on_error(request: Request, exc: Exception) -> Response:
    """The answer to an error raised outside the router (see ``Api.post_job``), as the
    application's handlers give it."""
    if isinstance(exc, ApiError):
        return await _api_error(request, exc)
    if isinstance(exc, HTTPException):
        return await _http_error(request, exc)
    if isinstance(exc, StoreError):
        return await _store_error(request, exc)
    return await _server_error(request, exc)


def create_app(app: App, *, token: str | None = None, interval: float = 1.0) -> Starlette:
    """The ASGI application serving ``app``: the JSON API under /api, /healthz, /metrics,
    /openapi.json and the dashboard at /. With ``token``, every request but those for the
    dashboard's files and /healthz needs ``Authorization: Bearer <token>``; without one, only
    requests to a loopback name (localhost, 127.0.0.1, [::1]) are answered. A change (POST,
    DELETE) sent from another site's page is refused either way. The store is sampled every ``interval`` seconds from the application's start (its lifespan)
    or its first request, whichever comes first: mounted in another application, whose lifespan
    does not reach it, it starts sampling with its first request."""
    metrics = Metrics(lambda: app.store)
    observer = Observer(lambda: app.store, interval=interval)
    api = Api(app, observer, metrics)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    secret = token.encode() if token else None

    async def session(request: Request) -> Response:
        # The Guard let the request through: it carries the token, or none is needed.
        how = _auth(secret, dict(request.scope["headers"]))
        return JSONResponse({"auth": how, "token_required": secret is not None})

    def _home(request: Request, query: str = "") -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "") + "/" + query, 303)

    async def login(request: Request) -> Response:
        """The login form's target: a right token is set as an HttpOnly, SameSite=Strict
        cookie, and the browser goes back to the dashboard either way."""
        if secret is None:
            return _home(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise ApiError(415, "send the login form as application/x-www-form-urlencoded")
        chunks, size = [], 0
        async for chunk in request.stream():  # a chunked body has no length to check first
            size += len(chunk)
            if size > MAX_LOGIN_BODY:
                raise ApiError(413, f"the login form is over {MAX_LOGIN_BODY} bytes")
            chunks.append(chunk)
        body = b"".join(chunks).decode("latin-1")
        given = (parse_qs(body).get("token") or [""])[0]
        if not given or not hmac.compare_digest(given.encode(), secret):
            return _home(request, "?login=refused")
        answer = _home(request)
        https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        answer.set_cookie(
            COOKIE,
            session_value(secret),
            httponly=True,
            samesite="strict",
            secure=https,  # behind a TLS proxy too (the header only ever adds Secure)
            path=request.scope.get("root_path", "") + "/",
        )
        return answer

    async def logout(request: Request) -> Response:
        answer = _home(request)
        answer.delete_cookie(
            COOKIE, path=request.scope.get("root_path", "") + "/", httponly=True, samesite="strict"
        )
        return answer

    async def schema(request: Request) -> Response:
        # Made on each request: tasks registered after the server was made are in it too.
        return JSONResponse(openapi_document(list(app.tasks), secured=bool(token)))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        observer.start()
        try:
            yield
        finally:
            observer.stop()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/session", session, methods=["GET"]),
        Route("/openapi.json", schema, methods=["GET"]),
        *api.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    web = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreError: _store_error,
            Exception: _server_error,
        },
        middleware=[Middleware(_Guard, token=token, on_request=observer.start_once, api=api)],
        lifespan=lifespan,
    )
    web.state.baozi = app
    web.state.observer = observer
    web.state.api = api
    return web


def _unbracketed(host: str) -> str:
    """An IPv6 address as a socket takes it: "[::1]", as URLs write it, is "::1"."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


MIN_TOKEN = 16
"""The shortest token a server listening beyond this machine accepts (characters)."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ValueError) to listen beyond this machine without a token, or with one shorter
    than MIN_TOKEN characters (a short one can be guessed over the network)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(_unbracketed(host)).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    if not token:
        raise ValueError(
            f"refusing to serve on {host} without a token: anyone who reaches it could run "
            f"tasks. Give --token (or BAOZI_TOKEN), or listen on 127.0.0.1"
        )
    if len(token) < MIN_TOKEN:
        raise ValueError(
            f"refusing to serve on {host} with a token of {len(token)} characters: use at "
            f"least {MIN_TOKEN} (python -c 'import secrets; print(secrets.token_urlsafe())')"
        )


def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    log_level: str = "info",
    workers: int = 1,
    app_path: str | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
) -> None:
    """Run the HTTP service for ``app`` until interrupted (uvicorn; Ctrl-C stops it).

    ``workers`` server processes share the port; each loads the app again from ``app_path``
    (``module:attribute``, needed when ``workers`` > 1) on the store ``app`` uses. Each process
    answers at most ``max_connections`` open connections (beyond them: 503 with Retry-After)
    and closes a connection that has not sent a request's head within ``head_timeout`` s."""
    check_bind(host, token)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1 and not app_path:
        raise ValueError("serving with several workers needs app_path ('module:attribute')")
    target: str | Callable[[], ASGIApp] = functools.partial(create_app, app, token=token)
    if workers > 1:  # each worker process loads the app again, from the environment
        os.environ[_APP_ENV] = json.dumps({"path": app_path, "url": app.url, "token": token})
        target = f"{__name__}:app_from_environment"
    run_server(
        target,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        max_connections=max_connections,
        head_timeout=head_timeout,
    )


_APP_ENV = "BAOZI_SERVE_APP"
_LIMITS_ENV = "BAOZI_SERVE_LIMITS"
_TARGET_ENV = "BAOZI_SERVE_TARGET"


def app_from_environment() -> ASGIApp:
    """The ASGI application of a worker process of ``serve(workers=N)``: the app loaded again
    from the path and store its parent was given."""
    from .._loading import load_app

    spec = json.loads(os.environ[_APP_ENV])
    app = load_app(spec["path"])
    if app.url != spec["url"]:
        app.use_store(spec["url"])
    return create_app(app, token=spec["token"])


def _tuned(target: Callable[[], ASGIApp]) -> Callable[[], ASGIApp]:
    """``target``, then the collector's settings for a server process (see baozi._gc)."""

    def made() -> ASGIApp:
        asgi = target()
        tune_gc()
        return asgi

    return made


def _worker_target() -> ASGIApp:
    """Run in each worker process before it serves: its connection limits, then its app."""
    from .._loading import load_object

    limits = json.loads(os.environ[_LIMITS_ENV])
    protocol(limits["max_connections"], limits["head_timeout"])
    raise_file_limit(limits["max_connections"] + 100)
    target = cast(Callable[[], ASGIApp], load_object(os.environ[_TARGET_ENV]))
    return _tuned(target)()


def run_server(
    target: str | Callable[[], ASGIApp],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    workers: int = 1,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
) -> None:
    """Serve the ASGI application ``target`` makes (a function of no arguments, or its
    ``module:attribute`` name, which ``workers`` > 1 needs) with baozi's HTTP settings:
    httptools, a connection cap and a head deadline per process, no server header."""
    import uvicorn

    http = protocol(max_connections, head_timeout)
    raise_file_limit(max_connections + 100)
    options: dict[str, Any] = dict(
        host=_unbracketed(host),
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        http=http,
        factory=True,
        backlog=max(2048, min(max_connections, 65535)),
    )
    if workers == 1:
        if isinstance(target, str):
            from .._loading import load_object

            target = cast(Callable[[], ASGIApp], load_object(target))
        uvicorn.run(_tuned(target), **options)
        return
    if not isinstance(target, str):
        raise ValueError("several workers need the application's 'module:attribute' name")
    os.environ[_TARGET_ENV] = target
    os.environ[_LIMITS_ENV] = json.dumps(
        {"max_connections": max_connections, "head_timeout": head_timeout}
    )
    uvicorn.run(f"{__name__}:_worker_target", workers=workers, **options)
