"""The HTTP service for an App: a JSON API to enqueue and follow jobs, Prometheus metrics, and a
live dashboard, all in one Starlette application (``pip install 'baozi[web]'`` brings starlette,
uvicorn and prometheus-client; importing this package without them raises
:class:`~baozi._extras.MissingExtra` saying so).

``create_app(app, token=None)`` returns the ASGI application; ``serve(app, host=, port=,
token=)`` runs it with uvicorn, as ``baozi serve module:app`` does.
"""

from __future__ import annotations

from .._extras import need

need("web", "baozi.web")

from .server import check_bind, create_app, serve  # noqa: E402 -- once the extra is known

__all__ = ["check_bind", "create_app", "serve"]
