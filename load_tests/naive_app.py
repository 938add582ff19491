"""The naive baseline: one FastAPI process doing everything inline, no Triton (``d.`` of the bench).

``uvicorn load_tests.naive_app:create_app --factory`` serves every declared operation at the gateway's paths
with the same outputs, decode, ONNX Runtime (default sessions: all cores), matte refinement and PNG inline in
FastAPI's thread pool, with the same model files, ``imaging`` code and PNG level as the Triton steps. What it
lacks is what the benchmark measures (batching across requests, bounded model executions, separate processes
for the steps) and API keys and credits, which favours it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from contract.product import CUTOUT_PNG, DEPTH_PNG, LIMITS, PRODUCT
from contract.schema import Operation
from converters.catalog import ModelSource, load_catalog
from converters.triton_config import TUNING
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.matte import layers
from imaging.outputs import cutout_rgba, depth_to_uint16, encode_png, matte_to_uint8
from imaging.tensors import model_input

MODEL_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
PNG_COMPRESS_LEVEL = TUNING["cpu"].png_compress_level


@dataclass
class InlineModel:
    """One ONNX Runtime session with default options, and how to feed it."""

    source: ModelSource
    session: ort.InferenceSession

    @classmethod
    def load(cls, source: ModelSource, repository: Path = MODEL_REPOSITORY) -> InlineModel:
        path = repository / source.name / "1" / "model.onnx"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make models`")
        return cls(source, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))

    def run(self, rgb: Image.Image) -> np.ndarray:
        """The model's 2-D output map for one decoded photo."""
        height, width = self.source.input_size
        tensor = model_input(rgb, height, width, self.source.normalization)[np.newaxis]
        return self.session.run(None, {self.session.get_inputs()[0].name: tensor})[0][0, 0]


def output_pixels(model: InlineModel, data: bytes, max_side: int, operation: Operation) -> tuple[np.ndarray, list]:
    """Decode, infer and compose one photo as the steps do: the output's pixels and its header outputs' values."""
    photo = Photo(data, LIMITS.max_pixels)
    size = output_size(photo.full_size, max_side)
    height, width = model.source.input_size
    rgb = photo.decode(min_size=(max(width, size[0]), max(height, size[1])) if operation.uses_pixels else
                       (width, height))
    result = model.run(rgb)
    if operation.output == DEPTH_PNG:
        pixels, near, far = depth_to_uint16(result, size)
        return pixels, [near, far]
    colour = np.asarray(rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
    matte = layers(result, size, colour, colours=operation.output == CUTOUT_PNG)
    alpha = matte_to_uint8(matte.alpha)
    return cutout_rgba(matte.colour, alpha) if operation.output == CUTOUT_PNG else alpha, [float(matte.refined)]


def serve_inline(model: InlineModel, data: bytes, max_side: int, operation: Operation) -> tuple[bytes, dict]:
    """One photo as ``operation`` answers it: the PNG and its headers."""
    pixels, values = output_pixels(model, data, max_side, operation)
    names = [(name, output.format) for output in operation.header_outputs for name, _ in output.headers]
    return encode_png(Image.fromarray(pixels), PNG_COMPRESS_LEVEL), {
        name: form.format(value) for (name, form), value in zip(names, values, strict=True)}


def create_app(repository: Path = MODEL_REPOSITORY) -> FastAPI:
    models = {name: InlineModel.load(source, repository) for name, source in load_catalog().items()}
    app = FastAPI(title="imageserve naive baseline (benchmark only)")

    def route(operation: Operation):  # noqa: ANN202
        async def respond(request: Request) -> Response:
            query = request.query_params
            variant = query.get(operation.variant_parameter, operation.default_variant)
            max_side = query.get("max_side", "0")
            if variant not in (operation.variant_names or ("",)) or not max_side.isdigit():
                return JSONResponse({"error": {"code": "bad_parameter", "message": str(query)}}, status_code=400)
            model = models[operation.models_of(variant)[-1]]
            try:
                png, headers = await run_in_threadpool(serve_inline, model, await request.body(), int(max_side),
                                                       operation)
            except ImageError as exc:
                return JSONResponse({"error": {"code": "bad_image", "message": str(exc)}}, status_code=422)
            return Response(png, media_type="image/png", headers=headers)
        return respond

    app.add_api_route("/healthz", lambda: {"status": "ok"}, methods=["GET"])
    for operation in PRODUCT.operations:
        app.add_api_route(PRODUCT.path(operation), route(operation), methods=["POST"])
    return app
