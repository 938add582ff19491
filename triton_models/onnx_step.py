"""``depth`` / ``matte_*`` / the called networks on CPU: a model session (triton_models/runtime.py) behind the
python backend, with every input and output of the config (a matte one of each, the face detector two outputs,
the style transform two inputs).

The requests Triton's dynamic batcher hands over are run as one batch per shape, then split back; a request
with a malformed tensor gets its own error.
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
        # name -> dims without the batch (-1: any size)
        self.inputs = {tensor["name"]: tuple(tensor["dims"]) for tensor in config["input"]}
        self.output_names = [output["name"] for output in config["output"]]
        # converters/catalog.toml's cpu_runtime of the model (absent: the default)
        runtime = parameters.text("runtime", DEFAULT_RUNTIME)
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        try:
            self.session = open_session(path, runtime, threads=parameters.int("intra_op_threads"),
                                        spinning=bool(parameters.int("intra_op_spinning")))
        except RuntimeChoiceError as exc:  # fails this model's load only: the others keep serving
            raise RuntimeChoiceError(f"model {config['name']!r}: {exc}") from exc

    def _fits(self, tensors: dict[str, np.ndarray]) -> bool:
        batches = {tensor.shape[0] for tensor in tensors.values()}
        return len(batches) == 1 and all(
            len(tensor.shape) == len(dims) + 1
            and all(want in (-1, got) for want, got in zip(dims, tensor.shape[1:], strict=True))
            for tensor, dims in zip(tensors.values(), self.inputs.values(), strict=True))

    def execute(self, requests: list) -> list:
        """Requests whose tensors have the same shapes run as one batch (free sizes may differ between groups)."""
        tensors = [{name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}
                   for request in requests]
        groups: dict[tuple, list[int]] = {}
        for index, given in enumerate(tensors):
            if self._fits(given):
                groups.setdefault(tuple(t.shape[1:] for t in given.values()), []).append(index)
        results: dict[int, list[np.ndarray]] = {}
        for members in groups.values():
            joined = {name: np.concatenate([tensors[i][name] for i in members]).astype(np.float32, copy=False)
                      for name in self.inputs}
            outputs = self.session.run(joined)
            splits = np.cumsum([len(next(iter(tensors[i].values()))) for i in members])[:-1]
            for index, parts in zip(members, zip(*(np.split(out, splits) for out in outputs), strict=True),
                                    strict=True):
                results[index] = list(parts)
        wanted = ", ".join(f"{name} [batch, {', '.join(map(str, dims))}]" for name, dims in self.inputs.items())
        return [pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor(name, result) for name, result in zip(self.output_names, results[index],
                                                                          strict=True)])
                if index in results else
                error_response(f"the inputs must have the shapes {wanted} (-1: any size), with one batch size",
                               pb_utils.TritonError.INVALID_ARG)
                for index in range(len(requests))]
