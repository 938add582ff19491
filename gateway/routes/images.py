"""``POST /v1/depth``, ``/v1/mask``, ``/v1/cutout``: one photo in, one PNG out."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from gateway import ledger
from gateway.deps import ImageCall, ImageCallDep
from gateway.errors import (
    ApiError, BadRequest, ClientClosedRequest, Conflict, ErrorBody, Forbidden, PaymentRequired, TooManyRequests,
    UpstreamTimeout,
)
from gateway.image_check import MEDIA_TYPES, inspect_image
from gateway.keys import Principal
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import Decision, RateLimiter
from gateway.triton_client import TritonClient
from gateway.upload import read_upload

log = logging.getLogger(__name__)

SegmentationModel = Literal["fast", "quality"]
SEGMENTATION_MODELS: tuple[str, ...] = ("fast", "quality")


@dataclass(frozen=True)
class Operation:
    name: str
    ensemble_prefix: str
    png_output: str
    segmented: bool

    def ensemble(self, model: str) -> str:
        return f"{self.ensemble_prefix}_{model}" if self.segmented else self.ensemble_prefix

    def outputs(self) -> list[str]:
        return [self.png_output, "DEPTH_RANGE"] if self.name == "depth" else [self.png_output]


DEPTH = Operation("depth", "photo_depth", "DEPTH_PNG", segmented=False)
MASK = Operation("mask", "photo_mask", "MASK_PNG", segmented=True)
CUTOUT = Operation("cutout", "photo_cutout", "CUTOUT_PNG", segmented=True)
OPERATIONS = (DEPTH, MASK, CUTOUT)


def served_ensembles() -> list[str]:
    """Every Triton ensemble the gateway calls (readiness checks them all)."""
    names = []
    for operation in OPERATIONS:
        variants = SEGMENTATION_MODELS if operation.segmented else ("",)
        names.extend(operation.ensemble(v) for v in variants)
    return names


REJECTION_REASONS = {401: "auth", 403: "auth", 402: "quota", 429: "rate", 499: "client_closed",
                     503: "overload", 504: "overload"}
IDEMPOTENCY_KEY_MAX = 255
# A reservation outlives its request by this much before the sweeper may return it.
RESERVATION_MARGIN = timedelta(seconds=60)


def _rejection_reason(error: ApiError) -> str:
    return REJECTION_REASONS.get(error.status_code, "bad_input")


router = APIRouter(prefix="/v1", tags=["images"])

def _header(description: str, schema_type: str = "string") -> dict:
    return {"description": description, "schema": {"type": schema_type}}


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The photo as the raw body, or as the field `image` of a multipart form.",
        "content": {
            **{media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["image"],
                           "properties": {"image": {"type": "string", "format": "binary"}}},
            },
        },
    },
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Makes a retry of the same request within 24 hours return the first request's charge "
                       "instead of billing again (1-255 printable ASCII characters, e.g. a UUID).",
        "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
    }],
}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before retrying", "integer")}
RATE_HEADERS = {name: _header(text, "integer") for name, text in {
    "RateLimit-Limit": "Token bucket size of this key",
    "RateLimit-Remaining": "Requests left in the bucket",
    "RateLimit-Reset": "Seconds until the bucket is full again",
}.items()}
ERRORS = {
    code: {"model": ErrorBody, "description": text, **({"headers": headers} if headers else {})}
    for code, (text, headers) in {
        400: ("Bad parameter, Idempotency-Key or malformed body", None),
        401: ("Missing, unknown, revoked or expired API key", None),
        402: ("Not enough credits or monthly quota left for this request", None),
        403: ("The API key's tenant may not use this operation", None),
        408: ("The body did not arrive within the upload timeout", None),
        409: ("The Idempotency-Key was used for a different request", None),
        413: ("Body or pixel count over the limit", None),
        415: ("Not a JPEG, PNG or WebP image, or Content-Type does not match the data", None),
        422: ("The image is truncated, corrupt or cannot be decoded", None),
        429: ("Over the key's rate limit or its requests in flight; not billed", {**RETRY_AFTER, **RATE_HEADERS}),
        503: ("Inference service unavailable or this gateway is at its limit of requests in flight", RETRY_AFTER),
        504: ("Inference did not finish within the request budget", None),
    }.items()
}
PNG_RESPONSE = {200: {
    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    "description": "The result as a PNG image",
    "headers": {
        "X-Request-Id": _header("Id of the billed request (the first one's for an idempotent replay)"),
        "X-Credits-Charged": _header("Credits billed for this request", "integer"),
        "X-Credits-Remaining": _header("The tenant's balance after this request", "integer"),
        "Idempotent-Replayed": _header("'true' when this answers a retry that was not billed again"),
        **RATE_HEADERS,
    },
}}
DEPTH_HEADERS = {
    "X-Depth-Near": _header("Depth in metres of the brightest pixel (65535)", "number"),
    "X-Depth-Far": _header("Depth in metres of black (0)", "number"),
}
DEPTH_RESPONSE = {200: {**PNG_RESPONSE[200], "headers": {**PNG_RESPONSE[200]["headers"], **DEPTH_HEADERS}}}
MaxSide = Annotated[int, Query(ge=0, description="Longest side of the output in pixels; 0 keeps the photo's size")]
Model = Annotated[SegmentationModel, Query(description="Segmentation model: fast (MediaPipe) or quality (U2-Netp)")]


async def _serve(call: ImageCall, operation: Operation, model: str, max_side: int) -> Response:
    """Limits, header checks, credit reservation, inference, then commit (or release on any failure).

    Counting, timing and the process-wide load shedding are done by ``middleware.ImageRouteGuard``.
    """
    request, principal, settings, metrics = call.request, call.principal, call.settings, call.metrics
    triton, sessions, limiter = call.triton, call.sessions, call.limiter
    started = time.perf_counter()
    deadline = started + settings.request_budget_s
    request_id = uuid.uuid4().hex
    reservation: ledger.Reservation | None = None
    try:
        if operation.name not in principal.operations:
            raise Forbidden(f"this API key may not use /v1/{operation.name}; it may use "
                            f"{', '.join(sorted(principal.operations)) or 'no image operation'}",
                            code="operation_not_allowed")
        decision = await _take_token(limiter, principal)
        if not decision.allowed:
            raise TooManyRequests(f"over the rate limit of {principal.rate_per_s:g} requests/s (burst {principal.burst}) "
                                  f"for this key; retry after {decision.retry_after_s} s", headers=decision.headers())
        if max_side > settings.max_output_side:
            raise BadRequest(f"max_side {max_side} is over the limit of {settings.max_output_side}", code="invalid_parameter")
        claim_key = _idempotency_key(request)
        with request.app.state.tenant_slots.hold(principal.tenant_id):
            upload = await read_upload(request, settings.max_body_bytes, settings.upload_timeout_s)
            metrics.request_bytes.labels(operation.name).inc(len(upload.data))
            info = inspect_image(upload.data, settings.max_pixels, upload.declared_type)
            metrics.input_megapixels.labels(operation.name).observe(info.megapixels)
            claim = None if claim_key is None else ledger.IdempotencyClaim(
                claim_key, _fingerprint(operation, model, max_side, upload.data))
            first = await _first_charge(sessions, principal.tenant_id, claim)
            if first is None:
                reservation = await _reserve(request, sessions, principal, operation, info.megapixels, request_id,
                                             settings.request_budget_s)
            outputs, triton_s = await _infer(request, triton, operation, model, max_side, upload.data, deadline, metrics)
        png = bytes(outputs[operation.png_output].reshape(-1)[0])
        headers = {"X-Request-Id": request_id, **decision.headers()}
        if operation is DEPTH:
            near, far = (float(v) for v in outputs["DEPTH_RANGE"].reshape(-1)[:2])
            headers["X-Depth-Near"] = f"{near:.4f}"
            headers["X-Depth-Far"] = f"{far:.4f}"
        charge = ledger.Charge(
            key_id=principal.key_id, operation=operation.name, model=model or "default",
            input_megapixels=info.megapixels, output_bytes=len(png),
            gateway_latency_ms=(time.perf_counter() - started) * 1000, triton_latency_ms=triton_s * 1000,
            request_id=request_id,
        )
        headers.update(await _settle(sessions, principal, reservation, charge, claim, first, metrics))
        reservation = None  # committed or released by _settle (a second release would be a no-op)
        metrics.response_bytes.labels(operation.name).inc(len(png))
        return Response(png, media_type="image/png", headers=headers)
    except ApiError as error:
        metrics.rejections.labels(_rejection_reason(error)).inc()
        raise
    finally:
        if reservation is not None:
            await _release(sessions, reservation, request_id)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, "
                         "e.g. a UUID made once per logical request", code="invalid_idempotency_key")
    return key


def _fingerprint(operation: Operation, model: str, max_side: int, data: bytes) -> str:
    digest = hashlib.sha256(f"{operation.name}|{model}|{max_side}|".encode())
    digest.update(data)
    return digest.hexdigest()


async def _first_charge(sessions: sessionmaker, tenant_id: int,
                        claim: ledger.IdempotencyClaim | None) -> ledger.FirstCharge | None:
    if claim is None:
        return None
    try:
        return await run_in_threadpool(ledger.first_charge, sessions, tenant_id, claim)
    except ledger.IdempotencyConflict:
        raise Conflict("this Idempotency-Key was already used for a different request in the last 24 hours; "
                       "use a new key for each new request", code="idempotency_key_reused") from None


async def _reserve(request: Request, sessions: sessionmaker, principal: Principal, operation: Operation,
                   megapixels: float, request_id: str, budget_s: float) -> ledger.Reservation:
    cost = request.app.state.prices.cost(operation.name, megapixels)
    hold = timedelta(seconds=budget_s) + RESERVATION_MARGIN
    try:
        return await run_in_threadpool(ledger.reserve, sessions, principal.tenant_id, cost, request_id, hold)
    except ledger.InsufficientCredits as short:
        if short.reason == "balance":
            raise PaymentRequired(f"this request costs {short.needed} credits and the balance is {short.balance}; "
                                  "top up the account or send a smaller photo") from None
        raise PaymentRequired(f"this request costs {short.needed} credits, over what is left of this month's quota; "
                              "wait for next month or ask for a larger quota", code="monthly_quota_exceeded") from None


async def _infer(request: Request, triton: TritonClient, operation: Operation, model: str, max_side: int, data: bytes,
                 deadline: float, metrics: GatewayMetrics) -> tuple[dict, float]:
    """The Triton call within what is left of the request budget, cancelled if the client goes away."""
    left_s = deadline - time.perf_counter()
    if left_s <= 0:
        raise UpstreamTimeout("the request budget was spent before inference could start (slow upload?); "
                              "retry with a faster connection or a smaller photo")
    started = time.perf_counter()
    inference = asyncio.ensure_future(triton.infer(operation.ensemble(model), data, max_side, operation.outputs(),
                                                   left_s))
    client_gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({inference, client_gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (inference, client_gone):
            if not task.done():
                task.cancel()
        triton_s = time.perf_counter() - started
        metrics.triton_duration.labels(operation.name).observe(triton_s)
    if inference.cancelled() or not inference.done():
        metrics.cancelled_inferences.inc()
        raise ClientClosedRequest("the client closed the connection; the inference was cancelled and not billed")
    return inference.result(), triton_s


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _settle(sessions: sessionmaker, principal: Principal, reservation: ledger.Reservation | None,
                  charge: ledger.Charge, claim: ledger.IdempotencyClaim | None, first: ledger.FirstCharge | None,
                  metrics: GatewayMetrics) -> dict[str, str]:
    """Bill the reservation and return the billing headers of the response.

    Not billed (the reservation is released) when an earlier request with the same Idempotency-Key was
    billed, also concurrently, or when the ledger row cannot be written: nothing is billed without one.
    """
    if reservation is not None:
        try:
            await run_in_threadpool(ledger.commit, sessions, reservation, charge, claim)
            metrics.credits_charged.labels(charge.operation).inc(reservation.credits)
            return {"X-Credits-Charged": str(reservation.credits), "X-Credits-Remaining": str(reservation.remaining)}
        except (SQLAlchemyError, ledger.ReservationGone) as error:
            if isinstance(error, IntegrityError) and claim is not None:
                first = await _first_charge(sessions, reservation.tenant_id, claim)
            if first is None:
                metrics.ledger_write_errors.inc()
                log.exception("ledger write failed for request %s; its credits are released", charge.request_id)
        await _release(sessions, reservation, charge.request_id)
    headers = {"X-Credits-Charged": "0"} if first is None else {  # a retry: the first charge, not billed again
        "X-Request-Id": first.request_id, "X-Credits-Charged": str(first.credits), "Idempotent-Replayed": "true"}
    headers["X-Credits-Remaining"] = str(await run_in_threadpool(ledger.balance, sessions, principal.tenant_id))
    return headers


async def _take_token(limiter: RateLimiter, principal: Principal) -> Decision:
    try:
        if not limiter.blocking:  # in-process buckets: a dict and a lock, cheaper than a thread hop
            return limiter.take(principal.key_id, principal.rate_per_s, principal.burst)
        return await run_in_threadpool(limiter.take, principal.key_id, principal.rate_per_s, principal.burst)
    except Exception:  # a rate-limit store outage must not stop paid traffic: fail open, loudly
        log.exception("rate limiter unavailable; letting the request through")
        return Decision(True, principal.burst, principal.burst, 0, 0)


async def _release(sessions: sessionmaker, reservation: ledger.Reservation, request_id: str) -> None:
    # Shielded: runs even when the client went away and the request task is being cancelled.
    with anyio.CancelScope(shield=True):
        try:
            await run_in_threadpool(ledger.release, sessions, reservation.id)
        except Exception:
            log.exception("could not release %d credits of tenant %d for request %s",
                          reservation.credits, reservation.tenant_id, request_id)


@router.post("/depth", response_class=Response, responses={**DEPTH_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Depth map as a 16-bit PNG (near = bright)")
async def depth(call: ImageCallDep, max_side: MaxSide = 0) -> Response:
    """16-bit greyscale PNG, linear in depth: ``d = far - pixel / 65535 * (far - near)``,
    with ``near``/``far`` (metres, from the model) in the ``X-Depth-Near``/``X-Depth-Far`` headers."""
    return await _serve(call, DEPTH, "", max_side)


@router.post("/mask", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Person alpha matte as an 8-bit PNG")
async def mask(call: ImageCallDep, model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(call, MASK, model, max_side)


@router.post("/cutout", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="The person cut out as an RGBA PNG")
async def cutout(call: ImageCallDep, model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(call, CUTOUT, model, max_side)
