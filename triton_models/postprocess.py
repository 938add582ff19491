"""``postprocess``: the compose step. Model outputs, the photo and parameters -> the requested results.

Reads the tensors, hands them to ``triton_models.compose`` (which holds the work, testable without Triton)
and writes back only the outputs the ensemble requested. Mattes are refined at the output size against the
photo (first kept near the person a variant's gate model sees, ``MATTE_GATE``); over the refinement's pixel
bound, or if it cannot run, the plain upsampled matte is served instead, never an error, and ``MATTE_REFINED``
(header ``X-Matte-Refined``) says which.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from contract.product import PRODUCT, TENSORS
from imaging.errors import ImageError
from imaging.faces import unpack
from imaging.person_gate import person_gate
from triton_models.allocator import keep_large_buffers
from triton_models.compose import Scene, Values, compose
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each

DEPTH, ALPHA, MODEL_RGB = (TENSORS.model_outputs[kind] for kind in ("depth", "alpha", "rgb"))
IMAGE_OUTPUTS = {out.tensor for out in PRODUCT.image_outputs()}


def _optional(request: pb_utils.InferenceRequest, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def _input(request: pb_utils.InferenceRequest, name: str) -> np.ndarray:
    value = _optional(request, name)
    if value is None:
        raise ImageError(f"postprocess needs input {name!r} for the outputs requested")
    return value


def _size(request: pb_utils.InferenceRequest, name: str) -> tuple[int, int]:
    height, width = (int(v) for v in _input(request, name).reshape(-1)[:2])
    return width, height


def _first(array: np.ndarray | None) -> object:
    return None if array is None else array.reshape(-1)[0]


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = ModelParameters(config)
        self.compress_level = parameters.int("png_compress_level")
        self.max_pixels = parameters.int("max_pixels")
        self.logger = pb_utils.Logger
        if (unset := keep_large_buffers()) is not None:
            self.logger.log_warn(f"postprocess: {unset}")

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _handle(self, request: pb_utils.InferenceRequest) -> list:
        # Tensors carry the batch axis of a one-photo request: [1, ...].
        wanted = set(request.requested_output_names())
        size = _size(request, TENSORS.output_size)
        rgb, alpha, depth, made = (_optional(request, name) for name in (TENSORS.pixels, ALPHA, DEPTH, MODEL_RGB))
        matte = None if alpha is None else alpha[0, 0]
        if matte is not None and (person := _optional(request, TENSORS.matte_gate)) is not None:
            matte = person_gate(matte, person[0, 0])
        if rgb is not None and rgb.shape[1:3] != (size[1], size[0]):
            raise ImageError(f"RGB is {rgb.shape[2]}x{rgb.shape[1]}, expected {size[0]}x{size[1]}")
        faces, subject = _optional(request, TENSORS.faces), _first(_optional(request, TENSORS.matte_subject))
        scene = Scene(size, _size(request, TENSORS.photo_size), None if rgb is None else rgb[0],
                      matte, None if depth is None else depth[0, 0],
                      None if made is None else made[0], faces=None if faces is None else unpack(faces[0]),
                      subject_kind=-1 if subject is None else int(subject))
        values = Values({p.tensor: _first(_optional(request, p.tensor)) for p in PRODUCT.compose_parameters()})
        parts = {part.tensor: bytes(_first(_optional(request, part.tensor)) or b"") for part in PRODUCT.image_parts()}
        results = compose(wanted, scene, values, parts, self.compress_level, self.max_pixels)
        for warning in scene.warn:
            self.logger.log_warn(f"postprocess: {warning}")
        outputs = []
        for name, result in results.items():
            if name in IMAGE_OUTPUTS:
                outputs.append(pb_utils.Tensor(name, np.array([[result]], dtype=np.object_)))
            else:
                outputs.append(pb_utils.Tensor(name, np.array([result], dtype=np.float32)))
        return outputs
