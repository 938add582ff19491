"""The naive baseline: one FastAPI process doing everything inline, no Triton (``d.`` of the bench).

``uvicorn load_tests.naive_app:create_app --factory`` serves every declared operation at the gateway's paths
(``max_side`` and ``model`` only; every other parameter at its default) with the same outputs, decode, ONNX
Runtime (default sessions: all cores) and compose code (``triton_models.compose``) inline in FastAPI's thread
pool, with the same model files and PNG level as the Triton steps. What it
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

from contract.product import LIMITS, PRODUCT
from contract.schema import Operation
from converters.catalog import ModelSource, load_catalog
from converters.triton_config import TUNING
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.tensors import model_input
from triton_models.compose import Scene, Values, compose

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


def inline_scene(models: dict[str, InlineModel], data: bytes, max_side: int, operation: Operation,
                 variant: str) -> Scene:
    """Decode once and run each model of the ensemble, as the decode step and the models do."""
    photo = Photo(data, LIMITS.max_pixels)
    size = output_size(photo.full_size, max_side)
    used = [models[name] for name in operation.models_of(variant)]
    needs = [(m.source.input_size[1], m.source.input_size[0]) for m in used] + ([size] if operation.uses_pixels else [])
    rgb = photo.decode(min_size=(max(w for w, _ in needs), max(h for _, h in needs)))
    maps = {m.source.output: m.run(rgb) for m in used}
    pixels = None
    if operation.uses_pixels:
        pixels = np.asarray(rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
    return Scene(size, photo.full_size, pixels, maps.get("alpha"), maps.get("depth"))


def serve_inline(models: dict[str, InlineModel], data: bytes, max_side: int, operation: Operation,
                 variant: str) -> tuple[bytes, dict]:
    """One photo as the ensemble answers it (every other parameter at its default): the result and its headers."""
    scene = inline_scene(models, data, max_side, operation, variant)
    results = compose(set(operation.triton_outputs), scene, Values({}), {}, PNG_COMPRESS_LEVEL, LIMITS.max_pixels)
    headers = {}
    for output in operation.header_outputs:
        headers.update(output.render(results[output.tensor]))
    return results[operation.output.tensor], headers


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
            try:
                body, headers = await run_in_threadpool(serve_inline, models, await request.body(), int(max_side),
                                                        operation, variant)
            except ImageError as exc:
                return JSONResponse({"error": {"code": "bad_image", "message": str(exc)}}, status_code=422)
            return Response(body, media_type=operation.output.media_type, headers=headers)
        return respond

    app.add_api_route("/healthz", lambda: {"status": "ok"}, methods=["GET"])
    for operation in PRODUCT.operations:
        app.add_api_route(PRODUCT.path(operation), route(operation), methods=["POST"])
    return app
