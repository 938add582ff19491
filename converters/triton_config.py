"""Triton model configurations for each deployment target, built through the schema.

Every ``config.pbtxt`` is made from a dict parsed into Triton's
``ModelConfig`` protobuf (unknown fields fail loudly), then printed as text.

Targets:
- ``cpu``: what runs on this machine: ONNX models in python-backend steps
  that hold an ONNX Runtime session (the local Triton has no onnxruntime backend).
- ``gpu``: NGC Triton image: ONNX models on the onnxruntime backend with the
  TensorRT execution accelerator in FP16; pre/postprocessing stay python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from converters.catalog import ModelSource
from converters.errors import ConverterError

TARGETS = ("cpu", "gpu")
MAX_PIXELS = 40_000_000
MODEL_MAX_BATCH = 8
# Batch 1 only: a batch-8 warm-up of U2-Netp costs seconds of start-up on 2 cores
# and buys little (ONNX Runtime on CPU allocates per run).
WARMUP_BATCH_SIZES = (1,)
WARMUP_PHOTO_FILE = "photo_jpeg"
# Postprocess warm-up: a small output (height, width) so each instance has made every kind of PNG once
# before the first user request (the first request used to pay ~2x: load_tests/results/bench.md).
WARMUP_OUTPUT_SIZE_FILE = "output_size"
WARMUP_OUTPUT_SIZE = (48, 64)
PYTHON_MODEL_CLASSES = {
    "preprocess": "triton_models.preprocess",
    "postprocess": "triton_models.postprocess",
    "onnx": "triton_models.onnx_step",
}


@dataclass(frozen=True)
class ModelLayout:
    """Triton instances of one ONNX model step, and ONNX Runtime intra-op threads in each."""

    instances: int
    intra_op_threads: int


@dataclass(frozen=True)
class TargetTuning:
    """Instance counts and batching, set from load_tests/results (2-core CPU / one GPU)."""

    preprocess_instances: int
    postprocess_instances: int
    model_instances: int
    intra_op_threads: int
    intra_op_spinning: int  # ONNX Runtime's session.intra_op.allow_spinning (cpu target)
    batch_delay_us: int
    png_compress_level: int
    # Models whose layout differs from model_instances x intra_op_threads.
    model_layouts: dict[str, ModelLayout] = field(default_factory=dict)

    def layout(self, model: str) -> ModelLayout:
        return self.model_layouts.get(model, ModelLayout(self.model_instances, self.intra_op_threads))


TUNING = {
    # 2 single-threaded ONNX Runtime instances per model: an idle intra-op pool spin-waits and takes
    # the core that decoding and PNG encoding need. U2-Netp's one image is enough work for both cores:
    # one instance with 2 non-spinning threads halves its p50 at low load (load_tests/results/tuning.md).
    "cpu": TargetTuning(preprocess_instances=2, postprocess_instances=2, model_instances=2,
                        intra_op_threads=1, intra_op_spinning=0, batch_delay_us=2000, png_compress_level=1,
                        model_layouts={"segmentation_quality": ModelLayout(instances=1, intra_op_threads=2)}),
    "gpu": TargetTuning(preprocess_instances=8, postprocess_instances=8, model_instances=1,
                        intra_op_threads=0, intra_op_spinning=1, batch_delay_us=1000, png_compress_level=1),
}


def input_tensor_name(model: str) -> str:
    """Preprocess output feeding ``model``, e.g. ``DEPTH_INPUT``."""
    return f"{model.upper()}_INPUT"


def to_pbtxt(config: dict[str, Any]) -> str:
    message = model_config_pb2.ModelConfig()
    try:
        json_format.ParseDict(config, message)
    except json_format.ParseError as exc:
        raise ConverterError(f"model {config.get('name')!r}: invalid Triton config: {exc}") from exc
    return text_format.MessageToString(message)


def _tensor(name: str, data_type: str, dims: list[int], optional: bool = False) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": name, "data_type": data_type, "dims": dims}
    if optional:
        tensor["optional"] = True
    return tensor


def _params(**values: Any) -> dict[str, Any]:
    return {key: {"string_value": str(value)} for key, value in values.items()}


def _check_target(target: str) -> TargetTuning:
    if target not in TARGETS:
        raise ConverterError(f"unknown target {target!r}; choose one of {list(TARGETS)}")
    return TUNING[target]


def preprocess_config(sources: dict[str, ModelSource], target: str) -> dict[str, Any]:
    tuning = _check_target(target)
    model_inputs = {
        input_tensor_name(name): {"size": list(src.input_size), "normalization": src.normalization}
        for name, src in sources.items()
    }
    return {
        "name": "preprocess",
        "backend": "python",
        "max_batch_size": 1,
        "input": [_tensor("IMAGE", "TYPE_STRING", [1]), _tensor("MAX_SIDE", "TYPE_INT32", [1])],
        "output": [
            _tensor("OUTPUT_SIZE", "TYPE_INT32", [2]),
            _tensor("RGB", "TYPE_UINT8", [-1, -1, 3]),
            *(_tensor(input_tensor_name(name), "TYPE_FP32", [3, *src.input_size]) for name, src in sources.items()),
        ],
        "instance_group": [{"count": tuning.preprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(max_pixels=MAX_PIXELS, model_inputs=json.dumps(model_inputs, sort_keys=True)),
        "model_warmup": [{
            "name": "real_photo",
            "batch_size": 1,
            "inputs": {
                "IMAGE": {"data_type": "TYPE_STRING", "dims": [1], "input_data_file": WARMUP_PHOTO_FILE},
                "MAX_SIDE": {"data_type": "TYPE_INT32", "dims": [1], "zero_data": True},
            },
        }],
    }


def postprocess_config(sources: dict[str, ModelSource], target: str) -> dict[str, Any]:
    tuning = _check_target(target)
    depth = [src for src in sources.values() if src.output == "depth"]
    alpha = [src for src in sources.values() if src.output == "alpha"]
    height, width = WARMUP_OUTPUT_SIZE
    # One warm-up request asks for every output (Triton requests them all): depth, mask and cutout PNGs.
    warmup_inputs: dict[str, Any] = {
        "OUTPUT_SIZE": {"data_type": "TYPE_INT32", "dims": [2], "input_data_file": WARMUP_OUTPUT_SIZE_FILE},
        "RGB": {"data_type": "TYPE_UINT8", "dims": [height, width, 3], "zero_data": True},
    }
    if depth:
        warmup_inputs["DEPTH"] = {"data_type": "TYPE_FP32", "dims": [1, *depth[0].input_size], "random_data": True}
    if alpha:
        warmup_inputs["ALPHA"] = {"data_type": "TYPE_FP32", "dims": [1, *alpha[0].input_size], "random_data": True}
    return {
        "name": "postprocess",
        "backend": "python",
        "max_batch_size": 1,
        "input": [
            _tensor("OUTPUT_SIZE", "TYPE_INT32", [2]),
            _tensor("DEPTH", "TYPE_FP32", [1, -1, -1], optional=True),
            _tensor("ALPHA", "TYPE_FP32", [1, -1, -1], optional=True),
            _tensor("RGB", "TYPE_UINT8", [-1, -1, 3], optional=True),
        ],
        "output": [
            _tensor("DEPTH_PNG", "TYPE_STRING", [1]),
            _tensor("DEPTH_RANGE", "TYPE_FP32", [2]),
            _tensor("MASK_PNG", "TYPE_STRING", [1]),
            _tensor("CUTOUT_PNG", "TYPE_STRING", [1]),
        ],
        "instance_group": [{"count": tuning.postprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(png_compress_level=tuning.png_compress_level),
        "model_warmup": [{"name": "every_output", "batch_size": 1, "inputs": warmup_inputs}],
    }


def model_config(source: ModelSource, target: str) -> dict[str, Any]:
    """Config of one catalog model: batched ONNX inference."""
    tuning = _check_target(target)
    height, width = source.input_size
    config: dict[str, Any] = {
        "name": source.name,
        "max_batch_size": MODEL_MAX_BATCH,
        "input": [_tensor("image", "TYPE_FP32", [3, height, width])],
        "output": [_tensor(source.output, "TYPE_FP32", [1, height, width])],
        "dynamic_batching": {"max_queue_delay_microseconds": tuning.batch_delay_us},
        "model_warmup": [{
            "name": f"batch_{size}",
            "batch_size": size,
            "inputs": {"image": {"data_type": "TYPE_FP32", "dims": [3, height, width], "random_data": True}},
        } for size in WARMUP_BATCH_SIZES],
    }
    if target == "cpu":
        layout = tuning.layout(source.name)
        config["backend"] = "python"
        config["instance_group"] = [{"count": layout.instances, "kind": "KIND_CPU"}]
        config["parameters"] = _params(intra_op_threads=layout.intra_op_threads,
                                       intra_op_spinning=tuning.intra_op_spinning)
    else:
        config["platform"] = "onnxruntime_onnx"
        config["default_model_filename"] = "model.onnx"
        config["instance_group"] = [{"count": tuning.model_instances, "kind": "KIND_GPU"}]
        config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [{
            "name": "tensorrt",
            "parameters": {
                "precision_mode": "FP16",
                "max_workspace_size_bytes": str(1 << 30),
                "trt_engine_cache_enable": "true",
                "trt_engine_cache_path": "/cache/tensorrt",
            },
        }]}}
    return config


@dataclass(frozen=True)
class Product:
    """One ensemble: what a caller asks for in one request."""

    name: str
    models: tuple[str, ...]
    outputs: tuple[str, ...]
    needs_rgb: bool = False


def products(sources: dict[str, ModelSource]) -> list[Product]:
    depth = [name for name, src in sources.items() if src.output == "depth"]
    segmenters = [name for name, src in sources.items() if src.output == "alpha"]
    if len(depth) != 1:
        raise ConverterError(f"the catalog must have exactly one depth model, found {depth}")
    found = [Product("photo_depth", (depth[0],), ("DEPTH_PNG", "DEPTH_RANGE"))]
    for name in segmenters:
        variant = name.removeprefix("segmentation_")
        found.append(Product(f"photo_mask_{variant}", (name,), ("MASK_PNG",)))
        found.append(Product(f"photo_cutout_{variant}", (name,), ("CUTOUT_PNG",), needs_rgb=True))
    return found


def ensemble_config(product: Product, sources: dict[str, ModelSource]) -> dict[str, Any]:
    pre_outputs = {"OUTPUT_SIZE": "output_size"}
    post_inputs = {"OUTPUT_SIZE": "output_size"}
    steps = []
    for name in product.models:
        source = sources[name]
        pre_outputs[input_tensor_name(name)] = f"{name}_input"
        post_inputs[source.output.upper()] = f"{name}_output"
        steps.append({
            "model_name": name,
            "model_version": -1,
            "input_map": {"image": f"{name}_input"},
            "output_map": {source.output: f"{name}_output"},
        })
    if product.needs_rgb:
        pre_outputs["RGB"] = "rgb"
        post_inputs["RGB"] = "rgb"
    output_dims = {"DEPTH_PNG": [1], "DEPTH_RANGE": [2], "MASK_PNG": [1], "CUTOUT_PNG": [1]}
    output_types = {"DEPTH_RANGE": "TYPE_FP32"}
    return {
        "name": product.name,
        "platform": "ensemble",
        "max_batch_size": 1,
        "input": [_tensor("IMAGE", "TYPE_STRING", [1]), _tensor("MAX_SIDE", "TYPE_INT32", [1])],
        "output": [_tensor(out, output_types.get(out, "TYPE_STRING"), output_dims[out]) for out in product.outputs],
        "ensemble_scheduling": {"step": [
            {
                "model_name": "preprocess",
                "model_version": -1,
                "input_map": {"IMAGE": "IMAGE", "MAX_SIDE": "MAX_SIDE"},
                "output_map": pre_outputs,
            },
            *steps,
            {
                "model_name": "postprocess",
                "model_version": -1,
                "input_map": post_inputs,
                "output_map": {out: out for out in product.outputs},
            },
        ]},
    }


def repository_configs(sources: dict[str, ModelSource], target: str) -> dict[str, dict[str, Any]]:
    """Every model of the repository for ``target``, keyed by model name."""
    configs = {
        "preprocess": preprocess_config(sources, target),
        "postprocess": postprocess_config(sources, target),
        **{name: model_config(src, target) for name, src in sources.items()},
        **{p.name: ensemble_config(p, sources) for p in products(sources)},
    }
    return configs


def python_model_file(model: str, config: dict[str, Any]) -> str | None:
    """Contents of ``<model>/1/model.py`` for python-backend models, else None."""
    if config.get("backend") != "python":
        return None
    module = PYTHON_MODEL_CLASSES.get(model, PYTHON_MODEL_CLASSES["onnx"])
    return (
        f'"""Triton python-backend entry point; the model lives in {module}."""\n\n'
        f"from {module} import TritonPythonModel  # noqa: F401\n"
    )
