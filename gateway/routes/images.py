"""``POST /v1/depth``, ``/v1/mask``, ``/v1/cutout``: one photo in, one PNG out."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from gateway import ledger
from gateway.deps import MetricsDep, PrincipalDep, RateLimiterDep, SessionsDep, SettingsDep, TritonDep
from gateway.errors import ApiError, BadRequest, ErrorBody, Forbidden, PaymentRequired, TooManyRequests
from gateway.image_check import MEDIA_TYPES, inspect_image
from gateway.keys import Principal
from gateway.rate_limit import Decision, RateLimiter
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


REJECTION_REASONS = {401: "auth", 403: "auth", 402: "quota", 429: "rate", 503: "overload", 504: "overload"}


def _rejection_reason(error: ApiError) -> str:
    return REJECTION_REASONS.get(error.status_code, "bad_input")


router = APIRouter(prefix="/v1", tags=["images"])

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
    }
}
ERRORS = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "Bad parameter or malformed body",
        401: "Missing, unknown, revoked or expired API key",
        402: "Not enough credits or monthly quota left for this request",
        403: "The API key's tenant may not use this operation",
        413: "Body or pixel count over the limit",
        415: "Not a JPEG, PNG or WebP image, or Content-Type does not match the data",
        422: "The image is truncated, corrupt or cannot be decoded",
        429: "Over the key's rate limit (see Retry-After and RateLimit-* headers); not billed",
        503: "Inference service unavailable (retry after the Retry-After header)",
        504: "Inference took longer than the deadline",
    }.items()
}
PNG_RESPONSE = {200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                      "description": "The result as a PNG image"}}
MaxSide = Annotated[int, Query(ge=0, description="Longest side of the output in pixels; 0 keeps the photo's size")]
Model = Annotated[SegmentationModel, Query(description="Segmentation model: fast (MediaPipe) or quality (U2-Netp)")]


async def _serve(
    request: Request, principal: Principal, operation: Operation, model: str, max_side: int,
    settings: SettingsDep, metrics: MetricsDep, triton: TritonDep, sessions: SessionsDep, limiter: RateLimiterDep,
) -> Response:
    """Limits, header checks, credit reservation, inference, then commit (or release on any failure)."""
    route = operation.name
    started = time.perf_counter()
    request_id = uuid.uuid4().hex
    status = 500
    reservation: ledger.Reservation | None = None
    committed = False
    metrics.in_flight.inc()
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
        upload = await read_upload(request, settings.max_body_bytes)
        metrics.request_bytes.labels(route).inc(len(upload.data))
        info = inspect_image(upload.data, settings.max_pixels, upload.declared_type)
        metrics.input_megapixels.labels(route).observe(info.megapixels)
        cost = request.app.state.prices.cost(operation.name, info.megapixels)
        try:
            reservation = await run_in_threadpool(ledger.reserve, sessions, principal.tenant_id, cost)
        except ledger.InsufficientCredits as short:
            if short.reason == "balance":
                raise PaymentRequired(f"this request costs {short.needed} credits and the balance is {short.balance}; "
                                      "top up the account or send a smaller photo") from None
            raise PaymentRequired(f"this request costs {short.needed} credits, over what is left of this month's quota; "
                                  "wait for next month or ask for a larger quota", code="monthly_quota_exceeded") from None
        inference_started = time.perf_counter()
        try:
            outputs = await triton.infer(operation.ensemble(model), upload.data, max_side, operation.outputs())
        finally:
            triton_s = time.perf_counter() - inference_started
            metrics.triton_duration.labels(route).observe(triton_s)
        png = bytes(outputs[operation.png_output].reshape(-1)[0])
        headers = {"X-Request-Id": request_id, "Cache-Control": "no-store", **decision.headers()}
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
        try:
            await run_in_threadpool(ledger.commit, sessions, reservation, charge)
            committed = True
            metrics.credits_charged.labels(route).inc(reservation.credits)
        except SQLAlchemyError:
            # Never bill without a ledger row: the reservation is released below and the result is free.
            metrics.ledger_write_errors.inc()
            log.exception("ledger write failed for request %s; its credits are released", request_id)
        headers["X-Credits-Charged"] = str(reservation.credits if committed else 0)
        headers["X-Credits-Remaining"] = str(reservation.remaining if committed else reservation.remaining + reservation.credits)
        metrics.response_bytes.labels(route).inc(len(png))
        status = 200
        return Response(png, media_type="image/png", headers=headers)
    except ApiError as error:
        status = error.status_code
        metrics.rejections.labels(_rejection_reason(error)).inc()
        raise
    finally:
        if reservation is not None and not committed:
            await _release(sessions, reservation, request_id)
        metrics.in_flight.dec()
        metrics.requests.labels(route, f"{status // 100}xx").inc()
        metrics.request_duration.labels(route).observe(time.perf_counter() - started)


async def _take_token(limiter: RateLimiter, principal: Principal) -> Decision:
    try:
        return await run_in_threadpool(limiter.take, principal.key_id, principal.rate_per_s, principal.burst)
    except Exception:  # a rate-limit store outage must not stop paid traffic: fail open, loudly
        log.exception("rate limiter unavailable; letting the request through")
        return Decision(True, principal.burst, principal.burst, 0, 0)


async def _release(sessions: SessionsDep, reservation: ledger.Reservation, request_id: str) -> None:
    # Shielded: runs even when the client went away and the request task is being cancelled.
    with anyio.CancelScope(shield=True):
        try:
            await run_in_threadpool(ledger.release, sessions, reservation)
        except Exception:
            log.exception("could not release %d credits of tenant %d for request %s",
                          reservation.credits, reservation.tenant_id, request_id)


@router.post("/depth", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Depth map as a 16-bit PNG (near = bright)")
async def depth(principal: PrincipalDep, request: Request, settings: SettingsDep, metrics: MetricsDep,
                triton: TritonDep, sessions: SessionsDep, limiter: RateLimiterDep, max_side: MaxSide = 0) -> Response:
    """16-bit greyscale PNG, linear in depth: ``d = far - pixel / 65535 * (far - near)``,
    with ``near``/``far`` (metres, from the model) in the ``X-Depth-Near``/``X-Depth-Far`` headers."""
    return await _serve(request, principal, DEPTH, "", max_side, settings, metrics, triton, sessions, limiter)


@router.post("/mask", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Person alpha matte as an 8-bit PNG")
async def mask(principal: PrincipalDep, request: Request, settings: SettingsDep, metrics: MetricsDep,
               triton: TritonDep, sessions: SessionsDep, limiter: RateLimiterDep,
               model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(request, principal, MASK, model, max_side, settings, metrics, triton, sessions, limiter)


@router.post("/cutout", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="The person cut out as an RGBA PNG")
async def cutout(principal: PrincipalDep, request: Request, settings: SettingsDep, metrics: MetricsDep,
                 triton: TritonDep, sessions: SessionsDep, limiter: RateLimiterDep,
                 model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(request, principal, CUTOUT, model, max_side, settings, metrics, triton, sessions, limiter)
