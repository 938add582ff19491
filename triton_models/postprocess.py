"""``postprocess``: model outputs -> PNGs at the output size (only those requested).

Mattes are refined at the output size against the decoded photo and cutouts get estimated edge colours
(``imaging.matte``); over the refinement's pixel bound, or if it cannot run, the plain upsampled matte is
served instead, never an error, and ``MATTE_REFINED`` (header ``X-Matte-Refined``) says which.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from contract.product import CUTOUT_PNG, DEPTH_PNG, DEPTH_RANGE, MASK_PNG, MATTE_REFINED, TENSORS
from imaging.errors import ImageError
from imaging.matte import layers
from imaging.outputs import depth_png, matte_png, refined_cutout_png
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each

DEPTH, ALPHA = TENSORS.model_outputs["depth"], TENSORS.model_outputs["alpha"]


def _bytes_tensor(name: str, data: bytes) -> pb_utils.Tensor:
    return pb_utils.Tensor(name, np.array([[data]], dtype=np.object_))


def _input(request: pb_utils.InferenceRequest, name: str) -> np.ndarray:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise ImageError(f"postprocess needs input {name!r} for the outputs requested")
    return tensor.as_numpy()


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.compress_level = ModelParameters(config).int("png_compress_level")
        self.logger = pb_utils.Logger

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _handle(self, request: pb_utils.InferenceRequest) -> list:
        # Tensors carry the batch axis of a one-photo request: [1, ...].
        wanted = set(request.requested_output_names())
        height, width = (int(v) for v in _input(request, TENSORS.output_size).reshape(-1)[:2])
        size = (width, height)
        outputs = []
        if DEPTH_PNG.tensor in wanted or DEPTH_RANGE.tensor in wanted:
            png, near, far = depth_png(_input(request, DEPTH)[0, 0], size, self.compress_level)
            outputs.append(_bytes_tensor(DEPTH_PNG.tensor, png))
            outputs.append(pb_utils.Tensor(DEPTH_RANGE.tensor, np.array([[near, far]], dtype=np.float32)))
        if wanted & {MASK_PNG.tensor, CUTOUT_PNG.tensor, MATTE_REFINED.tensor}:
            outputs.extend(self._mattes(request, wanted, size))
        return outputs

    def _mattes(self, request: pb_utils.InferenceRequest, wanted: set[str], size: tuple[int, int]) -> list:
        """The mask and/or cutout from one refined matte, and the flag saying whether it was refined."""
        width, height = size
        cutout = CUTOUT_PNG.tensor in wanted
        rgb = None
        if cutout or pb_utils.get_input_tensor_by_name(request, TENSORS.pixels) is not None:
            rgb = _input(request, TENSORS.pixels)[0]
            if rgb.shape[:2] != (height, width):
                raise ImageError(f"RGB is {rgb.shape[1]}x{rgb.shape[0]}, expected {width}x{height}")
        result = layers(_input(request, ALPHA)[0, 0], size, rgb, colours=cutout)
        if result.failed:
            self.logger.log_warn(f"postprocess: plain matte for a {width}x{height} output: {result.fallback}")
        outputs = []
        if MASK_PNG.tensor in wanted:
            outputs.append(_bytes_tensor(MASK_PNG.tensor, matte_png(result.alpha, self.compress_level)))
        if cutout:
            png = refined_cutout_png(result.colour, result.alpha, self.compress_level)
            outputs.append(_bytes_tensor(CUTOUT_PNG.tensor, png))
        outputs.append(pb_utils.Tensor(MATTE_REFINED.tensor, np.array([[float(result.refined)]], dtype=np.float32)))
        return outputs
