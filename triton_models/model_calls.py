"""Calls from a python step to another model of the same Triton server (business logic scripting).

The one place steps call models: the faces step calls the face networks, a by-faces matte step the matte it
chose. The called model batches these calls with every other request it gets (its dynamic batcher).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils


class ModelCallError(RuntimeError):
    """The called model failed; the message names it (an internal error, not the caller's)."""


class ModelUnavailable(ModelCallError):
    """The called model is not loaded (it failed to load, or was unloaded): the ensemble answers NOT_FOUND, which
    the gateway reports as 503 ``model_unavailable``, as for a missing ensemble."""


UNAVAILABLE_SIGNS = ("is not ready", "unknown model", "not found")  # Triton's words for a model it cannot run


def call_model(model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """Run ``model`` on ``inputs`` (tensor name -> array, batch axis first) and return ``outputs`` in order."""
    request = pb_utils.InferenceRequest(
        model_name=model, requested_output_names=outputs,
        inputs=[pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in inputs.items()],
    )
    response = request.exec()
    if response.has_error():
        message = response.error().message()
        unavailable = any(sign in message.lower() for sign in UNAVAILABLE_SIGNS)
        raise (ModelUnavailable if unavailable else ModelCallError)(f"model {model!r} failed: {message}")
    return [pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs]
