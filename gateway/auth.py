"""Caller authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Runs as a dependency, before the body is read, so a request without a valid
key is refused with 401 at once. The key never appears in errors or logs.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from gateway.errors import Unauthorized
from gateway.keys import Principal, authenticate

MAX_KEY_LENGTH = 256
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="imageserve"'}


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    value = request.headers.get("x-api-key", "").strip()
    return value or None


def _authenticate(sessions, key: str) -> Principal | None:  # noqa: ANN001
    with sessions() as session:
        return authenticate(session, key)


async def require_principal(request: Request) -> Principal:
    key = presented_key(request)
    metrics = request.app.state.metrics
    if key is None:
        metrics.rejections.labels("auth").inc()
        raise Unauthorized("no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                           code="missing_api_key", headers=WWW_AUTHENTICATE)
    principal = None
    if len(key) <= MAX_KEY_LENGTH:
        principal = await run_in_threadpool(_authenticate, request.app.state.sessions, key)
    if principal is None:
        metrics.rejections.labels("auth").inc()
        raise Unauthorized("the API key is unknown, revoked or expired; ask your administrator for a valid key",
                           code="invalid_api_key", headers=WWW_AUTHENTICATE)
    return principal
