"""The naive baseline's faces: the face networks in ONNX Runtime, inline, as the faces step runs them in Triton.

The same pipeline (``imaging.faces.find_faces``: every face's landmark crop in one run, every eye in one run), networks
and ``max_faces`` as ``triton_models/faces_step.py``, whose runs go through Triton instead; the faces pass through
``pack``/``unpack`` as they do between the ensemble's steps.
"""

from __future__ import annotations

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
        self.detector = geometry.detector_for(chosen["detector"].input_size[0], chosen["detector"].name)
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
        found = geometry.find_faces(rgb, self._run, self.detector, PRODUCT.max_faces)
        return geometry.unpack(geometry.pack(found, PRODUCT.max_faces))
