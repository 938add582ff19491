"""``python -m gateway``: serve the gateway with uvicorn using ``GATEWAY_*`` settings.

On SIGTERM uvicorn stops accepting connections, lets requests in flight finish
for up to ``GATEWAY_SHUTDOWN_GRACE_S`` seconds, then exits. With
``GATEWAY_METRICS_PORT`` set, ``/metrics`` is served on that port only, so the
public port (and any Ingress in front of it) never exposes it.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from gateway.app import create_app
from gateway.http_protocol import BoundedHttpToolsProtocol
from gateway.request_log import ACCESS_LOGGER
from gateway.settings import GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        print(f"invalid gateway settings (GATEWAY_* environment variables):\n{exc}", file=sys.stderr)
        return 2
    if settings.access_log:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))  # each line is already JSON
        access = logging.getLogger(ACCESS_LOGGER)
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
    app = create_app(settings)
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, settings.host, registry=app.state.metrics.registry)
    # uvloop and httptools: about 1 ms less CPU per request than asyncio's loop and h11 (load_tests/results/tuning.md).
    # httptools with a bound on the request head (gateway.http_protocol); limit_concurrency answers 503
    # past that many connections and tasks, before any of them can pile up memory.
    uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", http=BoundedHttpToolsProtocol,
                access_log=False, server_header=False, timeout_graceful_shutdown=settings.shutdown_grace_s,
                limit_concurrency=settings.max_connections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
