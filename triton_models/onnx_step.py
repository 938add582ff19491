"""``depth`` / ``matte_*`` on CPU: an ONNX Runtime session behind the python backend.

All requests Triton's dynamic batcher hands over are run as one batch, then
split back; a request with a malformed tensor gets its own error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

from triton_models.parameters import ModelParameters
from triton_models.responses import error_response


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        parameters = ModelParameters(config)
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.input_shape = tuple(config["input"][0]["dims"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = parameters.int("intra_op_threads")
        options.inter_op_num_threads = 1
        # Off: between runs, an intra-op pool that spin-waits holds the cores that decoding and PNG
        # encoding need (load_tests/results/tuning.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", str(parameters.int("intra_op_spinning")))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make models` to fetch and convert the models")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def execute(self, requests: list) -> list:
        batches: list[np.ndarray | None] = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            batches.append(tensor if tensor.shape[1:] == self.input_shape else None)
        valid = [batch for batch in batches if batch is not None]
        outputs = iter(())
        if valid:
            joined = np.concatenate(valid).astype(np.float32, copy=False)
            result = self.session.run([self.output_name], {self.input_name: joined})[0]
            outputs = iter(np.split(result, np.cumsum([len(b) for b in valid])[:-1]))
        responses = []
        for batch in batches:
            if batch is None:
                responses.append(error_response(
                    f"input {self.input_name!r} must have shape [batch, {', '.join(map(str, self.input_shape))}]",
                    pb_utils.TritonError.INVALID_ARG,
                ))
            else:
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor(self.output_name, next(outputs))]
                ))
        return responses
