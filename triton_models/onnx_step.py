"""``depth`` / ``matte_*`` / the face networks on CPU: a model session (triton_models/runtime.py) behind the
python backend, with every output of the config (a matte one, the face detector two).

All requests Triton's dynamic batcher hands over are run as one batch, then
split back; a request with a malformed tensor gets its own error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from triton_models.parameters import ModelParameters
from triton_models.responses import error_response
from triton_models.runtime import DEFAULT_RUNTIME, RuntimeChoiceError, open_session


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = ModelParameters(config)
        self.input_name = config["input"][0]["name"]
        self.output_names = [output["name"] for output in config["output"]]
        self.input_shape = tuple(config["input"][0]["dims"])
        # converters/catalog.toml's cpu_runtime of the model (absent: the default)
        runtime = parameters.text("runtime", DEFAULT_RUNTIME)
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        try:
            self.session = open_session(path, runtime, threads=parameters.int("intra_op_threads"),
                                        spinning=bool(parameters.int("intra_op_spinning")))
        except RuntimeChoiceError as exc:  # fails this model's load only: the others keep serving
            raise RuntimeChoiceError(f"model {config['name']!r}: {exc}") from exc

    def execute(self, requests: list) -> list:
        batches: list[np.ndarray | None] = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            batches.append(tensor if tensor.shape[1:] == self.input_shape else None)
        valid = [batch for batch in batches if batch is not None]
        outputs = iter(())
        if valid:
            joined = np.concatenate(valid).astype(np.float32, copy=False)
            results = self.session.run({self.input_name: joined})
            splits = np.cumsum([len(b) for b in valid])[:-1]
            outputs = iter(zip(*(np.split(result, splits) for result in results), strict=True))
        responses = []
        for batch in batches:
            if batch is None:
                responses.append(error_response(
                    f"input {self.input_name!r} must have shape [batch, {', '.join(map(str, self.input_shape))}]",
                    pb_utils.TritonError.INVALID_ARG,
                ))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor(name, result) for name, result in zip(self.output_names, next(outputs), strict=True)
                ]))
        return responses
