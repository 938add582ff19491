"""``faces``: the decoded photo in, every face found out (``imaging.faces.pack``, pixels of the photo as sent).

It runs MediaPipe's pipeline through Triton: the detector on the letterboxed photo, then the landmark network
on every face's upright crop in one batch, then the iris network on both eyes of every face in one batch. The
networks are models of their own (``Product.face_models``), so their dynamic batchers also join the faces of
concurrent requests; the geometry between them is ``imaging.faces``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from contract.product import TENSORS
from imaging import faces as geometry
from imaging.errors import ImageError
from triton_models.model_calls import call_model
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        parameters = ModelParameters(json.loads(args["model_config"]))
        # {"detector": {"name": ..., "size": [h, w], "normalization": ...}, "landmarks": ..., "irises": ...}
        self.models = parameters.json("models")
        self.max_faces = parameters.int("max_faces")
        self.model_input = parameters.text("model_input", "")  # every converted model's input tensor
        self.logger = pb_utils.Logger
        # its anchors, thresholds and normalisation
        self.detector = geometry.detector_for(self.models["detector"]["size"][0], self.models["detector"]["name"])
        expected = {"detector": self.detector.normalization, "landmarks": geometry.LANDMARK_NORMALIZATION,
                    "irises": geometry.LANDMARK_NORMALIZATION}
        for role, normalization in expected.items():
            if self.models[role]["normalization"] != normalization:
                raise ValueError(f"the {role} model {self.models[role]['name']!r} is catalogued with normalization "
                                 f"{self.models[role]['normalization']!r}, but imaging.faces prepares "
                                 f"{normalization!r}: make converters/catalog.toml and imaging/faces.py agree")

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _run(self, role: str, tensors: list[np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        return call_model(self.models[role]["name"], {self.model_input: np.stack(tensors).astype(np.float32)}, outputs)

    def _handle(self, request: Any) -> list:
        rgb = pb_utils.get_input_tensor_by_name(request, TENSORS.pixels).as_numpy()
        if rgb.ndim != 4 or rgb.shape[0] != 1 or rgb.shape[3] != 3 or 0 in rgb.shape:
            raise ImageError(f"the faces step needs one RGB photo, [1, height, width, 3]; got {list(rgb.shape)}")
        rgb = np.ascontiguousarray(rgb[0])
        found = geometry.find_faces(rgb, self._run, self.detector, self.max_faces)
        return [pb_utils.Tensor(TENSORS.faces, geometry.pack(found, self.max_faces)[np.newaxis])]
