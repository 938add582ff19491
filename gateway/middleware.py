"""ASGI middleware: metrics and load shedding of the image routes, security headers.

Pure ASGI (no ``BaseHTTPMiddleware``) so request bodies stream through and a
client that goes away is seen by the route.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.limits.process_in_flight import ProcessInFlightLimit
from gateway.metrics import GatewayMetrics
from gateway.security_headers import API_CSP, DEMO_CSP, NO_STORE, SECURITY_HEADERS

DOC_PATHS = ("/docs", "/redoc")  # the interactive docs load their own scripts
DEMO_PATH = "/demo"  # gateway/routes/demo.py: the page and its files, with their own CSP


class ImageRouteGuard:
    """Counts every image request by route and status class (401s and load shedding included),
    and answers 503 at once, before authentication or reading the body, when this
    process is at its ``ProcessInFlightLimit``.
    """

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, limit: ProcessInFlightLimit,
                 routes: dict[str, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = limit
        self.routes = routes  # HTTP path -> operation name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if not self.limit.try_enter():
                self.metrics.rejections.labels("overload").inc()
                await self.limit.refuse(record_status)
                return
            self.metrics.in_flight.inc()
            try:
                await self.app(scope, receive, record_status)
            finally:
                self.limit.leave()
                self.metrics.in_flight.dec()
        finally:
            self.metrics.requests.labels(route, f"{status // 100}xx").inc()
            self.metrics.request_duration.labels(route).observe(time.perf_counter() - started)


def _csp(path: str) -> list[tuple[bytes, bytes]]:
    """The Content-Security-Policy of an answer: the demo page's own, none for the docs, the API's for the rest."""
    if path == DEMO_PATH or path.startswith(f"{DEMO_PATH}/"):
        return [DEMO_CSP]
    return [] if path.startswith(DOC_PATHS) else [API_CSP]


def _declares_no_body(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    return b"transfer-encoding" not in headers and headers.get(b"content-length", b"0") == b"0"


class ResponseHeaders:
    """Headers every answer needs.

    - Security headers that keep browsers from sniffing, framing or caching API responses.
    - ``Connection: close`` on an answer that starts before the whole request body has arrived
      (refused early: 401, 429, 503, 413, or any route that ignores a body), so the server drops the
      connection instead of reading and discarding the rest of a possibly huge upload, or waiting
      forever for a body that a client declared and never sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*SECURITY_HEADERS, NO_STORE, *_csp(scope.get("path", ""))]
        body_received = _declares_no_body(scope)

        async def track_body() -> Message:
            nonlocal body_received
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_received = True
            return message

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                if not body_received and b"connection" not in present:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, track_body, add_headers)
