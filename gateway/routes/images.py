"""``POST /v1/depth``, ``/v1/mask``, ``/v1/cutout``: one photo in, one PNG out."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.deps import MetricsDep, SettingsDep, TritonDep
from gateway.errors import ApiError, BadRequest, ErrorBody
from gateway.image_check import MEDIA_TYPES, inspect_image
from gateway.upload import read_upload

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


def _rejection_reason(error: ApiError) -> str:
    return "overload" if error.status_code in (503, 504) else "bad_input"


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
        413: "Body or pixel count over the limit",
        415: "Not a JPEG, PNG or WebP image, or Content-Type does not match the data",
        422: "The image is truncated, corrupt or cannot be decoded",
        503: "Inference service unavailable (retry after the Retry-After header)",
        504: "Inference took longer than the deadline",
    }.items()
}
PNG_RESPONSE = {200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                      "description": "The result as a PNG image"}}
MaxSide = Annotated[int, Query(ge=0, description="Longest side of the output in pixels; 0 keeps the photo's size")]
Model = Annotated[SegmentationModel, Query(description="Segmentation model: fast (MediaPipe) or quality (U2-Netp)")]


async def _serve(
    request: Request, operation: Operation, model: str, max_side: int,
    settings: SettingsDep, metrics: MetricsDep, triton: TritonDep,
) -> Response:
    route = operation.name
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    try:
        if max_side > settings.max_output_side:
            raise BadRequest(f"max_side {max_side} is over the limit of {settings.max_output_side}", code="invalid_parameter")
        upload = await read_upload(request, settings.max_body_bytes)
        metrics.request_bytes.labels(route).inc(len(upload.data))
        info = inspect_image(upload.data, settings.max_pixels, upload.declared_type)
        metrics.input_megapixels.labels(route).observe(info.megapixels)
        inference_started = time.perf_counter()
        try:
            outputs = await triton.infer(operation.ensemble(model), upload.data, max_side, operation.outputs())
        finally:
            metrics.triton_duration.labels(route).observe(time.perf_counter() - inference_started)
        png = bytes(outputs[operation.png_output].reshape(-1)[0])
        headers = {"X-Request-Id": uuid.uuid4().hex, "Cache-Control": "no-store"}
        if operation is DEPTH:
            near, far = (float(v) for v in outputs["DEPTH_RANGE"].reshape(-1)[:2])
            headers["X-Depth-Near"] = f"{near:.4f}"
            headers["X-Depth-Far"] = f"{far:.4f}"
        metrics.response_bytes.labels(route).inc(len(png))
        status = 200
        return Response(png, media_type="image/png", headers=headers)
    except ApiError as error:
        status = error.status_code
        metrics.rejections.labels(_rejection_reason(error)).inc()
        raise
    finally:
        metrics.in_flight.dec()
        metrics.requests.labels(route, f"{status // 100}xx").inc()
        metrics.request_duration.labels(route).observe(time.perf_counter() - started)


@router.post("/depth", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Depth map as a 16-bit PNG (near = bright)")
async def depth(request: Request, settings: SettingsDep, metrics: MetricsDep, triton: TritonDep,
                max_side: MaxSide = 0) -> Response:
    """16-bit greyscale PNG, linear in depth: ``d = far - pixel / 65535 * (far - near)``,
    with ``near``/``far`` (metres, from the model) in the ``X-Depth-Near``/``X-Depth-Far`` headers."""
    return await _serve(request, DEPTH, "", max_side, settings, metrics, triton)


@router.post("/mask", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="Person alpha matte as an 8-bit PNG")
async def mask(request: Request, settings: SettingsDep, metrics: MetricsDep, triton: TritonDep,
               model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(request, MASK, model, max_side, settings, metrics, triton)


@router.post("/cutout", response_class=Response, responses={**PNG_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY,
             summary="The person cut out as an RGBA PNG")
async def cutout(request: Request, settings: SettingsDep, metrics: MetricsDep, triton: TritonDep,
                 model: Model = "fast", max_side: MaxSide = 0) -> Response:
    return await _serve(request, CUTOUT, model, max_side, settings, metrics, triton)
