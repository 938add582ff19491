"""Typed errors: one class per kind of failure the service answers with, and two for the network.

Every error body of the service is ``{"error": {"code": ..., "message": ...}}``; the exception carries the
HTTP ``status``, that ``code`` (e.g. ``invalid_parameter``, ``rate_limited``, ``insufficient_credits``), the
``message`` (which says what was wrong and what to do), the ``request_id`` of the answer (``X-Request-Id``;
quote it when asking the operator), ``retry_after`` in seconds when the answer said when to come back, and
``attempts``: how many requests the call made (more than one when 429/503 were retried).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class ImageserveError(Exception):
    """Base of every error of the client. ``status`` is None when no HTTP answer came (network, timeout)."""

    default_code = "error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 request_id: str | None = None, retry_after: float | None = None,
                 headers: dict[str, str] | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.default_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.headers = headers or {}
        self.attempts = attempts

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r}, "
                f"request_id={self.request_id!r})")


class BadRequest(ImageserveError):
    """400: a bad parameter (``invalid_parameter``), Idempotency-Key or multipart body."""

    default_code = "bad_request"


class Unauthorized(ImageserveError):
    """401: no API key, or an unknown, revoked or expired one."""

    default_code = "unauthorized"


class PaymentRequired(ImageserveError):
    """402: not enough credits, or the monthly quota is used."""

    default_code = "insufficient_credits"


class Forbidden(ImageserveError):
    """403: the key may not use this operation."""

    default_code = "forbidden"


class NotFound(ImageserveError):
    """404: no such route (a client newer than the service?)."""

    default_code = "not_found"


class Conflict(ImageserveError):
    """409: the Idempotency-Key was used before for another request."""

    default_code = "conflict"


class PayloadTooLarge(ImageserveError):
    """413: the body is over the upload limit or the photo over the pixel limit."""

    default_code = "payload_too_large"


class UnsupportedMediaType(ImageserveError):
    """415: not JPEG, PNG or WebP, or a Content-Type that does not match the data."""

    default_code = "unsupported_media_type"


class BadImage(ImageserveError):
    """422: an empty, truncated or undecodable image."""

    default_code = "bad_image"


class RateLimited(ImageserveError):
    """429: over the key's rate limit or requests in flight (``retry_after`` says when), or over an allowance
    (``too_many_failed_requests``, ``too_many_replays``)."""

    default_code = "rate_limited"


class ServerError(ImageserveError):
    """5xx the other classes do not name (500: an unexpected error, logged by the service)."""

    default_code = "internal_error"


class Unavailable(ServerError):
    """503: inference unavailable or the gateway at its in-flight limit; ``retry_after`` says when to retry."""

    default_code = "inference_unavailable"


class Timeout(ImageserveError):
    """A request that took too long: 504 (inference over the request budget), 408 (the upload was too slow),
    or no answer within the client's own ``timeout`` (``status`` None, code ``client_timeout``)."""

    default_code = "inference_timeout"


class TransportError(ImageserveError):
    """No HTTP answer: the connection failed or broke (``status`` None, code ``connection_error``)."""

    default_code = "connection_error"


BY_STATUS: dict[int, type[ImageserveError]] = {
    400: BadRequest, 401: Unauthorized, 402: PaymentRequired, 403: Forbidden, 404: NotFound, 408: Timeout,
    409: Conflict, 413: PayloadTooLarge, 415: UnsupportedMediaType, 422: BadImage, 429: RateLimited,
    503: Unavailable, 504: Timeout,
}


def retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def from_response(response: httpx.Response, attempts: int = 1) -> ImageserveError:
    """The exception for an answer that is not 2xx."""
    status = response.status_code
    error = _error_body(response)
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else ImageserveError)
    message = str(error.get("message") or response.reason_phrase or f"HTTP {status}")
    code = error.get("code")
    request_id = response.headers.get("x-request-id") or error.get("request_id")
    return cls(message, status=status, code=str(code) if code else None,
               request_id=str(request_id) if request_id else None,
               retry_after=retry_after_s(response.headers.get("retry-after")),
               headers=dict(response.headers), attempts=attempts)


def from_transport(error: httpx.TransportError, attempts: int = 1) -> ImageserveError:
    """The exception for a request that got no answer."""
    if isinstance(error, httpx.TimeoutException):
        return Timeout(f"no answer within the client's timeout ({type(error).__name__})", code="client_timeout",
                       attempts=attempts)
    return TransportError(f"{type(error).__name__}: {error}", attempts=attempts)
