"""``preprocess``: encoded photo -> model inputs, output size and (if asked) RGB pixels.

Computes only the outputs the ensemble step requested, and decodes JPEGs at
the smallest DCT scale that covers them.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils
from PIL import Image

from contract.product import TENSORS
from imaging.decode import Photo
from imaging.errors import ImageError
from imaging.geometry import output_size
from imaging.tensors import model_input
from triton_models.allocator import keep_large_buffers
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each

RGB_OUTPUT = TENSORS.pixels
SIZE_OUTPUT = TENSORS.output_size


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = ModelParameters(config)
        self.max_pixels = parameters.int("max_pixels")
        # {"DEPTH_INPUT": {"size": [h, w], "normalization": "unit"}, ...}
        self.model_inputs = parameters.json("model_inputs")
        self.logger = pb_utils.Logger
        if (unset := keep_large_buffers()) is not None:
            self.logger.log_warn(f"preprocess: {unset}")

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _handle(self, request: pb_utils.InferenceRequest) -> list:
        data = pb_utils.get_input_tensor_by_name(request, TENSORS.image).as_numpy().reshape(-1)
        side = pb_utils.get_input_tensor_by_name(request, TENSORS.max_side)  # optional: absent keeps the size
        max_side = 0 if side is None else int(side.as_numpy().reshape(-1)[0])
        if data.size != 1:
            raise ImageError("send exactly one image per request")
        if max_side < 0:
            raise ImageError(f"max_side must be 0 (original size) or positive, got {max_side}")
        wanted = set(request.requested_output_names())
        photo = Photo(bytes(data[0]), self.max_pixels)
        size = output_size(photo.full_size, max_side)
        needs = [tuple(spec["size"][::-1]) for name, spec in self.model_inputs.items() if name in wanted]
        if RGB_OUTPUT in wanted:
            needs.append(size)
        rgb = photo.decode(min_size=(max(w for w, _ in needs), max(h for _, h in needs)) if needs else (1, 1))
        # Every tensor carries the batch axis of the one-photo request.
        full_width, full_height = photo.full_size
        outputs = [pb_utils.Tensor(SIZE_OUTPUT, np.array([[size[1], size[0]]], dtype=np.int32)),
                   pb_utils.Tensor(TENSORS.photo_size, np.array([[full_height, full_width]], dtype=np.int32))]
        for name, spec in self.model_inputs.items():
            if name in wanted:
                height, width = spec["size"]
                tensor = model_input(rgb, height, width, spec["normalization"])
                outputs.append(pb_utils.Tensor(name, tensor[np.newaxis]))
        if RGB_OUTPUT in wanted:
            pixels = rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR)
            outputs.append(pb_utils.Tensor(RGB_OUTPUT, np.asarray(pixels, dtype=np.uint8)[np.newaxis]))
        return outputs
