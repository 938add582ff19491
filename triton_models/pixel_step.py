"""A pixel model's step: the decoded photo (``RGB``), the operation's parameters and its step-"model" image
parts in, new pixels (``MODEL_RGB``) out, one photo per request, with the network's session opened once per
instance.

``style_step`` and ``upscale_step`` say what the network does with the photo (``transform``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from contract.product import PRODUCT, TENSORS
from imaging.errors import ImageError
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each
from triton_models.runtime import DEFAULT_RUNTIME, Session, open_session

OUTPUT = TENSORS.model_outputs["rgb"]


class PixelStep:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.parameters = ModelParameters(config)
        self.name = config["name"]
        self.logger = pb_utils.Logger
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        runtime = self.parameters.text("runtime", DEFAULT_RUNTIME)
        self.session: Session = open_session(path, runtime, self.parameters.int("threads"),
                                             bool(self.parameters.int("spinning")))
        self.request_parameters = PRODUCT.model_parameters(self.name)
        self.request_parts = PRODUCT.model_parts(self.name)
        self.setup()

    def setup(self) -> None:
        """Read this step's own config parameters."""

    def transform(self, rgb: np.ndarray, values: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _handle(self, request: Any) -> list:
        rgb = pb_utils.get_input_tensor_by_name(request, TENSORS.pixels).as_numpy()
        if rgb.ndim != 4 or rgb.shape[0] != 1 or rgb.shape[3] != 3 or 0 in rgb.shape:
            raise ImageError(f"{self.name} needs one RGB photo, [1, height, width, 3]; got {list(rgb.shape)}")
        values = {}
        for parameter in self.request_parameters:
            tensor = pb_utils.get_input_tensor_by_name(request, parameter.tensor)
            value = None if tensor is None else tensor.as_numpy().reshape(-1)[0]
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            values[parameter.name] = parameter.default if value is None or value == parameter.unset else value
        for part in self.request_parts:  # encoded bytes; b"" when not sent
            tensor = pb_utils.get_input_tensor_by_name(request, part.tensor)
            values[part.name] = b"" if tensor is None else bytes(tensor.as_numpy().reshape(-1)[0])
        result = self.transform(np.ascontiguousarray(rgb[0]), values)
        return [pb_utils.Tensor(OUTPUT, result[np.newaxis])]
