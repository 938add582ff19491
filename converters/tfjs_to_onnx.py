"""TensorFlow.js layers model (``model.json`` + binary weight shards) -> ONNX, for UpscalerJS ESRGAN "thick".

``model.json`` (format ``layers-model``) holds the Keras topology (``modelTopology.model_config``: a functional
model's ``layers``, each with ``class_name``, ``config`` and ``inbound_nodes``) and a ``weightsManifest``: groups of
weights (``name``, ``shape``, ``dtype``), each group's bytes the concatenation of its shard files (``paths``) in
order, little-endian. (Format: tensorflow/tfjs, tfjs-converter's ``write_weights`` and tfjs-layers' ``io``.)

Supported layers, exactly those of ``@upscalerjs/esrgan-thick`` (an RRDN: 10 residual-in-residual dense blocks of
3 dense blocks of 4 convolutions, then a pixel shuffle): InputLayer (NHWC, 3 channels), Conv2D (stride 1,
dilation 1, one group, ``same`` or ``valid`` padding, linear activation, channels last), Activation (relu),
Concatenate (on channels), Add, and UpscalerJS's two custom layers: ``MultiplyBeta`` (times its ``beta``) and
``PixelShuffle<s>x``, which calls ``tf.depthToSpace(x, s, 'NHWC')``: TensorFlow's depth-to-space reads the
channel index as (row offset, column offset, channel), which is ONNX DepthToSpace's DCR mode. Any other layer,
setting, weight type or quantized weight raises :class:`ConversionError` naming it; so do weights the topology
never uses. The graph runs in NCHW (a channels-last axis becomes axis 1); ONNX nodes carry the Keras layer
names, initializers the manifest's weight names.

UpscalerJS feeds ESRGAN models RGB in [0, 1] and reads [0, 1] back (``inputRange``/``outputRange`` [0, 1] in its
``getESRGANModelDefinition``), which is the served contract already: input ``image`` float32 [N, 3, H, W], output
``rgb`` float32 [N, 3, s*H, s*W], the network's output clipped to [0, 1].
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.catalog import PIXEL_OUTPUT
from converters.errors import ConversionError

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17
INPUT_NAME = "image"
OUTPUT_NAME = PIXEL_OUTPUT  # the catalog output the served steps read
CHANNELS_LAST_AXES = (3, -1)
PIXEL_SHUFFLE = re.compile(r"PixelShuffle(\d+)x")


@dataclass(frozen=True)
class TfjsLayer:
    class_name: str
    name: str
    config: dict
    inputs: tuple[str, ...]

    def fail(self, problem: str) -> ConversionError:
        return ConversionError(f"tfjs layer {self.name!r} ({self.class_name}): {problem}")


def _inbound(entry: dict) -> tuple[str, ...]:
    """The layer names feeding one call of a layer; shared layers (several calls) and multi-output tensors are
    refused."""
    nodes = entry.get("inbound_nodes", [])
    if not nodes:
        return ()
    if len(nodes) != 1:
        raise ConversionError(f"tfjs layer {entry.get('name')!r}: called {len(nodes)} times (a shared layer); "
                              "only layers called once are supported")
    names = []
    for inbound in nodes[0]:
        name, node_index, tensor_index, *kwargs = inbound
        if node_index != 0 or tensor_index != 0 or any(kwargs[:1]):
            raise ConversionError(f"tfjs layer {entry.get('name')!r}: input {inbound!r} is not the first output of "
                                  "a layer's only call; unsupported")
        names.append(name)
    return tuple(names)


def parse_model_json(text: str) -> tuple[list[TfjsLayer], str, str, list[dict]]:
    """``model.json`` -> (layers in order, input layer name, output layer name, weights manifest)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"tfjs model.json is not JSON: {exc}") from None
    if document.get("format") != "layers-model":
        raise ConversionError(f"tfjs model.json: format {document.get('format')!r}; only 'layers-model' (a Keras "
                              "model) is supported, not graph models")
    model_config = document.get("modelTopology", {}).get("model_config", {})
    if model_config.get("class_name") not in ("Model", "Functional"):
        raise ConversionError(f"tfjs model.json: model class {model_config.get('class_name')!r}; only functional "
                              "Keras models ('Model', 'Functional') are supported")
    config = model_config["config"]
    layers = [TfjsLayer(entry["class_name"], entry["name"], entry.get("config", {}), _inbound(entry))
              for entry in config["layers"]]
    ends = []
    for key in ("input_layers", "output_layers"):
        if len(config[key]) != 1 or config[key][0][1:] != [0, 0]:
            raise ConversionError(f"tfjs model.json: {key} = {config[key]!r}; exactly one is supported")
        ends.append(config[key][0][0])
    return layers, ends[0], ends[1], document.get("weightsManifest", [])


def read_weights(manifest: list[dict], shards: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """The manifest's weights as float32 arrays, each group read from its shards (``shards``: file name -> bytes)
    concatenated in order."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        missing = [path for path in group["paths"] if path not in shards]
        if missing:
            raise ConversionError(f"tfjs weights: shards {missing} of model.json are missing; pin them in the "
                                  "catalog's weights_shards")
        data = b"".join(shards[path] for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            name, shape = spec["name"], tuple(spec["shape"])
            if spec.get("dtype") != "float32" or "quantization" in spec:
                raise ConversionError(f"tfjs weight {name!r}: dtype {spec.get('dtype')!r}"
                                      f"{' quantized' if 'quantization' in spec else ''}; only plain float32 weights "
                                      "are supported")
            size = int(np.prod(shape, dtype=np.int64)) * 4
            if offset + size > len(data):
                raise ConversionError(f"tfjs weight {name!r}: needs bytes {offset}..{offset + size} but shards "
                                      f"{group['paths']} hold {len(data)}; the shards do not match model.json")
            weights[name] = np.frombuffer(data, dtype="<f4", count=size // 4, offset=offset).reshape(shape)
            offset += size
        if offset != len(data):
            raise ConversionError(f"tfjs weights: shards {group['paths']} hold {len(data)} bytes, model.json's "
                                  f"weights {offset}; the shards do not match model.json")
    return weights


class GraphBuilder:
    """ONNX nodes and initializers, with the channel count of each layer's output (for clear errors)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.channels: dict[str, int] = {}
        self.scale = 1

    def weight(self, layer: TfjsLayer, suffix: str) -> np.ndarray:
        name = f"{layer.name}/{suffix}"
        if name not in self.weights:
            raise layer.fail(f"weight {name!r} is not in model.json's weightsManifest")
        self.used.add(name)
        return self.weights[name]

    def initializer(self, name: str, value: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> None:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))

    def input_channels(self, layer: TfjsLayer) -> list[int]:
        unknown = [name for name in layer.inputs if name not in self.channels]
        if unknown:
            raise layer.fail(f"inputs {unknown} are not defined before it")
        return [self.channels[name] for name in layer.inputs]


def _only_keys(layer: TfjsLayer, expected: dict[str, object]) -> None:
    for key, allowed in expected.items():
        value = layer.config.get(key)
        if value not in (allowed if isinstance(allowed, tuple) else (allowed,)):
            raise layer.fail(f"{key} = {value!r}; only {allowed!r} is supported")


def _inputs(layer: TfjsLayer, count: int | None) -> None:
    if (count is None and len(layer.inputs) < 2) or (count is not None and len(layer.inputs) != count):
        raise layer.fail(f"{len(layer.inputs)} inputs; expected {count or 'two or more'}")


def _input_layer(layer: TfjsLayer, graph: GraphBuilder) -> None:
    shape = layer.config.get("batch_input_shape")
    if shape is None or len(shape) != 4 or shape[3] != 3:
        raise layer.fail(f"batch_input_shape {shape!r}; expected NHWC with 3 channels [null, null, null, 3]")
    _only_keys(layer, {"dtype": "float32"})
    graph.node("Identity", [INPUT_NAME], layer.name)
    graph.channels[layer.name] = 3


def _same_pads(kernel: list[int]) -> list[int]:
    """TensorFlow's ``same`` padding at stride 1: k - 1 in all, the odd one at the end."""
    begins = [(k - 1) // 2 for k in kernel]
    return [*begins, *(k - 1 - b for k, b in zip(kernel, begins, strict=True))]


def _conv2d(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, 1)
    _only_keys(layer, {"strides": [1, 1], "dilation_rate": [1, 1], "groups": (1, None), "activation": "linear",
                       "data_format": "channels_last", "use_bias": True, "padding": ("same", "valid")})
    (channels,) = graph.input_channels(layer)
    kernel = graph.weight(layer, "kernel")  # [kh, kw, in, out]
    bias = graph.weight(layer, "bias")
    filters = layer.config.get("filters")
    if kernel.ndim != 4 or list(kernel.shape[:2]) != layer.config.get("kernel_size") or kernel.shape[2:] != (
            channels, filters) or bias.shape != (filters,):
        raise layer.fail(f"kernel {kernel.shape} and bias {bias.shape} do not fit kernel_size "
                         f"{layer.config.get('kernel_size')}, {channels} input channels and {filters} filters")
    pads = _same_pads(list(kernel.shape[:2])) if layer.config["padding"] == "same" else [0, 0, 0, 0]
    weight = graph.initializer(f"{layer.name}/kernel", kernel.transpose(3, 2, 0, 1))  # -> [out, in, kh, kw]
    graph.node("Conv", [layer.inputs[0], weight, graph.initializer(f"{layer.name}/bias", bias)], layer.name,
               kernel_shape=list(kernel.shape[:2]), pads=pads, strides=[1, 1], dilations=[1, 1], group=1)
    graph.channels[layer.name] = filters


def _activation(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, 1)
    _only_keys(layer, {"activation": "relu"})
    graph.node("Relu", list(layer.inputs), layer.name)
    graph.channels[layer.name] = graph.input_channels(layer)[0]


def _concatenate(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, None)
    _only_keys(layer, {"axis": CHANNELS_LAST_AXES})
    graph.node("Concat", list(layer.inputs), layer.name, axis=1)
    graph.channels[layer.name] = sum(graph.input_channels(layer))


def _add(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, None)
    channels = graph.input_channels(layer)
    if len(set(channels)) != 1:
        raise layer.fail(f"adds tensors of {channels} channels; they must match")
    output = layer.name
    for index, name in enumerate(layer.inputs[1:], start=1):  # ONNX Add takes two: a chain for more
        step = output if index == len(layer.inputs) - 1 else f"{layer.name}/{index}"
        graph.node("Add", [layer.inputs[0] if index == 1 else f"{layer.name}/{index - 1}", name], step)
    graph.channels[layer.name] = channels[0]


def _multiply_beta(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, 1)
    beta = layer.config.get("beta")
    if not isinstance(beta, int | float):
        raise layer.fail(f"beta = {beta!r}; expected a number")
    graph.node("Mul", [layer.inputs[0], graph.initializer(f"beta_{beta!r}", np.array(beta, np.float32))], layer.name)
    graph.channels[layer.name] = graph.input_channels(layer)[0]


def _pixel_shuffle(layer: TfjsLayer, graph: GraphBuilder) -> None:
    _inputs(layer, 1)
    scale = int(PIXEL_SHUFFLE.fullmatch(layer.class_name).group(1))
    if layer.config.get("scale", scale) != scale:
        raise layer.fail(f"config scale {layer.config.get('scale')!r} differs from the class name's {scale}")
    (channels,) = graph.input_channels(layer)
    if channels % (scale * scale):
        raise layer.fail(f"{channels} input channels are not a multiple of {scale}x{scale}")
    graph.node("DepthToSpace", list(layer.inputs), layer.name, blocksize=scale, mode="DCR")
    graph.channels[layer.name] = channels // (scale * scale)
    graph.scale *= scale


LAYERS: dict[str, Callable[[TfjsLayer, GraphBuilder], None]] = {
    "InputLayer": _input_layer,
    "Conv2D": _conv2d,
    "Activation": _activation,
    "Concatenate": _concatenate,
    "Add": _add,
    "MultiplyBeta": _multiply_beta,
}


def _converter(layer: TfjsLayer) -> Callable[[TfjsLayer, GraphBuilder], None]:
    if PIXEL_SHUFFLE.fullmatch(layer.class_name):
        return _pixel_shuffle
    if layer.class_name not in LAYERS:
        raise layer.fail(f"layer type {layer.class_name!r} is not supported (supported: {sorted(LAYERS)} and "
                         "PixelShuffle<s>x)")
    return LAYERS[layer.class_name]


def convert_tfjs(model_json: str, shards: Mapping[str, bytes]) -> onnx.ModelProto:
    """A tfjs layers model (``model.json`` text; ``shards``: weight file name -> bytes) -> ONNX (module docstring)."""
    layers, input_layer, output_layer, manifest = parse_model_json(model_json)
    graph = GraphBuilder(read_weights(manifest, shards))
    if not layers or layers[0].name != input_layer or layers[0].class_name != "InputLayer":
        raise ConversionError(f"tfjs model.json: the first layer must be the input layer {input_layer!r}")
    for layer in layers:
        _converter(layer)(layer, graph)
    unused = sorted(set(graph.weights) - graph.used)
    if unused:
        raise ConversionError(f"tfjs weights {unused[:5]} (of {len(unused)}) are used by no layer; the topology "
                              "does not match the weights")
    if graph.channels.get(output_layer) != 3:
        raise ConversionError(f"tfjs output layer {output_layer!r} has {graph.channels.get(output_layer)} channels; "
                              "an upscaler must end in 3 (RGB)")
    graph.node("Clip", [output_layer, graph.initializer("zero", np.array(0.0)), graph.initializer(
        "one", np.array(1.0))], OUTPUT_NAME)
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, "tfjs_upscaler",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 3, "out_height", "out_width"])],
            initializer=list(graph.initializers.values()),
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
    )
    model.doc_string = f"tfjs layers model, {len(layers)} layers, scale {graph.scale}"
    onnx.checker.check_model(model)
    return model
