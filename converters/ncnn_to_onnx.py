"""ncnn ``.param`` + ``.bin`` -> ONNX, for the Real-ESRGAN super-resolution models.

The ``.param`` file is text: the magic 7767517, the layer and blob counts, then one line per layer
(``type name n_in n_out inputs... outputs... key=value...``). A key below -23300 holds an array
(``-23300 - index``); a value with a decimal point or an exponent is a float. The ``.bin`` file concatenates
each layer's weights in layer order. A blob loaded "with a flag" (a convolution's weights) starts with a
little-endian uint32 storage tag: 0 = float32, 0x01306B47 = float16 (padded to 4 bytes); biases and PReLU
slopes are plain float32. (Format: Tencent/ncnn docs/developer-guide/param-and-model-file-structure.md and
operators.md.) Weights become float32 initializers.

Supported layers, exactly those of ``realesrgan-x4plus`` (RRDBNet) and ``realesr-animevideov3-x4``
(SRVGGNetCompact): Input, Split, Convolution (with no, ReLU or LeakyReLU activation), PReLU, Concat, Eltwise
(SUM, with coefficients), BinaryOp (add, sub, mul, div of two blobs of the same shape), Interp (nearest, by scale)
and PixelShuffle. Any other layer type or parameter raises :class:`ConversionError` naming it. Every ncnn blob of
these models is 3-D (C, H, W), which becomes ONNX's (N, C, H, W) with a symbolic batch.

Both networks take RGB in [0, 1] (Real-ESRGAN-ncnn-vulkan feeds ``PIXEL_RGB`` scaled by 1/255 and scales the
output back by 255), which is the served contract already: input ``image`` float32 [N, 3, H, W], output
``rgb`` float32 [N, 3, scale*H, scale*W], the network's output clipped to [0, 1].
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.catalog import PIXEL_OUTPUT
from converters.errors import ConversionError

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17 (TensorRT's parser and older runtimes accept it)
INPUT_NAME = "image"
OUTPUT_NAME = PIXEL_OUTPUT  # the catalog output the served steps read
NCNN_INPUT = "data"
NCNN_OUTPUT = "output"
PARAM_MAGIC = 7767517
ARRAY_KEY_BASE = -23300
FLAG_FLOAT32 = 0
FLAG_FLOAT16 = 0x01306B47

ParamValue = int | float | list[int] | list[float]


@dataclass(frozen=True)
class NcnnLayer:
    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue]

    def get(self, key: int, default: ParamValue) -> ParamValue:
        return self.params.get(key, default)

    def fail(self, problem: str) -> ConversionError:
        return ConversionError(f"ncnn layer {self.name!r} ({self.type}): {problem}")


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") or text.lower() in ("inf", "-inf", "nan") else int(text)


def _param_pair(layer_line: str, pair: str) -> tuple[int, ParamValue]:
    key_text, sep, value = pair.partition("=")
    try:
        key = int(key_text)
        if not sep:
            raise ValueError(pair)
        if key <= ARRAY_KEY_BASE:
            count, *items = value.split(",")
            if int(count) != len(items):
                raise ValueError(f"array {pair} says {count} items, has {len(items)}")
            return ARRAY_KEY_BASE - key, [_number(item) for item in items]
        return key, _number(value)
    except ValueError as exc:
        raise ConversionError(f"ncnn .param: bad parameter {pair!r} in line {layer_line!r} ({exc})") from None


def parse_param(text: str) -> list[NcnnLayer]:
    """The layers of an ncnn text ``.param`` file, in file order."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise ConversionError(f"not an ncnn text .param file: the first line is not the magic {PARAM_MAGIC}")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise ConversionError("ncnn .param: the second line must be '<layer count> <blob count>'") from None
    if len(lines) - 2 != layer_count:
        raise ConversionError(f"ncnn .param says {layer_count} layers but has {len(lines) - 2} layer lines")
    layers = []
    for line in lines[2:]:
        fields = line.split()
        if len(fields) < 4:
            raise ConversionError(f"ncnn .param: layer line {line!r} has fewer than 4 fields")
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        blobs = fields[4:4 + n_in + n_out]
        if len(blobs) != n_in + n_out:
            raise ConversionError(f"ncnn .param: layer line {line!r} names fewer than {n_in + n_out} blobs")
        params = dict(_param_pair(line, pair) for pair in fields[4 + n_in + n_out:])
        layers.append(NcnnLayer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    return layers


class WeightReader:
    """Reads the ``.bin`` blobs in order, as float32 arrays."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise ConversionError(f"ncnn .bin ends at byte {len(self.data)} while reading {what} ({size} bytes at "
                                  f"{self.offset}): the .bin does not belong to this .param")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def flagged(self, count: int, what: str) -> np.ndarray:
        """``count`` values behind a storage flag (float32 or float16)."""
        (tag,) = struct.unpack("<I", self._take(4, f"the storage flag of {what}"))
        if tag == FLAG_FLOAT32:
            return self.plain(count, what)
        if tag == FLAG_FLOAT16:
            padded = (count * 2 + 3) // 4 * 4
            return np.frombuffer(self._take(padded, what)[:count * 2], dtype="<f2").astype(np.float32)
        raise ConversionError(f"ncnn .bin: {what} has storage flag {tag:#010x}; only float32 (0) and float16 "
                              f"({FLAG_FLOAT16:#010x}) are supported (not int8 or bfloat16)")

    def plain(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(count * 4, what), dtype="<f4").astype(np.float32)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise ConversionError(f"ncnn .bin has {len(self.data) - self.offset} bytes left after the last layer's "
                                  "weights: the .bin does not belong to this .param")


class GraphBuilder:
    """ONNX nodes and initializers, with ncnn blob names resolved through Split aliases."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.alias: dict[str, str] = {NCNN_INPUT: INPUT_NAME}

    def blob(self, name: str, layer: NcnnLayer) -> str:
        if name not in self.alias:
            raise layer.fail(f"reads blob {name!r}, which no earlier layer makes")
        return self.alias[name]

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _no_params_beyond(layer: NcnnLayer, known: set[int]) -> None:
    unknown = sorted(set(layer.params) - known)
    if unknown:
        raise layer.fail(f"parameters {unknown} are not supported by this converter")


def _convolution(layer: NcnnLayer, graph: GraphBuilder, weights: WeightReader) -> None:
    _no_params_beyond(layer, {0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18})
    out_channels, kernel_w = int(layer.get(0, 0)), int(layer.get(1, 0))
    kernel_h = int(layer.get(11, kernel_w))
    dilation_w = int(layer.get(2, 1))
    stride_w = int(layer.get(3, 1))
    pad_left = int(layer.get(4, 0))
    pad_top, pad_right = int(layer.get(14, pad_left)), int(layer.get(15, pad_left))
    pad_bottom = int(layer.get(16, pad_top))
    size = int(layer.get(6, 0))
    if min(pad_left, pad_top, pad_right, pad_bottom) < 0:
        raise layer.fail("negative (automatic 'same') padding is not supported")
    if float(layer.get(18, 0.0)) != 0.0:
        raise layer.fail("a non-zero pad value is not supported")
    if out_channels <= 0 or kernel_w <= 0 or size % (out_channels * kernel_h * kernel_w):
        raise layer.fail(f"weight_data_size {size} is not num_output x in_channels x {kernel_h} x {kernel_w}")
    in_channels = size // (out_channels * kernel_h * kernel_w)
    kernel = weights.flagged(size, f"{layer.name} weights").reshape(out_channels, in_channels, kernel_h, kernel_w)
    inputs = [graph.blob(layer.inputs[0], layer), graph.constant(f"{layer.name}.weight", kernel)]
    if int(layer.get(5, 0)):
        inputs.append(graph.constant(f"{layer.name}.bias", weights.plain(out_channels, f"{layer.name} bias")))
    activation = int(layer.get(9, 0))
    if activation not in (0, 1, 2):
        raise layer.fail(f"activation_type {activation} is not supported (only 0 none, 1 ReLU, 2 LeakyReLU)")
    conv = graph.node("Conv", inputs, layer.outputs[0] if activation == 0 else f"{layer.name}.conv",
                      kernel_shape=[kernel_h, kernel_w], pads=[pad_top, pad_left, pad_bottom, pad_right],
                      strides=[int(layer.get(13, stride_w)), stride_w],
                      dilations=[int(layer.get(12, dilation_w)), dilation_w])
    if activation == 1:
        graph.node("Relu", [conv], layer.outputs[0])
    elif activation == 2:
        slope = layer.get(10, [0.0])
        graph.node("LeakyRelu", [conv], layer.outputs[0], alpha=float(slope[0] if slope else 0.0))
    graph.alias[layer.outputs[0]] = layer.outputs[0]


def _prelu(layer: NcnnLayer, graph: GraphBuilder, weights: WeightReader) -> None:
    _no_params_beyond(layer, {0})
    count = int(layer.get(0, 0))
    slope = weights.plain(count, f"{layer.name} slopes")
    shape = (1, count, 1, 1) if count > 1 else (1,)
    inputs = [graph.blob(layer.inputs[0], layer), graph.constant(f"{layer.name}.slope", slope.reshape(shape))]
    graph.alias[layer.outputs[0]] = graph.node("PRelu", inputs, layer.outputs[0])


def _split(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    source = graph.blob(layer.inputs[0], layer)
    for output in layer.outputs:
        graph.alias[output] = source


def _concat(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    _no_params_beyond(layer, {0})
    axis = int(layer.get(0, 0))
    if not -3 <= axis < 3:
        raise layer.fail(f"axis {axis} is not an axis of a (C, H, W) blob")
    inputs = [graph.blob(name, layer) for name in layer.inputs]
    graph.alias[layer.outputs[0]] = graph.node("Concat", inputs, layer.outputs[0], axis=axis % 3 + 1)


def _eltwise(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    _no_params_beyond(layer, {0, 1})
    op, coeffs = int(layer.get(0, 0)), [float(c) for c in layer.get(1, [])]
    if op != 1:
        raise layer.fail(f"op_type {op} is not supported (only 1, SUM)")
    inputs = [graph.blob(name, layer) for name in layer.inputs]
    if coeffs:  # sum of coeff_i * x_i
        if len(coeffs) != len(inputs):
            raise layer.fail(f"{len(coeffs)} coefficients for {len(inputs)} inputs")
        inputs = [x if c == 1.0 else graph.node("Mul", [x, graph.constant(f"{layer.name}.coeff{i}", np.float32(c))],
                                                  f"{layer.name}.scaled{i}")
                  for i, (x, c) in enumerate(zip(inputs, coeffs, strict=True))]
    graph.alias[layer.outputs[0]] = graph.node("Sum", inputs, layer.outputs[0])


BINARY_OPS = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div"}


def _binary_op(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    _no_params_beyond(layer, {0, 1})
    op = int(layer.get(0, 0))
    if op not in BINARY_OPS:
        raise layer.fail(f"op_type {op} is not supported (only {BINARY_OPS})")
    if int(layer.get(1, 0)) or len(layer.inputs) != 2:
        raise layer.fail("only two blobs are supported (not with_scalar=1)")
    # ncnn's broadcasting differs from ONNX's between blobs of different ranks; the supported models combine
    # blobs of the same shape, for which both agree.
    operands = [graph.blob(name, layer) for name in layer.inputs]
    graph.alias[layer.outputs[0]] = graph.node(BINARY_OPS[op], operands, layer.outputs[0])


def _interp(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    _no_params_beyond(layer, {0, 1, 2, 3, 4, 5, 6})
    resize_type = int(layer.get(0, 0))
    if resize_type != 1:
        raise layer.fail(f"resize_type {resize_type} is not supported (only 1, nearest)")
    if int(layer.get(3, 0)) or int(layer.get(4, 0)) or int(layer.get(5, 0)):
        raise layer.fail("a fixed or dynamic output size is not supported (only scales)")
    scales = np.array([1.0, 1.0, float(layer.get(1, 1.0)), float(layer.get(2, 1.0))], dtype=np.float32)
    # ncnn's nearest takes source pixel floor(x / scale): ONNX's asymmetric transform with floor rounding
    inputs = [graph.blob(layer.inputs[0], layer), "", graph.constant(f"{layer.name}.scales", scales)]
    graph.alias[layer.outputs[0]] = graph.node("Resize", inputs, layer.outputs[0], mode="nearest",
                                               coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _pixel_shuffle(layer: NcnnLayer, graph: GraphBuilder, _weights: WeightReader) -> None:
    _no_params_beyond(layer, {0, 1})
    # mode 0 reads channel c*r*r + sh*r + sw (PyTorch's PixelShuffle, ONNX CRD); mode 1 reads (sh*r + sw)*C + c (DCR)
    mode = int(layer.get(1, 0))
    if mode not in (0, 1):
        raise layer.fail(f"mode {mode} is not supported (0 or 1)")
    graph.alias[layer.outputs[0]] = graph.node("DepthToSpace", [graph.blob(layer.inputs[0], layer)], layer.outputs[0],
                                               blocksize=int(layer.get(0, 1)), mode="CRD" if mode == 0 else "DCR")


def _input(layer: NcnnLayer, _graph: GraphBuilder, _weights: WeightReader) -> None:
    if layer.outputs != (NCNN_INPUT,):
        raise layer.fail(f"the input blob is {layer.outputs}, expected ({NCNN_INPUT!r},)")


LAYERS: dict[str, Callable[[NcnnLayer, GraphBuilder, WeightReader], None]] = {
    "Input": _input, "Split": _split, "Convolution": _convolution, "PReLU": _prelu, "Concat": _concat,
    "Eltwise": _eltwise, "BinaryOp": _binary_op, "Interp": _interp, "PixelShuffle": _pixel_shuffle,
}


def convert_ncnn(param_text: str, weights: bytes) -> onnx.ModelProto:
    """An ncnn super-resolution model (text ``.param``, ``.bin``) as an ONNX model: ``image`` float32
    [N, 3, H, W] RGB in [0, 1] -> ``rgb`` float32 [N, 3, sH, sW] in [0, 1]."""
    layers = parse_param(param_text)
    unsupported = sorted({layer.type for layer in layers} - set(LAYERS))
    if unsupported:
        raise ConversionError(f"ncnn layer types {unsupported} are not supported by converters/ncnn_to_onnx.py "
                              f"(it converts {sorted(LAYERS)})")
    if [layer.type for layer in layers].count("Input") != 1:
        raise ConversionError("the ncnn model must have exactly one Input layer")
    graph, reader = GraphBuilder(), WeightReader(weights)
    for layer in layers:
        LAYERS[layer.type](layer, graph, reader)
    reader.finish()
    if NCNN_OUTPUT not in graph.alias:
        raise ConversionError(f"no layer makes the ncnn output blob {NCNN_OUTPUT!r}")
    low, high = graph.constant("rgb.min", np.float32(0.0)), graph.constant("rgb.max", np.float32(1.0))
    graph.node("Clip", [graph.alias[NCNN_OUTPUT], low, high], OUTPUT_NAME)
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, "ncnn_super_resolution",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 3, "out_height", "out_width"])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return model
