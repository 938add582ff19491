"""The naive baseline: one FastAPI process doing everything inline, no Triton (``d.`` of the bench).

``uvicorn load_tests.naive_app:create_app --factory`` serves, at the gateway's paths, every operation it can
answer from ``max_side`` and ``model`` alone (``NAIVE_OPERATIONS``: the operations of depth and matte models with no
required parameter; every other parameter at its default), at every variant, ``auto`` included: the face networks
run inline first (``load_tests.naive_faces``) and choose the matte, as the ensemble's faces and ``matte_auto``
steps do. The outputs, decode, ONNX Runtime (default sessions: all cores) and compose code
(``triton_models.compose``) are the ensemble's, inline in FastAPI's thread pool, with the same model files and PNG
level as the Triton steps. What it lacks is what the benchmark measures (batching across requests, bounded model
executions, separate processes for the steps) and API keys and credits, which favours it.
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
from contract.schema import SUBJECTS, Operation
from converters.catalog import ModelSource, load_catalog
from converters.triton_config import TUNING, fed_by_decode
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.person_gate import person_gate
from imaging.tensors import model_input
from load_tests.naive_faces import InlineFaces
from triton_models.compose import Scene, Values, compose

MODEL_REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
PNG_COMPRESS_LEVEL = TUNING["cpu"].png_compress_level


def _naive_serves(operation: Operation) -> bool:
    """Every model of every ensemble maps the decoded photo to a depth map or a matte (no pixel model), and no
    parameter is required (the naive app reads only ``max_side`` and the variant)."""
    models = {m for variant in operation.variants_of_ensembles for m in operation.models_of(variant)}
    required = operation.one_of and operation.one_of_required
    return not required and all(fed_by_decode(load_catalog()[name]) for name in models)


NAIVE_OPERATIONS = tuple(op for op in PRODUCT.operations if _naive_serves(op))


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


@dataclass
class Inline:
    """Everything the naive app runs: the depth and matte models of ``NAIVE_OPERATIONS``, and the face networks."""

    models: dict[str, InlineModel]
    faces: InlineFaces

    @classmethod
    def load(cls, repository: Path = MODEL_REPOSITORY) -> Inline:
        catalog = load_catalog()
        names = dict.fromkeys(m for op in NAIVE_OPERATIONS for v in op.variants_of_ensembles for m in op.models_of(v))
        return cls({name: InlineModel.load(catalog[name], repository) for name in names},
                   InlineFaces(catalog, repository))


def inline_scene(inline: Inline, data: bytes, max_side: int, operation: Operation, variant: str) -> Scene:
    """Decode once, find the faces when the ensemble would, and run each model the ensemble runs (of a by-faces
    variant, the one it chooses; a portrait matte's gate too), as the decode, faces and matte steps and the models
    do."""
    photo = Photo(data, LIMITS.max_pixels)
    size = output_size(photo.full_size, max_side)
    inputs = [inline.models[name] for name in operation.models_of(variant)]
    # every parameter at its default, as served: the ensemble the gateway would choose
    plain = operation.has_plain_twin(variant) and not operation.wants_faces({})
    with_faces = operation.needs_faces(variant) and not plain
    needs = [(m.source.input_size[1], m.source.input_size[0]) for m in inputs]
    needs += [size] if operation.uses_pixels or with_faces else []
    rgb = photo.decode(min_size=(max(w for w, _ in needs), max(h for _, h in needs)))
    pixels = np.asarray(rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
    faces = inline.faces.find(pixels) if with_faces else None
    chosen = operation.variant(variant)
    subject = SUBJECTS.index(chosen.subject) if chosen and chosen.subject else -1  # as the gateway writes it
    if chosen and chosen.by_faces:
        with_face, without_face = chosen.models
        inputs = [m for m in inputs if m.source.name != (without_face if faces else with_face)]
        subject = SUBJECTS.index("person" if faces else "object")
    gate = next((m for m in inputs if chosen and m.source.name == chosen.gate), None)
    maps = {m.source.output: m.run(rgb) for m in inputs if m is not gate}
    alpha = maps.get("alpha")
    if gate is not None and alpha is not None and (faces or not chosen.by_faces):  # as the ensemble gates
        alpha = person_gate(alpha, gate.run(rgb))
    return Scene(size, photo.full_size, pixels if operation.uses_pixels else None, alpha,
                 maps.get("depth"), faces=faces if operation.uses_faces else None, subject_kind=subject)


def serve_inline(inline: Inline, data: bytes, max_side: int, operation: Operation, variant: str) -> tuple[bytes, dict]:
    """One photo as the ensemble answers it (every other parameter at its default): the result and its headers."""
    scene = inline_scene(inline, data, max_side, operation, variant)
    results = compose(set(operation.triton_outputs), scene, Values({}), {}, PNG_COMPRESS_LEVEL, LIMITS.max_pixels)
    headers = {}
    for output in operation.header_outputs:
        headers.update(output.render(results[output.tensor]))
    return results[operation.output.tensor], headers


def create_app(repository: Path = MODEL_REPOSITORY) -> FastAPI:
    inline = Inline.load(repository)
    app = FastAPI(title="imageserve naive baseline (benchmark only)")

    def route(operation: Operation):  # noqa: ANN202
        async def respond(request: Request) -> Response:
            query = request.query_params
            variant = query.get(operation.variant_parameter, operation.default_variant)
            max_side = query.get("max_side", "0")
            if variant not in (operation.variant_names or ("",)) or not max_side.isdigit():
                message = (f"{operation.variant_parameter} must be one of {', '.join(operation.variant_names)} and "
                           f"max_side a whole number; got {dict(query)}")
                return JSONResponse({"error": {"code": "bad_parameter", "message": message}}, status_code=400)
            try:
                body, headers = await run_in_threadpool(serve_inline, inline, await request.body(), int(max_side),
                                                        operation, variant)
            except ImageError as exc:
                return JSONResponse({"error": {"code": "bad_image", "message": str(exc)}}, status_code=422)
            return Response(body, media_type=operation.output.media_type, headers=headers)
        return respond

    app.add_api_route("/healthz", lambda: {"status": "ok"}, methods=["GET"])
    for operation in NAIVE_OPERATIONS:
        app.add_api_route(PRODUCT.path(operation), route(operation), methods=["POST"])
    return app
