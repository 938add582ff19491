"""The gateway's error hierarchy and its JSON rendering.

Every error body is ``{"error": {"code": ..., "message": ...}}``; the message
says what was wrong and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import security_headers

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None  # quote it to support: the access log and a billed request's ledger row have it


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """Base of every error the gateway answers with.

    Each class carries what is derived from it: the HTTP status, the default ``code``, the
    ``description`` in the OpenAPI error table, and the ``reason`` label of ``gateway_rejections``.
    """

    status_code = 500
    code = "internal_error"
    description = "Unexpected error; it has been logged"
    reason = "internal"
    documented = False  # listed in the OpenAPI responses of the image routes

    def __init__(self, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"
    description = "Bad parameter, Idempotency-Key or malformed body"
    reason = "bad_input"
    documented = True


class UnfitParameter(BadRequest):
    """A parameter that only the photo shows to be wrong (a focus point outside it), found after inference
    started: a 400 like any bad parameter, not billed, but counted like a bad image (``UNBILLED_WORK``)."""


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"
    description = "Missing, unknown, revoked or expired API key"
    reason = "auth"
    documented = True


class PaymentRequired(ApiError):
    status_code = 402
    code = "insufficient_credits"
    description = "Not enough credits or monthly quota left for this request"
    reason = "quota"
    documented = True


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"
    description = "The API key's tenant may not use this operation"
    reason = "auth"
    documented = True


class RequestTimeout(ApiError):
    """The client took longer than the upload deadline to send the body (slow or stalled upload)."""

    status_code = 408
    code = "request_timeout"
    description = "The body did not arrive within the upload timeout"
    reason = "bad_input"
    documented = True


class Conflict(ApiError):
    status_code = 409
    code = "conflict"
    description = "The Idempotency-Key was used for a different request"
    reason = "bad_input"
    documented = True


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"
    description = "Body or pixel count over the limit"
    reason = "bad_input"
    documented = True


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"
    description = "Not a JPEG, PNG or WebP image, or Content-Type does not match the data"
    reason = "bad_input"
    documented = True


class BadImage(ApiError):
    status_code = 422
    code = "bad_image"
    description = "The image is truncated, corrupt or cannot be decoded"
    reason = "bad_input"
    documented = True


class TooManyRequests(ApiError):
    status_code = 429
    code = "rate_limited"
    description = "Over the key's rate limit or its requests in flight; not billed"
    reason = "rate"
    documented = True


class ClientClosedRequest(ApiError):
    """The caller went away before the answer (nginx's 499): nobody reads this response."""

    status_code = 499
    code = "client_closed_request"
    description = "The client closed the connection before the answer"
    reason = "client_closed"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "inference_unavailable"
    description = "Inference service unavailable or this gateway is at its limit of requests in flight"
    reason = "overload"
    documented = True


class UpstreamTimeout(ApiError):
    status_code = 504
    code = "inference_timeout"
    description = "Inference did not finish within the request budget"
    reason = "overload"
    documented = True


def error_classes() -> list[type[ApiError]]:
    """Every error class, by status code."""
    return sorted(ApiError.__subclasses__(), key=lambda cls: cls.status_code)


REJECTION_REASONS = tuple(dict.fromkeys(cls.reason for cls in error_classes()))


# Path -> (status, code, message) -> (status, body): the error shape of a route compatible with another API
# (gateway.routes.removebg registers remove.bg's).
COMPATIBLE_ERRORS: dict[str, Callable[[int, str, str], tuple[int, dict]]] = {}


def error_response(status_code: int, code: str, message: str, headers: dict[str, str] | None = None,
                   request: Request | None = None) -> JSONResponse:
    """The JSON error; with ``request``, it names the request's id (``gateway.request_log``)."""
    compatible = COMPATIBLE_ERRORS.get(request.url.path) if request is not None else None
    if compatible is not None:
        status, body = compatible(status_code, code, message)
        return JSONResponse(body, status_code=status, headers=headers)
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = ErrorBody(error=ErrorDetail(code=code, message=message, request_id=request_id))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": "1"} if exc.status_code == 503 else {}
    return error_response(exc.status_code, exc.code, exc.message, {**headers, **exc.headers} or None, request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 404:
        routes = ", ".join(request.app.state.product.routes())
        code, message = "not_found", (f"no route {request.method} {request.url.path}; the image routes are "
                                      f"POST {routes} (see /docs)")
    elif exc.status_code == 405:
        allowed = (headers or {}).get("Allow", "POST")
        code, message = "method_not_allowed", f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        code, message = "http_error", str(exc.detail)
    return error_response(exc.status_code, code, message, headers, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return error_response(400, "invalid_parameter", f"invalid request: {problems}", request=request)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log only; the caller gets no internals.
    request_id = getattr(request.state, "request_id", "")
    log.error("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    # Starlette answers it from its outermost layer, past the security-headers and request-id middleware: add
    # their headers here.
    return error_response(500, "internal_error", "the gateway failed to handle this request; it has been logged, "
                                                 "retry later", {**security_headers.as_dict(),
                                                                 "X-Request-Id": request_id}, request)


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above really send: invalid parameters are
    400 with an ``ErrorBody``, never FastAPI's default 422 ``HTTPValidationError``."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                default = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
                if default.get("$ref", "").endswith("/HTTPValidationError"):
                    del responses["422"]
                    responses.setdefault("400", {"description": "Invalid parameter",
                                                 "content": {"application/json": {
                                                     "schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
        schemas = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
