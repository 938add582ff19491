"""Request IDs and the access log: one id per request, in every answer and in one log line per request.

``RequestLog`` (pure ASGI, the outermost layer) gives each HTTP request an id (32 hex characters, made here:
an id a client sends is not trusted, it could collide with another's or forge a ledger row's), puts it in
``request.state.request_id`` for the routes (the ledger row of a billed request has the same id) and in the
``X-Request-Id`` header of every answer, errors included, and their JSON body. When the answer is done it
logs one JSON line on the ``imageserve.access`` logger: time, id, method, path, status, duration, bytes out,
and what the route added to ``request.state.access`` (tenant, key id, operation, variant, credits). Never
the query string, the body, an API key or the client's address: the log holds no photo and no personal data.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
ACCESS_LOGGER = "imageserve.access"
log = logging.getLogger(ACCESS_LOGGER)


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, sent = 500, 0

        async def tag(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if REQUEST_ID_HEADER not in {name.lower() for name, _ in headers}:  # a replay names the first
                    headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tag)
        finally:
            self._write(scope, request_id, status, sent, time.perf_counter() - started)

    @staticmethod
    def _write(scope: Scope, request_id: str, status: int, sent: int, duration_s: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:256],
            "status": status,
            "duration_ms": round(duration_s * 1000, 1),
            "bytes_out": sent,
            **scope.get("state", {}).get("access", {}),
        }
        log.info(json.dumps(line, separators=(",", ":")))
