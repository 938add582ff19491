"""The one place a model session is opened: ``open_session(path, runtime, threads, spinning)``.

A ``Session`` has ``input_names``, ``output_names`` and ``run(feeds) -> outputs`` (in ``output_names`` order),
whatever runtime holds the model. The runtimes (``RUNTIMES``, the values of ``cpu_runtime`` in
converters/catalog.toml):

- ``onnxruntime``: ONNX Runtime's CPU execution provider, FP32.
- ``openvino-fp32``: OpenVINO's CPU plugin with FP32 inference precision (asked for explicitly: the plugin's
  own default is BF16 on a CPU that has it).
- ``openvino-bf16``: OpenVINO's CPU plugin in BF16 where the CPU computes BF16 natively (AMX or AVX-512
  BF16, read from /proc/cpuinfo once per process); elsewhere FP32, said once on stderr at the first open.

A model that a runtime cannot read or compile fails ``open_session`` with a ``RuntimeChoiceError`` naming
the file, the runtime and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ONNXRUNTIME = "onnxruntime"
OPENVINO_FP32 = "openvino-fp32"
OPENVINO_BF16 = "openvino-bf16"
RUNTIMES = (ONNXRUNTIME, OPENVINO_FP32, OPENVINO_BF16)
DEFAULT_RUNTIME = ONNXRUNTIME
# CPU flags (as /proc/cpuinfo names them) of native BF16 arithmetic: Intel AMX tiles, AVX-512 BF16 (Intel Cooper
# Lake and later, AMD Zen 4 and later).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")
CATALOG_FIX = 'declare cpu_runtime = "onnxruntime" for it in converters/catalog.toml and regenerate the configs'

log = logging.getLogger(__name__)


class RuntimeChoiceError(ValueError):
    """A runtime name, setting or model the runtimes cannot take, with what to do about it."""


class Session(Protocol):
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise RuntimeChoiceError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
    return runtime


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor listed in /proc/cpuinfo text (x86 ``flags``, Arm ``Features``)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bf16_supported(flags: Iterable[str]) -> bool:
    return any(flag in BF16_FLAGS for flag in flags)


def precision_for(runtime: str, flags: Iterable[str]) -> str | None:
    """OpenVINO's inference precision for ``runtime`` on a CPU with ``flags`` ("bf16" or "f32"); None for a
    runtime that is not OpenVINO."""
    check_runtime(runtime)
    if runtime == ONNXRUNTIME:
        return None
    return "bf16" if runtime == OPENVINO_BF16 and bf16_supported(flags) else "f32"


@cache
def host_flags() -> frozenset[str]:
    """This machine's CPU flags, read once per process; on a CPU without native BF16, says once that
    ``openvino-bf16`` models run in FP32 here."""
    flags = cpu_flags(CPUINFO.read_text()) if CPUINFO.exists() else frozenset()
    if not bf16_supported(flags):
        log.warning("imageserve runtime: this CPU has none of the flags %s: models declared %r run in FP32 "
                    "(OpenVINO %r)", list(BF16_FLAGS), OPENVINO_BF16, OPENVINO_FP32)
    return flags


@dataclass
class OnnxRuntimeSession:
    session: Any  # onnxruntime.InferenceSession
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


@dataclass
class OpenVinoSession:
    """An OpenVINO compiled model and its one infer request. ``per_row``: the model was compiled for batch 1
    (static shapes run faster than a dynamic batch on the CPU plugin), so a batch is run row by row."""

    request: Any  # openvino.InferRequest
    input_names: list[str]
    output_names: list[str]
    per_row: bool

    def _infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self.request.infer(feeds).to_tuple())  # copies: the request's buffers are reused

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self.per_row:
            return self._infer(feeds)
        rows = len(next(iter(feeds.values())))
        results = [self._infer({name: value[i:i + 1] for name, value in feeds.items()}) for i in range(rows)]
        return [np.concatenate(parts) for parts in zip(*results, strict=True)]


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


def _batch_one(model: Any) -> bool:
    """Fix the batch dimension at 1 where every input is [batch, static...]; True if it did."""
    shapes = [port.get_partial_shape() for port in model.inputs]
    if not all(shape.rank.is_static and len(shape) > 0 and shape[0].is_dynamic and shape[1:].is_static
               for shape in shapes):
        return False
    model.reshape({port: [1, *(dim.get_length() for dim in shape[1:])]
                   for port, shape in zip(model.inputs, shapes, strict=True)})
    return True


def _reason(exc: Exception) -> str:
    """OpenVINO's message without its "Exception from <source file>" lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("Exception from")]
    return " ".join(lines) or str(exc)


def _open_openvino(path: Path, runtime: str, threads: int, spinning: bool) -> OpenVinoSession:
    if spinning:
        raise RuntimeChoiceError(f"{path}: runtime {runtime!r} has no spin-wait setting (OpenVINO's CPU threads "
                                 "sleep once a run is done); open it with spinning=False or use runtime "
                                 f"{ONNXRUNTIME!r}")
    import openvino as ov

    precision = precision_for(runtime, host_flags())
    core = ov.Core()
    try:
        model = core.read_model(str(path))
        per_row = _batch_one(model)
        compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": threads,  # 0: the plugin's choice, as for ONNX Runtime
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,  # one request at a time per instance: Triton runs instances side by side
            # Off: each Triton instance is its own process, and pinned threads of two instances would share
            # the same first cores while others idle.
            "ENABLE_CPU_PINNING": False,
        })
    except RuntimeError as exc:
        raise RuntimeChoiceError(f"{path}: runtime {runtime!r} (OpenVINO, {precision}) cannot read or compile this "
                                 f"model: {_reason(exc)}; {CATALOG_FIX}") from exc
    return OpenVinoSession(compiled.create_infer_request(), [port.get_any_name() for port in compiled.inputs],
                           [port.get_any_name() for port in compiled.outputs], per_row)


def open_session(path: Path, runtime: str, threads: int, spinning: bool) -> Session:
    """Open the ONNX model at ``path`` in ``runtime`` with ``threads`` intra-op threads (0: the runtime's
    default) that spin-wait between runs only if ``spinning``."""
    check_runtime(runtime)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make models` to fetch and convert the models")
    if runtime == ONNXRUNTIME:
        return _open_onnxruntime(path, threads, spinning)
    return _open_openvino(path, runtime, threads, spinning)
