"""Hand-written TFLite -> ONNX conversion for MediaPipe's selfie segmentation and face models.

Off-the-shelf converters stop at MediaPipe's custom op ``Convolution2DTransposeBias``,
so this module parses the TFLite flatbuffer (``tflite`` package) and emits ONNX
(opset 17) with ``onnx.helper``, one small function per TFLite op kind.

Layout choice: the whole graph is converted to NCHW instead of wrapping each
spatial op in a pair of Transposes. TFLite activations are NHWC; every rank-4
activation keeps its meaning in ONNX with its axes reordered (N, H, W, C) ->
(N, C, H, W). Weights are transposed once, at conversion time, into ONNX's
layouts. Element-wise ops broadcast the same way in both layouts as long as both
operands are rank-4 activations (e.g. the squeeze-excite gate [N,1,1,C] becomes
[N,C,1,1]); constant operands are re-laid out explicitly. A model of rank-4
tensors only (the selfie segmentation) therefore has no Transpose node: its input
``image`` is float32 NCHW ``[batch, C, H, W]`` (RGB in [0, 1] for that model) and
its output ``alpha`` is float32 NCHW ``[batch, 1, H, W]``. TFLite's fixed batch of
1 becomes the symbolic dimension ``batch``; no op depends on the batch size.

Tensors of another rank than 4 (after a RESHAPE) keep TFLite's layout in ONNX.
RESHAPE therefore first transposes a rank-4 input back to NHWC (so that the
flattening order is TFLite's) and transposes a rank-4 result to NCHW;
CONCATENATION maps its axis to NCHW when its operands are rank 4; PAD and PRELU
re-lay out their constants.

Models with several outputs (the face models) are converted with ``outputs``:
the ONNX output names and their dims without the batch, in the TFLite graph's
output order. Each output is then returned in TFLite's own element order,
reshaped to ``[batch, *dims]`` (e.g. TFLite ``[1, 1, 1, 1404]`` -> ``[batch, 1404]``).

Sparse constants (the full-range face detector stores most of its fp16
weights that way) are decoded into dense arrays when the model is read, from
the tensor's SparsityParameters (TFLite's format: a traversal order of the
dimensions, optional block dimensions, and per traversed dimension either DENSE
or SPARSE_CSR segments and indices); DENSIFY then only hands the dense array on,
so the ONNX graph holds ordinary dense initializers.

Supported TFLite ops (those of the selfie segmentation, face detection short
and full range, face landmark and iris landmark models): ADD, AVERAGE_POOL_2D,
CONCATENATION, CONV_2D, DENSIFY (of constants), DEPTH_TO_SPACE, DEPTHWISE_CONV_2D,
DEQUANTIZE (fp16 constants, folded into float32 initializers), HARD_SWISH,
LOGISTIC, MAX_POOL_2D, MUL, PAD, PRELU, RELU, RESHAPE, RESIZE_BILINEAR and the
custom op Convolution2DTransposeBias. Anything else raises
:class:`converters.errors.ConversionError` naming the op.
"""

from __future__ import annotations

import keyword
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper
from tflite.utils import BUILTIN_OPCODE2NAME

from converters.errors import ConversionError

OPSET = 17
# IR version 8 is the one that introduced opset 17; older runtimes (TensorRT's
# ONNX parser, Triton's onnxruntime backend) accept it, while onnx's default may be newer.
IR_VERSION = 8
INPUT_NAME = "image"
OUTPUT_NAME = "alpha"
BATCH_DIM = "batch"
CUSTOM_TRANSPOSE_CONV = "Convolution2DTransposeBias"

_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)

_TFLITE_DTYPES: dict[int, np.dtype] = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"),
    tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.INT32: np.dtype("<i4"),
    tflite.TensorType.INT64: np.dtype("<i8"),
    tflite.TensorType.UINT8: np.dtype("u1"),
    tflite.TensorType.INT8: np.dtype("i1"),
}

# TFLite's schema enum (Padding.SAME = 0, VALID = 1) differs from the C enum
# TfLitePadding (kTfLitePaddingSame = 1, kTfLitePaddingValid = 2) that custom
# ops store in their raw option structs.
_C_PADDING_SAME = 1
_C_PADDING_VALID = 2


@dataclass
class _Context:
    """Conversion state: the parsed subgraph and the ONNX graph being built."""

    graph: tflite.SubGraph
    input_index: int
    # TFLite tensor index -> ONNX name of the tensors that keep a graph output's name.
    output_names: dict[int, str]
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _names: dict[int, str] = field(default_factory=dict)
    # The graph's input and output names are reserved so that no other tensor can take them.
    _used_names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._used_names.update({INPUT_NAME, *self.output_names.values()})

    def tensor(self, index: int) -> tflite.Tensor:
        return self.graph.Tensors(index)

    def tensor_name(self, index: int) -> str:
        return self.tensor(index).Name().decode("utf-8", errors="replace")

    def shape(self, index: int) -> tuple[int, ...]:
        tensor = self.tensor(index)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def constant(self, index: int, what: str) -> np.ndarray:
        """The constant behind tensor ``index`` in TFLite layout; ``what`` names it in errors."""
        if index not in self.constants:
            raise ConversionError(
                f"{what} (tensor {self.tensor_name(index)!r}) is computed at run time; "
                "the converter only supports constant weights, sizes and biases"
            )
        return self.constants[index]

    def has_value(self, index: int) -> bool:
        return index in self._names

    def unique_name(self, base: str) -> str:
        name, suffix = base, 1
        while name in self._used_names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        self._used_names.add(name)
        return name

    def value(self, index: int) -> str:
        """ONNX name of the float32 activation held by TFLite tensor ``index`` (NCHW when rank 4)."""
        if index in self.constants:
            raise ConversionError(
                f"tensor {self.tensor_name(index)!r} is a constant used where an activation "
                "is expected; this layout of constants is not supported"
            )
        if index not in self._names:
            if self.tensor(index).Type() != tflite.TensorType.FLOAT32:
                raise ConversionError(
                    f"activation {self.tensor_name(index)!r} is not float32; quantized "
                    "models are not supported, use the float (or fp16-weight) variant"
                )
            if index == self.input_index:
                self._names[index] = INPUT_NAME
            elif index in self.output_names:
                self._names[index] = self.output_names[index]
            else:
                self._names[index] = self.unique_name(self.tensor_name(index) or f"tensor_{index}")
        return self._names[index]

    def add_initializer(self, base: str, array: np.ndarray) -> str:
        name = self.unique_name(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add_node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: object) -> None:
        name = self.unique_name(f"{op_type}_{len(self.nodes)}")
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))


Handler = Callable[[_Context, tflite.Operator, list[int], list[int]], None]


# --------------------------------------------------------------------------- helpers


def _options(op: tflite.Operator, options_type: type) -> object:
    table = op.BuiltinOptions()
    if table is None:
        raise ConversionError(f"operator is missing its {options_type.__name__}; the model is malformed")
    options = options_type()
    options.Init(table.Bytes, table.Pos)
    return options


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (extra pixel at the end) as (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial_pads(
    padding: int, in_hw: tuple[int, int], kernel_hw: tuple[int, int], stride_hw: tuple[int, int],
    dilation_hw: tuple[int, int] = (1, 1),
) -> list[int]:
    """ONNX ``pads`` [top, left, bottom, right] for a TFLite schema Padding value."""
    if padding == tflite.Padding.VALID:
        return [0, 0, 0, 0]
    if padding != tflite.Padding.SAME:
        raise ConversionError(f"unknown TFLite padding value {padding}; expected SAME or VALID")
    top, bottom = _same_pads(in_hw[0], kernel_hw[0], stride_hw[0], dilation_hw[0])
    left, right = _same_pads(in_hw[1], kernel_hw[1], stride_hw[1], dilation_hw[1])
    return [top, left, bottom, right]


def _emit(
    ctx: _Context, op_type: str, inputs: list[str], output: int, activation: int, **attrs: object
) -> None:
    """Emit ``op_type`` writing TFLite tensor ``output``, followed by its fused activation."""
    target = ctx.value(output)
    if activation == tflite.ActivationFunctionType.NONE:
        ctx.add_node(op_type, inputs, [target], **attrs)
        return
    raw = ctx.unique_name(f"{target}_preact")
    ctx.add_node(op_type, inputs, [raw], **attrs)
    if activation == tflite.ActivationFunctionType.RELU:
        ctx.add_node("Relu", [raw], [target])
    elif activation in (tflite.ActivationFunctionType.RELU6, tflite.ActivationFunctionType.RELU_N1_TO_1):
        low, high = (0.0, 6.0) if activation == tflite.ActivationFunctionType.RELU6 else (-1.0, 1.0)
        low_name = ctx.add_initializer(f"{target}_clip_min", np.array(low, np.float32))
        high_name = ctx.add_initializer(f"{target}_clip_max", np.array(high, np.float32))
        ctx.add_node("Clip", [raw, low_name, high_name], [target])
    elif activation == tflite.ActivationFunctionType.TANH:
        ctx.add_node("Tanh", [raw], [target])
    else:
        raise ConversionError(
            f"fused activation {activation} on {ctx.tensor_name(output)!r} is not supported "
            "(supported: NONE, RELU, RELU6, RELU_N1_TO_1, TANH)"
        )


def _bias(ctx: _Context, inputs: list[int], channels: int, what: str) -> str:
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = ctx.constant(inputs[2], f"{what} bias").astype(np.float32)
    else:
        bias = np.zeros(channels, np.float32)
    return ctx.add_initializer(f"{what}_bias", bias.reshape(channels))


def _nchw_axis(axis: int, rank: int) -> int:
    """The ONNX axis of TFLite axis ``axis`` (may be negative) of a rank-``rank`` tensor."""
    if not -rank <= axis < rank:
        raise ConversionError(f"axis {axis} is out of range for a rank-{rank} tensor")
    axis %= rank
    return _NHWC_TO_NCHW.index(axis) if rank == 4 else axis


def _to_tflite_layout(ctx: _Context, index: int) -> str:
    """The activation of tensor ``index`` in TFLite's layout: rank-4 ones are transposed back to NHWC."""
    name = ctx.value(index)
    if len(ctx.shape(index)) != 4:
        return name
    nhwc = ctx.unique_name(f"{name}_nhwc")
    ctx.add_node("Transpose", [name], [nhwc], perm=list(_NCHW_TO_NHWC))
    return nhwc


def _batch_reshape(ctx: _Context, source: str, dims: tuple[int, ...], target: str) -> None:
    """Reshape ``source`` (TFLite layout) to ``[batch, *dims]`` into ``target``."""
    shape = ctx.add_initializer(f"{target}_shape", np.array([-1, *dims], np.int64))
    ctx.add_node("Reshape", [source, shape], [target])


def _elementwise_operand(ctx: _Context, index: int) -> str:
    """An ADD/MUL operand: an NCHW activation, or a constant re-laid out to broadcast as in NHWC."""
    if index not in ctx.constants:
        if len(ctx.shape(index)) != 4:
            raise ConversionError(
                f"element-wise operand {ctx.tensor_name(index)!r} has rank {len(ctx.shape(index))}; "
                "only rank-4 activations can be re-laid out to NCHW"
            )
        return ctx.value(index)
    array = ctx.constants[index].astype(np.float32)
    if array.ndim == 4:
        array = array.transpose(_NHWC_TO_NCHW)
    elif array.ndim == 1:
        array = array.reshape(-1, 1, 1)
    elif array.ndim != 0:
        raise ConversionError(
            f"constant operand {ctx.tensor_name(index)!r} of rank {array.ndim} cannot be re-laid "
            "out to NCHW; only scalars, per-channel vectors and rank-4 constants are supported"
        )
    return ctx.add_initializer(ctx.tensor_name(index) or f"const_{index}", array)


# --------------------------------------------------------------------------- op handlers


def _dequantize(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    source = ctx.constant(inputs[0], "DEQUANTIZE input")
    if source.dtype != np.float16:
        raise ConversionError(
            f"DEQUANTIZE of {source.dtype} tensor {ctx.tensor_name(inputs[0])!r} is not supported; "
            "only fp16 weights (float16 -> float32) are"
        )
    ctx.constants[outputs[0]] = source.astype(np.float32)


def _densify(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """DENSIFY of a sparse constant: the model reader already decoded it (see :func:`densify`)."""
    ctx.constants[outputs[0]] = ctx.constant(inputs[0], "DENSIFY input")


def _depth_to_space(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """TFLite splits the input depth as (row in the block, column in the block, channel), the channel varying
    fastest; that is ONNX's DCR mode, which on NCHW reads the channels in the same order."""
    block = _options(op, tflite.DepthToSpaceOptions).BlockSize()
    shape = ctx.shape(inputs[0])
    if len(shape) != 4 or block < 1 or shape[3] % (block * block):
        raise ConversionError(
            f"DEPTH_TO_SPACE of {ctx.tensor_name(outputs[0])!r}: input {shape} with block size {block}; "
            "expected a rank-4 input whose channels are a multiple of block_size ** 2"
        )
    ctx.add_node("DepthToSpace", [ctx.value(inputs[0])], [ctx.value(outputs[0])], blocksize=block, mode="DCR")


def _conv_2d(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.Conv2DOptions)
    kernel = ctx.constant(inputs[1], "CONV_2D kernel").astype(np.float32)  # [O, kh, kw, I]
    out_channels, kh, kw, in_channels = kernel.shape
    groups = ctx.shape(inputs[0])[3] // in_channels
    stride = (options.StrideH(), options.StrideW())
    dilation = (options.DilationHFactor(), options.DilationWFactor())
    pads = _spatial_pads(options.Padding(), ctx.shape(inputs[0])[1:3], (kh, kw), stride, dilation)
    weight = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_weight", kernel.transpose(_NHWC_TO_NCHW))
    bias = _bias(ctx, inputs, out_channels, ctx.tensor_name(outputs[0]))
    _emit(ctx, "Conv", [ctx.value(inputs[0]), weight, bias], outputs[0], options.FusedActivationFunction(),
          kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation), pads=pads, group=groups)


def _depthwise_conv_2d(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.DepthwiseConv2DOptions)
    kernel = ctx.constant(inputs[1], "DEPTHWISE_CONV_2D kernel").astype(np.float32)  # [1, kh, kw, C*m]
    _, kh, kw, out_channels = kernel.shape
    in_channels = ctx.shape(inputs[0])[3]
    stride = (options.StrideH(), options.StrideW())
    dilation = (options.DilationHFactor(), options.DilationWFactor())
    pads = _spatial_pads(options.Padding(), ctx.shape(inputs[0])[1:3], (kh, kw), stride, dilation)
    # ONNX grouped conv weight: [C*m, 1, kh, kw]; output channel c*m + j reads input channel c, as in TFLite.
    weight = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_weight", kernel.transpose(3, 0, 1, 2))
    bias = _bias(ctx, inputs, out_channels, ctx.tensor_name(outputs[0]))
    _emit(ctx, "Conv", [ctx.value(inputs[0]), weight, bias], outputs[0], options.FusedActivationFunction(),
          kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation), pads=pads, group=in_channels)


def _average_pool_2d(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.Pool2DOptions)
    in_hw = ctx.shape(inputs[0])[1:3]
    kernel = (options.FilterHeight(), options.FilterWidth())
    activation = options.FusedActivationFunction()
    if kernel == in_hw and ctx.shape(outputs[0])[1:3] == (1, 1):
        _emit(ctx, "GlobalAveragePool", [ctx.value(inputs[0])], outputs[0], activation)
        return
    stride = (options.StrideH(), options.StrideW())
    pads = _spatial_pads(options.Padding(), in_hw, kernel, stride)
    # TFLite averages over the valid (unpadded) pixels only: count_include_pad=0.
    _emit(ctx, "AveragePool", [ctx.value(inputs[0])], outputs[0], activation,
          kernel_shape=list(kernel), strides=list(stride), pads=pads, count_include_pad=0)


def _add(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    activation = _options(op, tflite.AddOptions).FusedActivationFunction()
    operands = [_elementwise_operand(ctx, index) for index in inputs]
    _emit(ctx, "Add", operands, outputs[0], activation)


def _mul(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    activation = _options(op, tflite.MulOptions).FusedActivationFunction()
    operands = [_elementwise_operand(ctx, index) for index in inputs]
    _emit(ctx, "Mul", operands, outputs[0], activation)


def _unary(onnx_op: str) -> Handler:
    def convert(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
        ctx.add_node(onnx_op, [ctx.value(inputs[0])], [ctx.value(outputs[0])])

    convert.__name__ = f"_unary_{onnx_op.lower()}"
    return convert


def _resize_bilinear(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.ResizeBilinearOptions)
    in_hw = ctx.shape(inputs[0])[1:3]
    out_hw = tuple(int(v) for v in ctx.constant(inputs[1], "RESIZE_BILINEAR size"))
    scales = np.array([1.0, 1.0, out_hw[0] / in_hw[0], out_hw[1] / in_hw[1]], np.float32)
    # ONNX derives the output size as floor(input * scale); make sure that lands exactly.
    reached = (int(np.floor(size * scale)) for size, scale in zip(in_hw, scales[2:], strict=True))
    if tuple(reached) != out_hw:
        raise ConversionError(
            f"RESIZE_BILINEAR {in_hw} -> {out_hw} is not reachable with float32 scales; "
            "only resizes whose output size is exactly input * scale are supported"
        )
    if options.AlignCorners():
        mode = "align_corners"
    elif options.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    scales_name = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_scales", scales)
    ctx.add_node("Resize", [ctx.value(inputs[0]), "", scales_name], [ctx.value(outputs[0])],
                 mode="linear", coordinate_transformation_mode=mode)


def _transpose_conv_bias(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """MediaPipe's ``Convolution2DTransposeBias``: transposed conv + bias.

    Its custom options are the raw C struct TfLitePoolParams, of which it reads
    padding (TfLitePadding enum), stride_width and stride_height as int32.
    """
    raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
    if len(raw) < 12:
        raise ConversionError(
            f"{CUSTOM_TRANSPOSE_CONV} has {len(raw)} bytes of options, expected at least 12 "
            "(padding, stride_width, stride_height as int32)"
        )
    padding, stride_w, stride_h = struct.unpack_from("<3i", raw)
    if padding not in (_C_PADDING_SAME, _C_PADDING_VALID):
        raise ConversionError(f"{CUSTOM_TRANSPOSE_CONV} has unknown padding value {padding}")
    kernel = ctx.constant(inputs[1], f"{CUSTOM_TRANSPOSE_CONV} kernel").astype(np.float32)  # [O, kh, kw, I]
    out_channels, kh, kw, _ = kernel.shape
    in_hw = ctx.shape(inputs[0])[1:3]
    out_hw = ctx.shape(outputs[0])[1:3]
    pads_begin, pads_end = [], []
    for size, k, stride, target in zip(in_hw, (kh, kw), (stride_h, stride_w), out_hw, strict=True):
        total = (size - 1) * stride + k - target  # rows/columns cropped from the full result
        if total < 0:
            raise ConversionError(
                f"{CUSTOM_TRANSPOSE_CONV}: output size {target} is larger than the full transposed "
                f"convolution ({target + total}); this geometry is not supported"
            )
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    # ONNX ConvTranspose weight: [I, O, kh, kw].
    weight = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_weight", kernel.transpose(3, 0, 1, 2))
    bias = _bias(ctx, inputs, out_channels, ctx.tensor_name(outputs[0]))
    ctx.add_node("ConvTranspose", [ctx.value(inputs[0]), weight, bias], [ctx.value(outputs[0])],
                 kernel_shape=[kh, kw], strides=[stride_h, stride_w], pads=pads_begin + pads_end)


def _max_pool_2d(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.Pool2DOptions)
    kernel = (options.FilterHeight(), options.FilterWidth())
    stride = (options.StrideH(), options.StrideW())
    # SAME padding never wins a max in TFLite; ONNX MaxPool ignores padded pixels the same way.
    pads = _spatial_pads(options.Padding(), ctx.shape(inputs[0])[1:3], kernel, stride)
    _emit(ctx, "MaxPool", [ctx.value(inputs[0])], outputs[0], options.FusedActivationFunction(),
          kernel_shape=list(kernel), strides=list(stride), pads=pads)


def _pad(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """Zero padding; TFLite's paddings are [rank, 2] (before, after) per NHWC axis."""
    paddings = ctx.constant(inputs[1], "PAD paddings").astype(np.int64)
    rank = len(ctx.shape(inputs[0]))
    if paddings.shape != (rank, 2):
        raise ConversionError(
            f"PAD paddings of {ctx.tensor_name(outputs[0])!r} have shape {paddings.shape}, expected ({rank}, 2)"
        )
    if rank == 4 and paddings[0].any():
        raise ConversionError(f"PAD of {ctx.tensor_name(outputs[0])!r} pads the batch axis; this is not supported")
    order = list(_NHWC_TO_NCHW) if rank == 4 else list(range(rank))
    pads = np.concatenate([paddings[order, 0], paddings[order, 1]])
    pads_name = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_pads", pads)
    ctx.add_node("Pad", [ctx.value(inputs[0]), pads_name], [ctx.value(outputs[0])], mode="constant")


def _prelu(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """PReLU with a constant slope that broadcasts against the NHWC input (e.g. [1, 1, C] or [C])."""
    rank = len(ctx.shape(inputs[0]))
    slope = ctx.constant(inputs[1], "PRELU alpha").astype(np.float32)
    if rank != 4 or slope.ndim > 4:
        raise ConversionError(
            f"PRELU of {ctx.tensor_name(outputs[0])!r}: input rank {rank} with alpha rank {slope.ndim}; "
            "only rank-4 activations with an alpha of rank <= 4 are supported"
        )
    slope = slope.reshape((1,) * (4 - slope.ndim) + slope.shape).transpose(_NHWC_TO_NCHW)
    slope_name = ctx.add_initializer(f"{ctx.tensor_name(outputs[0])}_slope", slope)
    ctx.add_node("PRelu", [ctx.value(inputs[0]), slope_name], [ctx.value(outputs[0])])


def _reshape(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    """RESHAPE in TFLite's element order; the batch (TFLite's leading 1) stays the leading axis."""
    in_shape, out_shape = ctx.shape(inputs[0]), ctx.shape(outputs[0])
    if not (in_shape and out_shape and in_shape[0] == 1 and out_shape[0] == 1):
        raise ConversionError(
            f"RESHAPE {in_shape} -> {out_shape} of {ctx.tensor_name(outputs[0])!r}: only reshapes that keep "
            "the batch of 1 as the leading axis are supported"
        )
    source = _to_tflite_layout(ctx, inputs[0])
    target = ctx.value(outputs[0])
    if len(out_shape) != 4:
        _batch_reshape(ctx, source, out_shape[1:], target)
        return
    nhwc = ctx.unique_name(f"{target}_nhwc")
    _batch_reshape(ctx, source, out_shape[1:], nhwc)
    ctx.add_node("Transpose", [nhwc], [target], perm=list(_NHWC_TO_NCHW))


def _concatenation(ctx: _Context, op: tflite.Operator, inputs: list[int], outputs: list[int]) -> None:
    options = _options(op, tflite.ConcatenationOptions)
    rank = len(ctx.shape(outputs[0]))
    if any(len(ctx.shape(index)) != rank for index in inputs):
        raise ConversionError(f"CONCATENATION of {ctx.tensor_name(outputs[0])!r} mixes operand ranks")
    axis = _nchw_axis(options.Axis(), rank)
    _emit(ctx, "Concat", [ctx.value(index) for index in inputs], outputs[0], options.FusedActivationFunction(),
          axis=axis)


_BUILTIN_HANDLERS: dict[str, Handler] = {
    "ADD": _add,
    "AVERAGE_POOL_2D": _average_pool_2d,
    "CONCATENATION": _concatenation,
    "CONV_2D": _conv_2d,
    "DENSIFY": _densify,
    "DEPTH_TO_SPACE": _depth_to_space,
    "DEPTHWISE_CONV_2D": _depthwise_conv_2d,
    "DEQUANTIZE": _dequantize,
    "HARD_SWISH": _unary("HardSwish"),
    "LOGISTIC": _unary("Sigmoid"),
    "MAX_POOL_2D": _max_pool_2d,
    "MUL": _mul,
    "PAD": _pad,
    "PRELU": _prelu,
    "RELU": _unary("Relu"),
    "RESHAPE": _reshape,
    "RESIZE_BILINEAR": _resize_bilinear,
}
_CUSTOM_HANDLERS: dict[str, Handler] = {
    CUSTOM_TRANSPOSE_CONV: _transpose_conv_bias,
}
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_BUILTIN_HANDLERS)) + tuple(sorted(_CUSTOM_HANDLERS))


# --------------------------------------------------------------------------- driver


def _op_name(model: tflite.Model, op: tflite.Operator) -> str:
    """'CONV_2D' for builtins, the custom code (e.g. 'Convolution2DTransposeBias') for custom ops."""
    code = model.OperatorCodes(op.OpcodeIndex())
    # Schema >= 2.4 moved builtin codes > 127 to BuiltinCode(); older files only fill the deprecated field.
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return (code.CustomCode() or b"<unnamed custom op>").decode("utf-8", errors="replace")
    return BUILTIN_OPCODE2NAME.get(builtin, f"<builtin op {builtin}>")


def _handlers(model: tflite.Model, graph: tflite.SubGraph) -> list[Handler]:
    """One handler per operator, in graph order; every unsupported op is named in one error."""
    handlers: list[Handler] = []
    unsupported: dict[str, list[int]] = {}
    for position in range(graph.OperatorsLength()):
        op = graph.Operators(position)
        code = model.OperatorCodes(op.OpcodeIndex())
        is_custom = max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == tflite.BuiltinOperator.CUSTOM
        name = _op_name(model, op)
        handler = (_CUSTOM_HANDLERS if is_custom else _BUILTIN_HANDLERS).get(name)
        if handler is None:
            unsupported.setdefault(f"custom op {name}" if is_custom else f"op {name}", []).append(position)
        else:
            handlers.append(handler)
    if unsupported:
        found = "; ".join(f"TFLite {kind} (operator #{', #'.join(map(str, where))})"
                          for kind, where in unsupported.items())
        raise ConversionError(
            f"{found} is not supported by converters.tflite_to_onnx; supported ops: "
            f"{', '.join(SUPPORTED_OPS)}. Add a handler for it to the dispatch table or use a model without it"
        )
    return handlers


def _parse(tflite_bytes: bytes) -> tflite.Model:
    if len(tflite_bytes) < 8 or tflite_bytes[4:8] != b"TFL3":
        raise ConversionError(
            "input is not a TFLite flatbuffer (missing the 'TFL3' identifier); "
            "pass the bytes of a .tflite file"
        )
    model = tflite.Model.GetRootAs(tflite_bytes, 0)
    if model.SubgraphsLength() != 1:
        raise ConversionError(
            f"model has {model.SubgraphsLength()} subgraphs; only single-subgraph models are supported"
        )
    return model


_INDEX_VECTORS = {  # SparseIndexVector union member -> its table
    tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
    tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
    tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
}


@dataclass(frozen=True)
class SparseLevel:
    """One traversed dimension of a sparse tensor: DENSE with ``size`` entries per position of the level
    above, or SPARSE_CSR, where the position p of the level above holds ``indices[segments[p]:segments[p+1]]``."""

    size: int = 0
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None

    @property
    def dense(self) -> bool:
        return self.segments is None


def _index_vector(kind: int, table: object, what: str) -> np.ndarray:
    vector_type = _INDEX_VECTORS.get(kind)
    if vector_type is None or table is None:
        raise ConversionError(f"{what} is missing or of unknown SparseIndexVector type {kind}; the model is malformed")
    vector = vector_type()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64) if vector.ValuesLength() else np.zeros(0, np.int64)


def _sparsity(parameters: tflite.SparsityParameters, name: str) -> tuple[list[int], list[int], list[SparseLevel]]:
    """(traversal order, block map, levels) of a tensor's SparsityParameters."""
    levels = []
    for position in range(parameters.DimMetadataLength()):
        metadata = parameters.DimMetadata(position)
        if metadata.Format() == tflite.DimensionType.DENSE:
            levels.append(SparseLevel(size=metadata.DenseSize()))
            continue
        what = f"sparse constant {name!r} dimension {position}"
        levels.append(SparseLevel(
            segments=_index_vector(metadata.ArraySegmentsType(), metadata.ArraySegments(), f"{what} segments"),
            indices=_index_vector(metadata.ArrayIndicesType(), metadata.ArrayIndices(), f"{what} indices")))
    traversal = [int(d) for d in parameters.TraversalOrderAsNumpy()] if parameters.TraversalOrderLength() else []
    block_map = [int(d) for d in parameters.BlockMapAsNumpy()] if parameters.BlockMapLength() else []
    return traversal, block_map, levels


def densify(values: np.ndarray, shape: tuple[int, ...], traversal_order: list[int], block_map: list[int],
            levels: list[SparseLevel], name: str = "tensor") -> np.ndarray:
    """The dense array of shape ``shape`` behind TFLite's sparse encoding of ``values`` (in storage order).

    A tensor of rank n with k block dimensions is traversed over n + k dimensions: ``traversal_order`` lists
    them, the first n a permutation of the tensor's axes (each of size shape / block size when blocked), the
    last k of the block axes n .. n+k-1, where block axis n + i splits tensor axis ``block_map[i]``.
    ``levels[j]`` says how dimension ``traversal_order[j]`` is stored. Entries not stored are zero.
    """
    rank, blocks = len(shape), len(block_map)
    if (len(traversal_order) != rank + blocks or len(levels) != rank + blocks
            or sorted(traversal_order[:rank]) != list(range(rank))
            or sorted(traversal_order[rank:]) != list(range(rank, rank + blocks))
            or sorted(block_map) != sorted(set(block_map)) or not set(block_map) <= set(range(rank))):
        raise ConversionError(
            f"sparse constant {name!r} of shape {list(shape)}: traversal order {traversal_order}, block map "
            f"{block_map} and {len(levels)} dimension records do not describe a rank-{rank} tensor"
        )
    block_sizes = {axis: levels[traversal_order.index(rank + i)].size for i, axis in enumerate(block_map)}
    if any(not levels[traversal_order.index(rank + i)].dense for i in range(blocks)) or any(
            size < 1 or shape[axis] % size for axis, size in block_sizes.items()):
        raise ConversionError(f"sparse constant {name!r}: block sizes {block_sizes} must be dense and divide "
                              f"the shape {list(shape)}")
    extents = [shape[axis] // block_sizes.get(axis, 1) for axis in range(rank)] + [block_sizes[a] for a in block_map]
    positions = np.zeros(1, np.int64)  # position of each node of the level above in that level's storage
    coordinates = np.zeros((1, 0), np.int64)  # its coordinates along the dimensions traversed so far
    for level, axis in zip(levels, traversal_order, strict=True):
        if level.dense:
            if level.size != extents[axis]:
                raise ConversionError(f"sparse constant {name!r}: dense dimension {axis} has {level.size} "
                                      f"entries, expected {extents[axis]}")
            children = np.arange(level.size, dtype=np.int64)
            positions = (positions[:, None] * level.size + children).ravel()
            coordinates = np.concatenate([np.repeat(coordinates, level.size, axis=0),
                                          np.tile(children, len(coordinates))[:, None]], axis=1)
            continue
        segments, indices = level.segments, level.indices
        if (len(segments) < 1 or (positions.size and positions.max() + 1 >= len(segments)) or segments[0] != 0
                or np.any(np.diff(segments) < 0) or segments[-1] != len(indices)
                or np.any((indices < 0) | (indices >= extents[axis]))):
            raise ConversionError(f"sparse constant {name!r}: the CSR segments or indices of dimension {axis} "
                                  "are inconsistent (not increasing, too short, or out of range)")
        counts = segments[positions + 1] - segments[positions]
        firsts = np.repeat(segments[positions] - (np.cumsum(counts) - counts), counts)
        positions = np.arange(int(counts.sum()), dtype=np.int64) + firsts
        coordinates = np.concatenate([np.repeat(coordinates, counts, axis=0), indices[positions][:, None]], axis=1)
    if len(positions) != values.size:
        raise ConversionError(f"sparse constant {name!r} stores {values.size} values but its sparsity "
                              f"describes {len(positions)}")
    per_axis = coordinates[:, [traversal_order.index(axis) for axis in range(rank)]]
    for i, axis in enumerate(block_map):
        per_axis[:, axis] = per_axis[:, axis] * block_sizes[axis] + coordinates[:, traversal_order.index(rank + i)]
    dense = np.zeros(int(np.prod(shape)), values.dtype)
    dense[np.ravel_multi_index(tuple(per_axis.T), shape)] = values.ravel()
    return dense.reshape(shape)


def _load_constants(model: tflite.Model, graph: tflite.SubGraph) -> dict[int, np.ndarray]:
    """Every tensor backed by a non-empty buffer, as a numpy array in TFLite layout (sparse ones densified)."""
    constants: dict[int, np.ndarray] = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        buffer = model.Buffers(tensor.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            continue
        dtype = _TFLITE_DTYPES.get(tensor.Type())
        if dtype is None:
            raise ConversionError(
                f"constant {tensor.Name().decode()!r} has unsupported TFLite tensor type {tensor.Type()}"
            )
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        values = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype)
        sparsity = tensor.Sparsity()
        if sparsity is None:
            constants[index] = values.reshape(shape)
        else:
            name = tensor.Name().decode("utf-8", errors="replace")
            constants[index] = densify(values, shape, *_sparsity(sparsity, name), name=name)
    return constants


def _io_index(indices: list[int], graph: tflite.SubGraph, role: str) -> int:
    if len(indices) != 1:
        raise ConversionError(f"model has {len(indices)} {role}s; the converter expects exactly one")
    index = indices[0]
    tensor = graph.Tensors(index)
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    if len(shape) != 4 or shape[0] != 1 or tensor.Type() != tflite.TensorType.FLOAT32:
        raise ConversionError(
            f"model {role} {tensor.Name().decode()!r} is {shape} of TFLite type {tensor.Type()}; "
            "expected a float32 NHWC tensor with batch 1"
        )
    return index


@dataclass(frozen=True)
class _NamedOutput:
    """One graph output of a multi-output conversion: TFLite tensor -> ONNX ``name`` ``[batch, *dims]``."""

    index: int
    name: str
    dims: tuple[int, ...]


def _named_outputs(graph: tflite.SubGraph, outputs: Mapping[str, tuple[int, ...]]) -> list[_NamedOutput]:
    """Pair the TFLite graph's outputs, in order, with the requested ONNX names and dims, checking each."""
    indices = [graph.Outputs(i) for i in range(graph.OutputsLength())]
    if len(indices) != len(outputs):
        raise ConversionError(
            f"the model has {len(indices)} outputs but {len(outputs)} output names were given "
            f"({list(outputs)}); give one name and shape per TFLite output, in the model's output order"
        )
    if len(set(indices)) != len(indices):
        raise ConversionError("the model lists the same tensor twice among its outputs; it is malformed")
    named = []
    for index, (name, dims) in zip(indices, outputs.items(), strict=True):
        tensor = graph.Tensors(index)
        label = tensor.Name().decode("utf-8", errors="replace")
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        if not (name.isidentifier() and not keyword.iskeyword(name)) or name == INPUT_NAME:
            raise ConversionError(f"output name {name!r} must be an identifier other than {INPUT_NAME!r}")
        if not (dims and all(type(d) is int and d > 0 for d in dims)):
            raise ConversionError(f"output {name!r}: dims {dims!r} must be a non-empty list of positive integers")
        if tensor.Type() != tflite.TensorType.FLOAT32 or not shape or shape[0] != 1:
            raise ConversionError(
                f"model output {label!r} is {shape} of TFLite type {tensor.Type()}; expected float32 with batch 1"
            )
        if int(np.prod(shape)) != int(np.prod(dims)):
            raise ConversionError(
                f"output {name!r} [batch, {', '.join(map(str, dims))}] does not fit TFLite output {label!r} "
                f"{list(shape)}: the element counts differ; check the names' order and the dims"
            )
        named.append(_NamedOutput(index, name, tuple(dims)))
    return named


def _nchw_value_info(name: str, nhwc_shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    _, height, width, channels = nhwc_shape
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIM, channels, height, width])


def _run_handlers(ctx: _Context, model: tflite.Model) -> None:
    for position, handler in enumerate(_handlers(model, ctx.graph)):
        op = ctx.graph.Operators(position)
        inputs = [op.Inputs(j) for j in range(op.InputsLength())]
        outputs = [op.Outputs(j) for j in range(op.OutputsLength())]
        handler(ctx, op, inputs, outputs)


def _convert_graph(model: tflite.Model, outputs: Mapping[str, tuple[int, ...]] | None) -> onnx.GraphProto:
    graph = model.Subgraphs(0)
    input_index = _io_index([graph.Inputs(i) for i in range(graph.InputsLength())], graph, "input")
    if outputs is None:
        output_index = _io_index([graph.Outputs(i) for i in range(graph.OutputsLength())], graph, "output")
        named = [_NamedOutput(output_index, OUTPUT_NAME, ())]
        direct = {output_index: OUTPUT_NAME}
    else:
        named = _named_outputs(graph, outputs)
        # An output already in TFLite layout and of the requested shape keeps its producer; others are reshaped.
        direct = {out.index: out.name for out in named
                  if len(graph.Tensors(out.index).ShapeAsNumpy()) != 4
                  and tuple(graph.Tensors(out.index).ShapeAsNumpy()) == (1, *out.dims)}
    ctx = _Context(graph=graph, input_index=input_index, output_names=dict(direct),
                   constants=_load_constants(model, graph))
    for name in {out.name for out in named} - set(direct.values()):
        ctx.unique_name(name)  # reserved for the reshape that makes it below
    _run_handlers(ctx, model)
    for out in named:
        if not ctx.has_value(out.index):
            raise ConversionError(
                f"no operator produces the model output {ctx.tensor_name(out.index)!r}; the model is malformed"
            )
    if outputs is None:
        value_infos = [_nchw_value_info(OUTPUT_NAME, ctx.shape(named[0].index))]
    else:
        for out in named:
            if out.index not in direct:
                _batch_reshape(ctx, _to_tflite_layout(ctx, out.index), out.dims, out.name)
        value_infos = [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, [BATCH_DIM, *out.dims])
                       for out in named]
    return helper.make_graph(
        ctx.nodes,
        "tflite_converted",
        inputs=[_nchw_value_info(INPUT_NAME, ctx.shape(ctx.input_index))],
        outputs=value_infos,
        initializer=ctx.initializers,
    )


def convert_tflite(tflite_bytes: bytes, outputs: Mapping[str, tuple[int, ...]] | None = None) -> onnx.ModelProto:
    """Convert a single-input float TFLite image model to NCHW ONNX.

    The ONNX model takes ``image`` float32 ``[batch, C, H, W]``. Without ``outputs`` the
    model must have one rank-4 output, returned as ``alpha`` float32 ``[batch, C_out, H, W]``.
    With ``outputs`` (ONNX name -> dims without the batch, one per TFLite output, in the
    model's output order) each output is returned under its name as ``[batch, *dims]`` in
    TFLite's element order (see the module docstring).
    Raises ConversionError for any unsupported op, tensor type, geometry or output spec.
    """
    model = _parse(tflite_bytes)
    onnx_model = helper.make_model(
        _convert_graph(model, outputs),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="imageserve.converters.tflite_to_onnx",
        ir_version=IR_VERSION,
    )
    description = model.Description()
    if description:
        onnx_model.doc_string = f"Converted from TFLite model {description.decode('utf-8', errors='replace')}"
    try:
        onnx.checker.check_model(onnx_model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ConversionError(f"converted model fails onnx.checker: {error}") from error
    return onnx_model
