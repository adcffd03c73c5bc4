"""``baozi serve``: the HTTP API, metrics and dashboard for an app."""

from __future__ import annotations

import click

from .._extras import need

need("web", "baozi serve")

from ..web._http import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_CONNECTIONS  # noqa: E402
from .loading import load_app  # noqa: E402
from .options import app_url_option, transport_option  # noqa: E402


@click.command()
@click.argument("app_path", metavar="MODULE:APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--token",
    envvar="BAOZI_TOKEN",
    show_envvar=True,
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on every API and dashboard request "
    "(needed to listen on anything but loopback, and then at least 16 characters).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="The least severe messages the server logs.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Open connections each server process answers; beyond them a request gets 503 "
    "with Retry-After.",
)
@click.option(
    "--head-timeout",
    type=click.FloatRange(0, min_open=True),
    default=DEFAULT_HEAD_TIMEOUT,
    show_default=True,
    help="Seconds a connection has to send a whole request head before it is closed.",
)
@app_url_option
@transport_option
def serve(
    app_path: str,
    host: str,
    port: int,
    token: str | None,
    log_level: str,
    workers: int,
    max_connections: int,
    head_timeout: float,
    url: str | None,
    transport: str | None,
) -> None:
    """Serve MODULE:APP over HTTP: enqueue jobs and follow them (/api), /metrics, and a live
    dashboard at /. Jobs still need a worker: `baozi worker MODULE:APP`."""
    from ..web import check_bind
    from ..web import serve as run

    try:
        check_bind(host, token)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    app = load_app(app_path, url, transport)
    run(
        app,
        host=host,
        port=port,
        token=token or None,
        log_level=log_level,
        workers=workers,
        app_path=app_path,
        max_connections=max_connections,
        head_timeout=head_timeout,
    )
