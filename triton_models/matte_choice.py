"""A by-faces matte step (``matte_auto``): the photo's faces and both mattes' inputs in; it runs only the matte
that fits (the portrait matte when a face was found, else the object matte) and says which it chose. With a
gate model (``Variant.gate``) the portrait matte is kept near the person that model sees (``imaging.person_gate``).

``with_face`` / ``without_face`` come from the variant's declaration (contract/product.py MATTE_VARIANTS).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from contract.product import TENSORS
from contract.schema import SUBJECTS
from imaging.faces import unpack
from imaging.person_gate import person_gate
from triton_models.model_calls import call_model
from triton_models.parameters import ModelParameters
from triton_models.responses import respond_each

ALPHA = TENSORS.model_outputs["alpha"]


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        parameters = ModelParameters(json.loads(args["model_config"]))
        self.with_face = parameters.text("with_face", "")
        self.without_face = parameters.text("without_face", "")
        self.gate = parameters.text("gate", "")
        self.model_input = parameters.text("model_input", "")
        self.model_output = parameters.text("model_output", "")
        self.logger = pb_utils.Logger

    def execute(self, requests: list) -> list:
        return respond_each(requests, self._handle, self.logger)

    def _matte(self, request: Any, model: str) -> list[np.ndarray]:
        tensor = pb_utils.get_input_tensor_by_name(request, TENSORS.model_input(model)).as_numpy()
        return call_model(model, {self.model_input: tensor}, [self.model_output])

    def _handle(self, request: Any) -> list:
        faces = unpack(pb_utils.get_input_tensor_by_name(request, TENSORS.faces).as_numpy()[0])
        model = self.with_face if faces else self.without_face
        (alpha,) = self._matte(request, model)
        if faces and self.gate:  # the person matte, kept near the person the gate model sees
            (person,) = self._matte(request, self.gate)
            alpha = person_gate(alpha[0, 0], person[0, 0])[np.newaxis, np.newaxis]
        subject = SUBJECTS.index("person" if faces else "object")
        return [pb_utils.Tensor(ALPHA, alpha.astype(np.float32, copy=False)),
                pb_utils.Tensor(TENSORS.matte_subject, np.array([[subject]], dtype=np.float32))]
