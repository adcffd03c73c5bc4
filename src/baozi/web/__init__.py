"""The HTTP service for an App: a JSON API to enqueue and follow jobs, Prometheus metrics, and a
live dashboard, all in one Starlette application (``pip install baozi`` brings starlette, uvicorn
and prometheus-client).

``create_app(app, token=None)`` returns the ASGI application; ``serve(app, host=, port=,
token=)`` runs it with uvicorn, as ``baozi serve module:app`` does.
"""

from __future__ import annotations

from .server import check_bind, create_app, serve

__all__ = ["check_bind", "create_app", "serve"]
