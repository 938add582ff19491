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

import numpy as np
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from contract.product import PRODUCT
from contract.schema import Ensemble, Product, Variant
from converters.catalog import PIXEL_OUTPUT, TENSORS_OUTPUT, ModelSource
from converters.errors import ConverterError
from imaging.faces import FACE_VALUES
from imaging.tiles import OVERLAP_PX

TARGETS = ("cpu", "gpu")
MODEL_MAX_BATCH = 8
# Batch 1 only: a batch-8 warm-up of U2-Netp costs seconds of start-up on 2 cores
# and buys little (ONNX Runtime on CPU allocates per run).
WARMUP_BATCH_SIZES = (1,)
WARMUP_FREE_SIZE = 64  # a warm-up tensor's free sizes (-1 dims: a photo-sized input)
WARMUP_PHOTO_FILE = "photo_jpeg"
# Postprocess warm-up: a small output (height, width) so each instance has made every kind of PNG once
# before the first user request (the first request used to pay ~2x: load_tests/results/bench.md).
WARMUP_OUTPUT_SIZE_FILE = "output_size"
WARMUP_OUTPUT_SIZE = (48, 64)
TENSOR_TYPES = {int: "TYPE_INT32", float: "TYPE_FP32", str: "TYPE_STRING"}
PYTHON_MODEL_CLASSES = {
    PRODUCT.decode_step: "triton_models.preprocess",
    PRODUCT.compose_step: "triton_models.postprocess",
    PRODUCT.faces_step: "triton_models.faces_step",
    **{PRODUCT.choice_step(v): "triton_models.matte_choice" for v in PRODUCT.by_faces_variants()},
}
ONNX_STEP_CLASS = "triton_models.onnx_step"
MODEL_INPUT = "image"  # the input tensor of every converted model (converters/onnx_edit.py)
# The python-backend step that hosts a pixel model's network: an upscaler's tiles (catalog scale above 1), else the
# style network at its working size.
UPSCALE_STEP, STYLE_STEP = "triton_models.upscale_step", "triton_models.style_step"
# Input pixels of a pixel model's warm-up: small, so that even Real-ESRGAN's warm-up is one tile.
WARMUP_PIXELS = (48, 64)
# Upscaling: network tiles run at once (bounds the network's working memory); their overlap is imaging.tiles'.
UPSCALE_TILE_BATCH = 2
DEFAULT_PIXEL_RUNTIME = "onnxruntime"  # a pixel model's runtime on the gpu target (its step runs on the CPU)
# The face networks get every face (and both eyes of each) of a photo in one call.
FACE_MODEL_MAX_BATCH = 2 * PRODUCT.max_faces


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
    # MODNet and U2-Net likewise, measured with ONNX Runtime alone on the 2 cores (astronaut, medians of
    # 24-54 runs in interleaved blocks, only blocks with the rest of the machine under 5 % busy), 1x2 vs 2x1:
    #   matte_portrait (MODNet 512):  one request 121 vs 212 ms; two at once 251 ms (batch of 2) vs 227 ms;
    #                                 saturated 8.3 vs 8.7 images/s.
    #   matte_object (U2-Net 320):    one request 323 vs 615 ms; two at once 657 ms (batch of 2) vs 630 ms;
    #                                 saturated 3.1 vs 3.1 images/s.
    # 1x2 halves the p50 at low load for at most 5 % less throughput at saturation. The arbitrary style
    # transform gets one photo of up to 1 MP per call, like the style step that hosts the 26-style network.
    "cpu": TargetTuning(preprocess_instances=2, postprocess_instances=2, model_instances=2,
                        intra_op_threads=1, intra_op_spinning=0, batch_delay_us=2000, png_compress_level=1,
                        model_layouts={name: ModelLayout(instances=1, intra_op_threads=2)
                                       for name in ("matte_portrait", "matte_object", "matte_object_lite",
                                                    "style_transform")}),
    "gpu": TargetTuning(preprocess_instances=8, postprocess_instances=8, model_instances=1,
                        intra_op_threads=0, intra_op_spinning=1, batch_delay_us=1000, png_compress_level=1),
}


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


def warmup_parameters(product: Product = PRODUCT) -> dict[str, Any]:
    """Compose-step parameter tensor -> the value its warm-up sends: the default, "not given" for an optional
    parameter, and the example for the first alternative of each required ``one_of`` (so every edit runs once)."""
    values = {p.tensor: p.default if p.default is not None else p.unset for p in product.compose_parameters()}
    for op in product.operations:
        for group in op.one_of[:1] if op.one_of_required else ():
            values.update({p.tensor: p.example for name in group if (p := op.parameter(name)) is not None})
    types = {p.tensor: p.type for p in product.compose_parameters()}
    return {tensor: types[tensor](value) for tensor, value in values.items()}


def warmup_file(tensor: str) -> str:
    return f"input_{tensor.lower()}"


def fed_by_decode(source: ModelSource) -> bool:
    """The decode step makes this model's input tensor (every model but a pixel model, which takes the photo, and
    a network a step calls, such as the face models)."""
    return source.output not in (PIXEL_OUTPUT, TENSORS_OUTPUT)


def warmup_model_outputs(sources: dict[str, ModelSource], product: Product = PRODUCT) -> dict[str, Any]:
    """Compose-step model-output tensor -> a plausible map at the model's size for the warm-up (random bytes as
    floats would be NaN or 1e38, which no model makes): depth rising from 1 to 5 top to bottom, and a soft
    disc of alpha in the middle. (A pixel model's uint8 pixels are warmed up with random bytes.)"""
    maps = {}
    for kind, tensor in product.tensors.model_outputs.items():
        found = [src for src in sources.values() if src.output == kind and fed_by_decode(src)]
        if not found:
            continue
        height, width = found[0].input_size
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        if kind == "depth":
            maps[tensor] = 1 + 4 * rows / max(1, height - 1)
        else:
            radius = np.hypot((rows - height / 2) / height, (cols - width / 2) / width)
            maps[tensor] = np.clip((0.3 - radius) * 20, 0, 1)
    return {tensor: plane.astype("<f4") for tensor, plane in maps.items()}


def _parameter_tensor(parameter: Any) -> dict[str, Any]:
    return _tensor(parameter.tensor, TENSOR_TYPES[parameter.type], [1])


def _check_target(target: str) -> TargetTuning:
    if target not in TARGETS:
        raise ConverterError(f"unknown target {target!r}; choose one of {list(TARGETS)}")
    return TUNING[target]


def preprocess_config(sources: dict[str, ModelSource], target: str, product: Product = PRODUCT) -> dict[str, Any]:
    tuning = _check_target(target)
    t = product.tensors
    sources = {name: src for name, src in sources.items() if fed_by_decode(src)}
    model_inputs = {
        t.model_input(name): {"size": list(src.input_size), "normalization": src.normalization}
        for name, src in sources.items()
    }
    return {
        "name": product.decode_step,
        "backend": "python",
        "max_batch_size": 1,
        "input": [_tensor(t.image, "TYPE_STRING", [1]), _tensor(t.max_side, "TYPE_INT32", [1], optional=True)],
        "output": [
            _tensor(t.output_size, "TYPE_INT32", [2]),
            _tensor(t.photo_size, "TYPE_INT32", [2]),
            _tensor(t.pixels, "TYPE_UINT8", [-1, -1, 3]),
            *(_tensor(t.model_input(name), "TYPE_FP32", [3, *src.input_size]) for name, src in sources.items()),
        ],
        "instance_group": [{"count": tuning.preprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(max_pixels=product.limits.max_pixels,
                              model_inputs=json.dumps(model_inputs, sort_keys=True)),
        "model_warmup": [{
            "name": "real_photo",
            "batch_size": 1,
            "inputs": {
                t.image: {"data_type": "TYPE_STRING", "dims": [1], "input_data_file": WARMUP_PHOTO_FILE},
                t.max_side: {"data_type": "TYPE_INT32", "dims": [1], "zero_data": True},
            },
        }],
    }


def postprocess_config(sources: dict[str, ModelSource], target: str, product: Product = PRODUCT) -> dict[str, Any]:
    tuning = _check_target(target)
    t = product.tensors
    height, width = WARMUP_OUTPUT_SIZE
    # One warm-up request asks for every output (Triton requests them all), so each kind of result is made once.
    size_input = {"data_type": "TYPE_INT32", "dims": [2], "input_data_file": WARMUP_OUTPUT_SIZE_FILE}
    warmup_inputs: dict[str, Any] = {
        t.output_size: size_input,
        t.photo_size: size_input,
        t.pixels: {"data_type": "TYPE_UINT8", "dims": [height, width, 3], "random_data": True},
        **{p.tensor: {"data_type": TENSOR_TYPES[p.type], "dims": [1], "input_data_file": warmup_file(p.tensor)}
           for p in product.compose_parameters()},
    }
    for kind, tensor in t.model_outputs.items():
        found = [src for src in sources.values() if src.output == kind]
        if found and kind == PIXEL_OUTPUT:  # as an upscaler makes it: the photo's size times its scale
            scale = max(src.scale for src in found)
            warmup_inputs[tensor] = {"data_type": "TYPE_UINT8", "dims": [height * scale, width * scale, 3],
                                     "random_data": True}
        elif found:
            warmup_inputs[tensor] = {"data_type": "TYPE_FP32", "dims": [1, *found[0].input_size],
                                     "input_data_file": warmup_file(tensor)}
    warmup_inputs.update({part.tensor: {"data_type": "TYPE_STRING", "dims": [1], "input_data_file":
                                        warmup_file(part.tensor)} for part in product.image_parts()})
    if product.faces_used():  # no face found: every face layer is made, empty
        warmup_inputs[t.faces] = {"data_type": "TYPE_FP32", "dims": [product.max_faces, FACE_VALUES],
                                  "zero_data": True}
    return {
        "name": product.compose_step,
        "backend": "python",
        "max_batch_size": 1,
        "input": [
            _tensor(t.output_size, "TYPE_INT32", [2]),
            _tensor(t.photo_size, "TYPE_INT32", [2]),
            *(_tensor(tensor, "TYPE_FP32", [1, -1, -1], optional=True)
              for kind, tensor in t.model_outputs.items() if kind != PIXEL_OUTPUT),
            _tensor(t.pixels, "TYPE_UINT8", [-1, -1, 3], optional=True),
            _tensor(t.model_outputs[PIXEL_OUTPUT], "TYPE_UINT8", [-1, -1, 3], optional=True),
            _tensor(t.faces, "TYPE_FP32", [product.max_faces, FACE_VALUES], optional=True),
            _tensor(t.matte_subject, "TYPE_FP32", [1], optional=True),
            _tensor(t.matte_gate, "TYPE_FP32", [1, -1, -1], optional=True),
            *({**_parameter_tensor(p), "optional": True} for p in product.compose_parameters()),
            *(_tensor(part.tensor, "TYPE_STRING", [1], optional=True) for part in product.image_parts()),
        ],
        "output": [
            *(_tensor(out.tensor, "TYPE_STRING", [1]) for out in product.image_outputs()),
            *(_tensor(out.tensor, "TYPE_FP32", [out.values]) for out in product.header_outputs()),
        ],
        "instance_group": [{"count": tuning.postprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(png_compress_level=tuning.png_compress_level, max_pixels=product.limits.max_pixels),
        "model_warmup": [{"name": "every_output", "batch_size": 1, "inputs": warmup_inputs}],
    }


def pixel_model_config(source: ModelSource, sources: dict[str, ModelSource], target: str,
                       product: Product = PRODUCT) -> dict[str, Any]:
    """Config of a pixel model: the decoded photo (and the parameters of the operations using it) in, new
    pixels out, one photo at a time, in the python-backend step that hosts its network (``PIXEL_STEPS``).
    On both targets that network runs on the CPU inside the step (a GPU target would serve it as its own
    onnxruntime/TensorRT model, called per tile: not built yet); the models the step calls (``calls``, from
    ``Operation.called_models``: the arbitrary-style pair) are Triton models of their own on either target."""
    tuning = _check_target(target)
    t = product.tensors
    layout = tuning.layout(source.name)
    tile_height, tile_width = source.input_size
    # The models its step calls, in the declared order, with their input and output names and working size.
    called = [{"name": name, "inputs": list(sources[name].input_shapes), "outputs": list(sources[name].output_shapes),
               "size": list(sources[name].input_size)} for name in product.model_calls(source.name)]
    return {
        "name": source.name,
        "backend": "python",
        "max_batch_size": 1,
        "input": [_tensor(t.pixels, "TYPE_UINT8", [-1, -1, 3]),
                  *({**_parameter_tensor(p), "optional": True} for p in product.model_parameters(source.name)),
                  *(_tensor(part.tensor, "TYPE_STRING", [1], optional=True)
                    for part in product.model_parts(source.name))],
        "output": [_tensor(t.model_outputs[PIXEL_OUTPUT], "TYPE_UINT8", [-1, -1, 3])],
        "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
        # One instance with every thread the model's layout has: a photo is work enough for both cores.
        "parameters": _params(threads=layout.instances * layout.intra_op_threads,
                              spinning=tuning.intra_op_spinning, max_height=tile_height, max_width=tile_width,
                              scale=source.scale, tile_batch=UPSCALE_TILE_BATCH,
                              tile_overlap=OVERLAP_PX, max_pixels=product.limits.max_pixels,
                              calls=json.dumps(called, sort_keys=True),
                              runtime=source.cpu_runtime if target == "cpu" else DEFAULT_PIXEL_RUNTIME),
        "model_warmup": [{"name": "small_photo", "batch_size": 1, "inputs": {
            t.pixels: {"data_type": "TYPE_UINT8", "dims": [*WARMUP_PIXELS, 3], "random_data": True}}}],
    }


def faces_step_config(sources: dict[str, ModelSource], target: str, product: Product = PRODUCT) -> dict[str, Any]:
    """The faces step: the decoded photo in, every face found (``imaging.faces.pack``) out. It calls the face
    models (detector, landmarks, irises: ``Product.face_models`` in that order) through Triton, so each batches
    the faces of concurrent requests and runs where the target serves models."""
    tuning = _check_target(target)
    t = product.tensors
    detector, landmarks, irises = (sources[name] for name in product.face_models)
    models = {role: {"name": src.name, "size": list(src.input_size), "normalization": src.normalization}
              for role, src in (("detector", detector), ("landmarks", landmarks), ("irises", irises))}
    return {
        "name": product.faces_step,
        "backend": "python",
        "max_batch_size": 1,
        "input": [_tensor(t.pixels, "TYPE_UINT8", [-1, -1, 3])],
        "output": [_tensor(t.faces, "TYPE_FP32", [product.max_faces, FACE_VALUES])],
        "instance_group": [{"count": tuning.preprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(models=json.dumps(models, sort_keys=True), max_faces=product.max_faces,
                              model_input=MODEL_INPUT),
        # No warm-up: its models may still be loading when it is; each of them warms itself up.
    }


def choice_step_config(variant: Variant, sources: dict[str, ModelSource], target: str,
                       product: Product = PRODUCT) -> dict[str, Any]:
    """A by-faces variant's step: the faces and both mattes' inputs in; it calls the matte model that fits (the
    first with a face, else the second) and returns its matte and the subject (an index into SUBJECTS)."""
    tuning = _check_target(target)
    t = product.tensors
    with_face, without_face = (sources[name] for name in variant.models)
    called = [sources[name] for name in variant.served_models]
    return {
        "name": product.choice_step(variant),
        "backend": "python",
        "max_batch_size": 1,
        "input": [_tensor(t.faces, "TYPE_FP32", [product.max_faces, FACE_VALUES]),
                  *(_tensor(t.model_input(src.name), "TYPE_FP32", [3, *src.input_size]) for src in called)],
        "output": [_tensor(t.model_outputs["alpha"], "TYPE_FP32", [1, -1, -1]),
                   _tensor(t.matte_subject, "TYPE_FP32", [1])],
        "instance_group": [{"count": tuning.preprocess_instances, "kind": "KIND_CPU"}],
        "parameters": _params(with_face=with_face.name, without_face=without_face.name, gate=variant.gate,
                              model_input=MODEL_INPUT, model_output=with_face.output),
    }


def model_config(source: ModelSource, target: str, sources: dict[str, ModelSource] | None = None,
                 product: Product = PRODUCT) -> dict[str, Any]:
    """Config of one catalog model: batched ONNX inference (a pixel model: ``pixel_model_config``, which reads
    the ``sources`` of the models its step calls)."""
    if source.output == PIXEL_OUTPUT:
        return pixel_model_config(source, sources or {}, target, product)
    tuning = _check_target(target)
    height, width = source.input_size
    called = source.output == TENSORS_OUTPUT
    outputs = ([_tensor(name, "TYPE_FP32", list(dims)) for name, dims in source.output_shapes.items()] if called
               else [_tensor(source.output, "TYPE_FP32", [1, height, width])])
    inputs = {name: list(dims) for name, dims in source.input_shapes.items()} or {MODEL_INPUT: [3, height, width]}
    config: dict[str, Any] = {
        "name": source.name,
        "max_batch_size": FACE_MODEL_MAX_BATCH if called else MODEL_MAX_BATCH,
        "input": [_tensor(name, "TYPE_FP32", dims) for name, dims in inputs.items()],
        "output": outputs,
        "dynamic_batching": {"max_queue_delay_microseconds": tuning.batch_delay_us},
        "model_warmup": [{
            "name": f"batch_{size}",
            "batch_size": size,
            "inputs": {name: {"data_type": "TYPE_FP32", "dims": _warmup_dims(dims),
                              "random_data": True} for name, dims in inputs.items()},
        } for size in WARMUP_BATCH_SIZES],
    }
    if target == "cpu":
        layout = tuning.layout(source.name)
        config["backend"] = "python"
        config["instance_group"] = [{"count": layout.instances, "kind": "KIND_CPU"}]
        config["parameters"] = _params(intra_op_threads=layout.intra_op_threads,
                                       intra_op_spinning=tuning.intra_op_spinning, runtime=source.cpu_runtime)
    else:
        config["platform"] = "onnxruntime_onnx"
        config["default_model_filename"] = "model.onnx"
        config["instance_group"] = [{"count": tuning.model_instances, "kind": "KIND_GPU"}]
        if any(-1 in dims for dims in inputs.values()):
            return config  # free H, W: onnxruntime's CUDA kernels; TensorRT would build an engine per new size
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


def _warmup_dims(dims: list[int]) -> list[int]:
    """A warm-up tensor's dims: each free size (-1) at ``WARMUP_FREE_SIZE``."""
    return [WARMUP_FREE_SIZE if dim == -1 else dim for dim in dims]


def ensemble_config(ensemble: Ensemble, sources: dict[str, ModelSource], product: Product = PRODUCT) -> dict[str, Any]:
    """decode step -> the ensemble's models -> compose step, wired by tensor names from the declaration."""
    t = product.tensors
    operation = ensemble.operation
    variant = operation.variant(ensemble.variant)
    # A by-faces variant's mattes and gate are called by its choice step, not run as steps.
    called_by_choice = variant.served_models if variant is not None and variant.by_faces else ()
    gate = variant.gate if variant is not None else ""
    if gate and sources[gate].output != "alpha":
        raise ConverterError(f"variant {variant.name!r}: its gate {gate!r} is catalogued with output "
                             f"{sources[gate].output!r}; a gate must make a person matte (output 'alpha')")
    pre_outputs = {t.output_size: "output_size", t.photo_size: "photo_size"}
    post_inputs = {t.output_size: "output_size", t.photo_size: "photo_size"}
    steps = []
    if ensemble.with_faces:
        pre_outputs[t.pixels] = "rgb"
        steps.append({"model_name": product.faces_step, "model_version": -1, "input_map": {t.pixels: "rgb"},
                      "output_map": {t.faces: "faces"}})
        if operation.uses_faces:
            post_inputs[t.faces] = "faces"
    if called_by_choice:  # the choice step calls one of the two mattes (and the gate)
        alpha = t.model_outputs["alpha"]
        pre_outputs.update({t.model_input(name): f"{name}_input" for name in called_by_choice})
        steps.append({"model_name": product.choice_step(variant), "model_version": -1,
                      "input_map": {t.faces: "faces", **{t.model_input(name): f"{name}_input"
                                                         for name in called_by_choice}},
                      "output_map": {alpha: "chosen_alpha", t.matte_subject: "matte_subject"}})
        post_inputs.update({alpha: "chosen_alpha", t.matte_subject: "matte_subject"})
    for name in ensemble.models:
        if name in called_by_choice:
            continue
        source = sources[name]
        output = t.matte_gate if name == gate else t.model_outputs[source.output]
        post_inputs[output] = f"{name}_output"
        if fed_by_decode(source):
            pre_outputs[t.model_input(name)] = f"{name}_input"
            inputs, output_map = {MODEL_INPUT: f"{name}_input"}, {source.output: f"{name}_output"}
        else:  # a pixel model: the photo and its parameters in
            if not operation.uses_pixels:
                raise ConverterError(f"operation {operation.name!r} uses pixel model {name!r}, which needs the "
                                     "photo: declare uses_pixels=True")
            inputs = {t.pixels: "rgb", **{p.tensor: p.tensor for p in operation.step_parameters("model")},
                      **{part.tensor: part.tensor for part in operation.parts_of("model")}}
            output_map = {output: f"{name}_output"}
        steps.append({"model_name": name, "model_version": -1, "input_map": inputs, "output_map": output_map})
    if operation.uses_pixels:
        pre_outputs[t.pixels] = "rgb"
        post_inputs[t.pixels] = "rgb"
    post_inputs.update({p.tensor: p.tensor for p in operation.step_parameters("compose")})
    post_inputs.update({part.tensor: part.tensor for part in operation.parts_of("compose")})
    outputs = [_tensor(operation.output.tensor, "TYPE_STRING", [1]),
               *(_tensor(h.tensor, "TYPE_FP32", [h.values]) for h in operation.header_outputs)]
    return {
        "name": ensemble.name,
        "platform": "ensemble",
        "max_batch_size": 1,
        # Only the photo is required: a direct gRPC caller may leave any parameter out (its default applies).
        "input": [
            _tensor(t.image, "TYPE_STRING", [1]),
            *({**_parameter_tensor(p), "optional": True} for p in operation.parameters),
            *(_tensor(part.tensor, "TYPE_STRING", [1], optional=True) for part in operation.image_parts),
        ],
        "output": outputs,
        "ensemble_scheduling": {"step": [
            {
                "model_name": product.decode_step,
                "model_version": -1,
                "input_map": {t.image: t.image, **{p.tensor: p.tensor for p in operation.step_parameters("decode")}},
                "output_map": pre_outputs,
            },
            *steps,
            {
                "model_name": product.compose_step,
                "model_version": -1,
                "input_map": post_inputs,
                "output_map": {out: out for out in operation.triton_outputs},
            },
        ]},
    }


def served_sources(sources: dict[str, ModelSource], product: Product = PRODUCT) -> dict[str, ModelSource]:
    """The catalog models the product uses, or a ConverterError naming a declared model the catalog lacks."""
    missing = [name for name in product.models() if name not in sources]
    if missing:
        raise ConverterError(f"contract/product.py uses models {missing} that converters/catalog.toml does not "
                             f"list; add [models.<name>] entries or change the declaration")
    return {name: sources[name] for name in product.models()}


def repository_configs(sources: dict[str, ModelSource], target: str,
                       product: Product = PRODUCT) -> dict[str, dict[str, Any]]:
    """Every model of the repository for ``target``, keyed by model name: the product's ensembles,
    the steps, and each catalog model an ensemble uses."""
    used = served_sources(sources, product)
    steps = {product.faces_step: faces_step_config(used, target, product)} if product.faces_used() else {}
    steps.update({product.choice_step(v): choice_step_config(v, used, target, product)
                  for v in product.by_faces_variants()})
    return {
        product.decode_step: preprocess_config(used, target, product),
        product.compose_step: postprocess_config(used, target, product),
        **steps,
        **{name: model_config(src, target, used, product) for name, src in used.items()},
        **{e.name: ensemble_config(e, used, product) for e in product.ensembles()},
    }


def python_model_file(model: str, config: dict[str, Any]) -> str | None:
    """Contents of ``<model>/1/model.py`` for python-backend models, else None."""
    if config.get("backend") != "python":
        return None
    module = PYTHON_MODEL_CLASSES.get(model, ONNX_STEP_CLASS)
    outputs = [o["name"] for o in config.get("output", [])]
    if outputs == [PRODUCT.tensors.model_outputs[PIXEL_OUTPUT]]:  # a pixel model
        module = UPSCALE_STEP if int(config["parameters"]["scale"]["string_value"]) > 1 else STYLE_STEP
    return (
        f'"""Triton python-backend entry point; the model lives in {module}."""\n\n'
        f"from {module} import TritonPythonModel  # noqa: F401\n"
    )
