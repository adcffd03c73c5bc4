"""Serve bare.py's app through ``baozi.web.server.run_server``:

    PYTHONPATH=bench/burst python bench/burst/serve_bare.py --port P --workers N
"""

from __future__ import annotations

import argparse
import os
import sys

from baozi.web._http import DEFAULT_HEAD_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from baozi.web.server import run_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)
    parser.add_argument("--head-timeout", type=float, default=DEFAULT_HEAD_TIMEOUT)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The worker processes import "bare" by name: they must find it too.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p
    )
    run_server(
        "bare:make",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        max_connections=args.max_connections,
        head_timeout=args.head_timeout,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
