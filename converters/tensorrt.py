"""TensorRT engine builds for the GPU target (run where TensorRT exists, e.g. the NGC image).

The gpu target serves ONNX through the onnxruntime backend with the TensorRT
accelerator, which builds engines on first load and caches them. For a
``tensorrt_plan`` deployment, or to pre-build that cache on the target GPU,
these are the ``trtexec`` commands: FP16, one optimisation profile over the
dynamic batch axis.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from converters.catalog import ModelSource
from converters.onnx_edit import INPUT_NAME
from converters.triton_config import MODEL_MAX_BATCH


def trtexec_command(source: ModelSource, onnx_path: Path, engine_path: Path) -> list[str]:
    shape = f"3x{source.input_height}x{source.input_width}"
    opt_batch = max(1, MODEL_MAX_BATCH // 2)
    return [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={engine_path}",
        "--fp16",
        f"--minShapes={INPUT_NAME}:1x{shape}",
        f"--optShapes={INPUT_NAME}:{opt_batch}x{shape}",
        f"--maxShapes={INPUT_NAME}:{MODEL_MAX_BATCH}x{shape}",
        "--memPoolSize=workspace:1024",
        "--skipInference",
    ]


def trtexec_commands(sources: dict[str, ModelSource], repository: Path, cache: Path) -> list[str]:
    return [
        shlex.join(trtexec_command(src, repository / name / "1" / "model.onnx", cache / name / "model.plan"))
        for name, src in sources.items()
    ]
