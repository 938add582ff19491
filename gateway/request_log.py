"""Request IDs and the access log: one id per request, in every answer and in one log line per request.

``RequestLog`` (pure ASGI, the outermost layer) gives each HTTP request an id: the client's ``X-Request-Id``
when it is valid (1-64 of ``A-Z a-z 0-9 . _ : -``, so a trace id passes through), else 32 hex characters made
here. It is in ``request.state.request_id`` for the routes and in the ``X-Request-Id`` header of every
answer, errors included, and their JSON body. A billed request's ledger row has an id of its own
(``X-Charge-Id``): a client's id need not be unique. When the answer is done it logs one JSON line on the
``imageserve.access`` logger: time, id, method, path, status, duration, bytes in and out, and what the route
added to ``request.state.access`` (tenant, key id, operation, variant, credits, charge id, Triton time). Never
the query string, the body, an API key, a file name or the client's address: no photo and no personal data.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
ACCESS_LOGGER = "imageserve.access"
log = logging.getLogger(ACCESS_LOGGER)


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode() if VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status, received, sent = 500, 0, 0

        async def count() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tag(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, request_id.encode())]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, count, tag)
        finally:
            self._write(scope, request_id, status, (received, sent), time.perf_counter() - started)

    @staticmethod
    def _write(scope: Scope, request_id: str, status: int, sizes: tuple[int, int], duration_s: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:256],
            "status": status,
            "duration_ms": round(duration_s * 1000, 1),
            "bytes_in": sizes[0],
            "bytes_out": sizes[1],
            **scope.get("state", {}).get("access", {}),
        }
        log.info(json.dumps(line, separators=(",", ":")))
