"""The one place a model session is opened: ``open_session(path, runtime, threads, spinning)``.

A ``Session`` has ``input_names``, ``output_names`` and ``run(feeds) -> outputs`` (in ``output_names`` order),
whatever runtime holds the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

ONNXRUNTIME = "onnxruntime"
RUNTIMES = (ONNXRUNTIME,)
DEFAULT_RUNTIME = ONNXRUNTIME


class RuntimeChoiceError(ValueError):
    """A runtime name or model the runtimes cannot take, with what to do about it."""


class Session(Protocol):
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise RuntimeChoiceError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
    return runtime


@dataclass
class OnnxRuntimeSession:
    session: object
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


def _open_onnxruntime(path: Path, threads: int, spinning: bool) -> OnnxRuntimeSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Off on the cpu target: between runs, an intra-op pool that spin-waits holds the cores that decoding
    # and PNG encoding need (load_tests/results/tuning.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return OnnxRuntimeSession(session, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])


def open_session(path: Path, runtime: str, threads: int, spinning: bool) -> Session:
    """Open the ONNX model at ``path`` in ``runtime`` with ``threads`` intra-op threads (0: the runtime's
    default) that spin-wait between runs only if ``spinning``."""
    check_runtime(runtime)
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run `make models` to fetch and convert the models")
    return _open_onnxruntime(Path(path), threads, spinning)
