"""The naive baseline: one FastAPI process that does everything inline, no Triton.

``uvicorn load_tests.naive_app:create_app --factory`` serves ``/v1/depth``,
``/v1/mask`` and ``/v1/cutout`` with the same outputs as the gateway: per
request it decodes the photo with Pillow, resizes and normalises it, runs the
ONNX model with ONNX Runtime and encodes the PNG, in FastAPI's thread pool.

It is an honest "just put the model in a web app" service, not a straw man:
the same model files, the same ``imaging`` functions (including the
reduced-size JPEG decode) and the same PNG compression level as the Triton
steps; ONNX Runtime sessions use their defaults (all cores). What it lacks is
what the benchmark measures: dynamic batching across requests, a bounded
number of model executions at a time, and separate processes for the steps.
It has no API keys or credit metering either, which favours it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from contract.product import LIMITS, PRODUCT
from converters.catalog import ModelSource, load_catalog
from converters.triton_config import TUNING
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.outputs import cutout_png, depth_png, mask_png
from imaging.tensors import model_input

MODEL_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
PNG_COMPRESS_LEVEL = TUNING["cpu"].png_compress_level
SEGMENTATION = {v.name: v.models[-1] for v in PRODUCT.operation("mask").variants}
MaxSide = Annotated[int, Query(ge=0, le=LIMITS.max_output_side)]


@dataclass
class InlineModel:
    """One ONNX Runtime session with default options, and how to feed it."""

    source: ModelSource
    session: ort.InferenceSession

    @classmethod
    def load(cls, source: ModelSource, repository: Path) -> InlineModel:
        path = repository / source.name / "1" / "model.onnx"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make models`")
        return cls(source, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))

    def run(self, rgb: Image.Image) -> np.ndarray:
        """The model's 2-D output map for one decoded photo."""
        height, width = self.source.input_size
        tensor = model_input(rgb, height, width, self.source.normalization)[np.newaxis]
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: tensor})[0][0, 0]


def serve_inline(model: InlineModel, data: bytes, max_side: int, product: str) -> tuple[bytes, dict[str, str]]:
    """Decode, infer and encode one photo; the PNG and its extra headers."""
    photo = Photo(data, LIMITS.max_pixels)
    size = output_size(photo.full_size, max_side)
    height, width = model.source.input_size
    need = (max(width, size[0]), max(height, size[1])) if product == "cutout" else (width, height)
    rgb = photo.decode(min_size=need)
    result = model.run(rgb)
    if product == "depth":
        png, near, far = depth_png(result, size, PNG_COMPRESS_LEVEL)
        return png, {"X-Depth-Near": f"{near:.4f}", "X-Depth-Far": f"{far:.4f}"}
    if product == "mask":
        return mask_png(result, size, PNG_COMPRESS_LEVEL), {}
    pixels = rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR)
    return cutout_png(np.asarray(pixels, dtype=np.uint8), result, PNG_COMPRESS_LEVEL), {}


def create_app(repository: Path | None = None) -> FastAPI:
    repository = repository or Path(os.environ.get("NAIVE_MODEL_REPOSITORY", MODEL_REPOSITORY))
    models = {name: InlineModel.load(source, repository) for name, source in load_catalog().items()}
    depth_model = next(m for m in models.values() if m.source.output == "depth")
    app = FastAPI(title="imageserve naive baseline (benchmark only)")

    async def respond(request: Request, model: InlineModel, max_side: int, product: str) -> Response:
        data = await request.body()
        try:
            png, headers = await run_in_threadpool(serve_inline, model, data, max_side, product)
        except ImageError as exc:
            return JSONResponse({"error": {"code": "bad_image", "message": str(exc)}}, status_code=422)
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/depth")
    async def depth(request: Request, max_side: MaxSide = 0) -> Response:
        return await respond(request, depth_model, max_side, "depth")

    @app.post("/v1/mask")
    async def mask(request: Request, model: Literal["fast", "quality"] = "fast", max_side: MaxSide = 0) -> Response:
        return await respond(request, models[SEGMENTATION[model]], max_side, "mask")

    @app.post("/v1/cutout")
    async def cutout(request: Request, model: Literal["fast", "quality"] = "fast", max_side: MaxSide = 0) -> Response:
        return await respond(request, models[SEGMENTATION[model]], max_side, "cutout")

    return app
