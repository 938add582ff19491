"""The naive baseline's faces: the face networks in ONNX Runtime, inline, as the faces step runs them in Triton.

The same geometry (``imaging.faces``), networks, batching per photo (every face's landmark crop in one run, every
eye in one run) and ``max_faces`` as ``triton_models/faces_step.py``, whose calls go through Triton instead; the
faces pass through ``pack``/``unpack`` as they do between the ensemble's steps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.product import PRODUCT
from converters.catalog import ModelSource
from imaging import faces as geometry

ROLES = ("detector", "landmarks", "irises")  # Product.face_models, in this order


class InlineFaces:
    """The detector, landmark and iris networks of ``PRODUCT.face_models``, each one default ONNX Runtime session."""

    def __init__(self, sources: dict[str, ModelSource], repository: Path) -> None:
        chosen = dict(zip(ROLES, (sources[name] for name in PRODUCT.face_models), strict=True))
        side = chosen["detector"].input_size[0]
        if side not in geometry.DETECTORS:
            raise ValueError(f"the detector {chosen['detector'].name!r} takes {side} px; imaging.faces knows "
                             f"detectors of {sorted(geometry.DETECTORS)} px")
        self.detector = geometry.DETECTORS[side]
        self.sessions = {}
        for role, source in chosen.items():
            path = repository / source.name / "1" / "model.onnx"
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run `make models`")
            self.sessions[role] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def _run(self, role: str, tensors: list[np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        session = self.sessions[role]
        return session.run(outputs, {session.get_inputs()[0].name: np.stack(tensors).astype(np.float32)})

    def find(self, rgb: np.ndarray) -> list[geometry.Face]:
        """The faces of the photo (uint8 (H, W, 3) at the output size), as the ensemble's compose step gets them."""
        tensor, letterbox = geometry.detector_input(rgb, self.detector)
        regressors, scores = self._run("detector", [tensor], ["regressors", "scores"])
        found = geometry.decode_detections(regressors[0], scores[0], letterbox, detector=self.detector)
        found = sorted(found, key=lambda f: f.box[2] * f.box[3], reverse=True)[:PRODUCT.max_faces]
        if found:
            crops = [geometry.landmark_crop(face, rgb) for face in found]
            raw, flags = self._run("landmarks", [crop for crop, _ in crops], ["landmarks", "face_flag"])
            found = [dataclasses.replace(face, landmarks=geometry.landmarks_from(points, affine))
                     for face, (_, affine), points, flag in zip(found, crops, raw, flags, strict=True)
                     if geometry.face_present(flag)]
        if found:
            eyes = [geometry.eye_crops(face.landmarks, rgb) for face in found]
            contours, irises = self._run("irises", [t for tensors, _, _ in eyes for t in tensors],
                                         ["eye_contour", "iris"])
            found = [dataclasses.replace(face, irises=geometry.irises_from(contours[2 * i:2 * i + 2],
                                                                           irises[2 * i:2 * i + 2], affines))
                     for i, (face, (_, affines, _)) in enumerate(zip(found, eyes, strict=True))]
        return geometry.unpack(geometry.pack(found, PRODUCT.max_faces))
