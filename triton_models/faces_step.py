"""``faces``: the decoded photo in, every face found out (``imaging.faces.pack``, pixels of the photo as sent).

It runs MediaPipe's pipeline through Triton: the detector on the letterboxed photo, then the landmark network
on every face's upright crop in one batch, then the iris network on both eyes of every face in one batch. The
networks are models of their own (``Product.face_models``), so their dynamic batchers also join the faces of
concurrent requests; the geometry between them is ``imaging.faces``.
"""

from __future__ import annotations

import dataclasses
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

MODEL_INPUT = "image"  # every converted model's input (converters/onnx_edit.py)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        parameters = ModelParameters(json.loads(args["model_config"]))
        # {"detector": {"name": ..., "size": [h, w], "normalization": ...}, "landmarks": ..., "irises": ...}
        self.models = parameters.json("models")
        self.max_faces = parameters.int("max_faces")
        self.logger = pb_utils.Logger
        side = self.models["detector"]["size"][0]
        if side not in geometry.DETECTORS:
            raise ValueError(f"the detector {self.models['detector']['name']!r} takes {side} px; imaging.faces "
                             f"knows detectors of {sorted(geometry.DETECTORS)} px")
        self.detector = geometry.DETECTORS[side]  # its anchors, thresholds and normalisation
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
        return call_model(self.models[role]["name"], {MODEL_INPUT: np.stack(tensors).astype(np.float32)}, outputs)

    def _handle(self, request: Any) -> list:
        rgb = pb_utils.get_input_tensor_by_name(request, TENSORS.pixels).as_numpy()
        if rgb.ndim != 4 or rgb.shape[0] != 1 or rgb.shape[3] != 3 or 0 in rgb.shape:
            raise ImageError(f"the faces step needs one RGB photo, [1, height, width, 3]; got {list(rgb.shape)}")
        rgb = np.ascontiguousarray(rgb[0])
        found = self.find(rgb)
        return [pb_utils.Tensor(TENSORS.faces, geometry.pack(found, self.max_faces)[np.newaxis])]

    def find(self, rgb: np.ndarray) -> list[geometry.Face]:
        """The largest ``max_faces`` faces whose landmark crop the landmark network confirms, with landmarks and
        irises."""
        tensor, letterbox = geometry.detector_input(rgb, self.detector)
        regressors, scores = self._run("detector", [tensor], ["regressors", "scores"])
        faces = geometry.decode_detections(regressors[0], scores[0], letterbox, detector=self.detector)
        faces = sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)[:self.max_faces]
        if not faces:
            return []
        crops = [geometry.landmark_crop(face, rgb) for face in faces]
        raw, flags = self._run("landmarks", [tensor for tensor, _ in crops], ["landmarks", "face_flag"])
        kept = [dataclasses.replace(face, landmarks=geometry.landmarks_from(points, affine))
                for face, (_, affine), points, flag in zip(faces, crops, raw, flags, strict=True)
                if geometry.face_present(flag)]
        if not kept:
            return []
        eyes = [geometry.eye_crops(face.landmarks, rgb) for face in kept]
        contours, irises = self._run("irises", [t for tensors, _, _ in eyes for t in tensors], ["eye_contour", "iris"])
        return [dataclasses.replace(face, irises=geometry.irises_from(contours[2 * i:2 * i + 2],
                                                                      irises[2 * i:2 * i + 2], affines))
                for i, (face, (_, affines, _)) in enumerate(zip(kept, eyes, strict=True))]
