"""Caller authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Runs as a dependency, before the body is read, so a request without a valid
key is refused with 401 at once. The key never appears in errors or logs.
Verified keys are kept for a few seconds and refused ones for a minute
(``gateway.principal_cache``). Database reads for keys in neither are bounded
per process (``LOOKUP_RATE_PER_S``): a flood of made-up keys costs at most that
many reads a second, and past it gets 503 with ``Retry-After`` (callers with a
verified key are not affected: they are in the cache).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gateway.errors import ServiceUnavailable, Unauthorized
from gateway.keys import Principal, authenticate, hash_key

MAX_KEY_LENGTH = 256
LOOKUP_RATE_PER_S = 50.0
LOOKUP_BURST = 100
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="imageserve"'}


# Declared as security schemes so the OpenAPI document says how to authenticate.
BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key itself")


def presented_key(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return (header_key or "").strip() or None


def _authenticate(sessions, key: str) -> Principal | None:  # noqa: ANN001
    with sessions() as session:
        return authenticate(session, key)


async def _look_up(request: Request, key: str) -> Principal | None:
    if not request.app.state.key_lookups.take("lookups", LOOKUP_RATE_PER_S, LOOKUP_BURST).allowed:
        request.app.state.metrics.rejections.labels("overload").inc()
        raise ServiceUnavailable("this gateway is checking too many unknown API keys right now; retry in a second",
                                 code="auth_busy", headers={"Retry-After": "1"})
    return await run_in_threadpool(_authenticate, request.app.state.sessions, key)


async def require_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    header_key: Annotated[str | None, Security(API_KEY_HEADER)],
) -> Principal:
    key = presented_key(bearer, header_key)
    metrics = request.app.state.metrics
    if key is None:
        metrics.rejections.labels("auth").inc()
        raise Unauthorized("no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                           code="missing_api_key", headers=WWW_AUTHENTICATE)
    principal = None
    if len(key) <= MAX_KEY_LENGTH:
        cache = request.app.state.principal_cache
        key_hash = hash_key(key)
        principal = cache.get(key_hash)
        if principal is None and not cache.is_unknown(key_hash):
            principal = await _look_up(request, key)
            if principal is not None:
                cache.put(key_hash, principal)
            else:
                cache.put_unknown(key_hash)
    if principal is None:
        metrics.rejections.labels("auth").inc()
        raise Unauthorized("the API key is unknown, revoked or expired; ask your administrator for a valid key",
                           code="invalid_api_key", headers=WWW_AUTHENTICATE)
    return principal
