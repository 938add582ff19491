"""Unit tests of the hand-written TFLite -> ONNX converter (no MediaPipe needed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tflite

from converters.build import convert
from converters.catalog import get_source
from converters.errors import ConversionError
from converters.fetch import fetch_source
from converters.tflite_to_onnx import INPUT_NAME, OPSET, OUTPUT_NAME, convert_tflite

SIZE = 256


@pytest.fixture(scope="module")
def converted() -> onnx.ModelProto:
    return convert_tflite(fetch_source(get_source("matte_fast")).read_bytes())


@pytest.fixture(scope="module")
def session(converted: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(converted.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _tiny_tflite(op_code: int, custom_code: str | None = None) -> bytes:
    """A one-operator TFLite model: float32 [1, 4, 4, 1] -> op -> float32 [1, 4, 4, 1]."""
    builder = flatbuffers.Builder(1024)

    def tensor(name: str) -> int:
        name_offset = builder.CreateString(name)
        shape = builder.CreateNumpyVector(np.array([1, 4, 4, 1], np.int32))
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape)
        tflite.TensorAddType(builder, tflite.TensorType.FLOAT32)
        tflite.TensorAddBuffer(builder, 0)
        tflite.TensorAddName(builder, name_offset)
        return tflite.TensorEnd(builder)

    def vector(start: object, items: list[int]) -> int:
        start(builder, len(items))
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    tensors = [tensor("x"), tensor("y")]
    op_inputs = builder.CreateNumpyVector(np.array([0], np.int32))
    op_outputs = builder.CreateNumpyVector(np.array([1], np.int32))
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, 0)
    tflite.OperatorAddInputs(builder, op_inputs)
    tflite.OperatorAddOutputs(builder, op_outputs)
    operator = tflite.OperatorEnd(builder)

    graph_inputs = builder.CreateNumpyVector(np.array([0], np.int32))
    graph_outputs = builder.CreateNumpyVector(np.array([1], np.int32))
    tensor_vector = vector(tflite.SubGraphStartTensorsVector, tensors)
    operator_vector = vector(tflite.SubGraphStartOperatorsVector, [operator])
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, graph_inputs)
    tflite.SubGraphAddOutputs(builder, graph_outputs)
    tflite.SubGraphAddOperators(builder, operator_vector)
    subgraph = tflite.SubGraphEnd(builder)

    custom = builder.CreateString(custom_code) if custom_code else None
    tflite.OperatorCodeStart(builder)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(op_code, 127))
    tflite.OperatorCodeAddBuiltinCode(builder, op_code)
    if custom is not None:
        tflite.OperatorCodeAddCustomCode(builder, custom)
    tflite.OperatorCodeAddVersion(builder, 1)
    op_code_table = tflite.OperatorCodeEnd(builder)

    tflite.BufferStart(builder)
    empty_buffer = tflite.BufferEnd(builder)

    op_codes = vector(tflite.ModelStartOperatorCodesVector, [op_code_table])
    subgraphs = vector(tflite.ModelStartSubgraphsVector, [subgraph])
    buffers = vector(tflite.ModelStartBuffersVector, [empty_buffer])
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, op_codes)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddBuffers(builder, buffers)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_input_and_output_contract(converted: onnx.ModelProto) -> None:
    (image,) = converted.graph.input
    (alpha,) = converted.graph.output
    assert image.name == INPUT_NAME == "image"
    assert alpha.name == OUTPUT_NAME == "alpha"
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert alpha.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == ["batch", 3, SIZE, SIZE]
    assert _dims(alpha) == ["batch", 1, SIZE, SIZE]


def test_opset_checker_and_float32_weights(converted: onnx.ModelProto) -> None:
    assert [(o.domain, o.version) for o in converted.opset_import] == [("", OPSET)]
    assert OPSET == 17
    onnx.checker.check_model(converted, full_check=True)
    # fp16 weights were dequantized at conversion time; the graph is NCHW throughout.
    assert {init.data_type for init in converted.graph.initializer} == {onnx.TensorProto.FLOAT}
    assert "Transpose" not in {node.op_type for node in converted.graph.node}
    inferred = onnx.shape_inference.infer_shapes(converted, strict_mode=True)
    assert _dims(inferred.graph.output[0]) == ["batch", 1, SIZE, SIZE]


def test_batch_of_three_identical_inputs_gives_identical_outputs(session: ort.InferenceSession) -> None:
    one = np.random.default_rng(7).random((1, 3, SIZE, SIZE), dtype=np.float32)
    (alpha,) = session.run(["alpha"], {"image": np.repeat(one, 3, axis=0)})
    assert alpha.shape == (3, 1, SIZE, SIZE) and alpha.dtype == np.float32
    assert np.all((alpha >= 0) & (alpha <= 1))
    np.testing.assert_allclose(alpha[1], alpha[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(alpha[2], alpha[0], rtol=0, atol=1e-6)
    (single,) = session.run(["alpha"], {"image": one})
    np.testing.assert_allclose(single[0], alpha[0], rtol=0, atol=1e-6)


def test_hand_built_flatbuffer_with_a_supported_op_converts() -> None:
    # Guards the builder used below: the same flatbuffer with LOGISTIC is valid and converts.
    model = convert_tflite(_tiny_tflite(tflite.BuiltinOperator.LOGISTIC))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.linspace(-4, 4, 2 * 16, dtype=np.float32).reshape(2, 1, 4, 4)
    (y,) = session.run(None, {"image": x})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-6, atol=1e-6)


def test_unsupported_builtin_op_is_named() -> None:
    with pytest.raises(ConversionError, match=r"FLOOR .*not supported"):
        convert_tflite(_tiny_tflite(tflite.BuiltinOperator.FLOOR))


def test_unsupported_custom_op_is_named() -> None:
    with pytest.raises(ConversionError, match=r"custom op MyCustomOp .*not supported"):
        convert_tflite(_tiny_tflite(tflite.BuiltinOperator.CUSTOM, custom_code="MyCustomOp"))


def test_bytes_that_are_not_tflite_are_rejected() -> None:
    with pytest.raises(ConversionError, match="not a TFLite flatbuffer"):
        convert_tflite(b"\x08\x07onnx-not-tflite")


# --------------------------------------------------------------------------- multi-op graphs (face model ops)


@dataclass
class _Op:
    """One operator of a hand-built graph: builtin code, tensor indices, options (type, writer)."""

    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[int, Callable[[flatbuffers.Builder], int]] | None = None


def _pool_options(kernel: int, stride: int, padding: int) -> tuple[int, Callable[[flatbuffers.Builder], int]]:
    def write(builder: flatbuffers.Builder) -> int:
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, padding)
        tflite.Pool2DOptionsAddStrideW(builder, stride)
        tflite.Pool2DOptionsAddStrideH(builder, stride)
        tflite.Pool2DOptionsAddFilterWidth(builder, kernel)
        tflite.Pool2DOptionsAddFilterHeight(builder, kernel)
        return tflite.Pool2DOptionsEnd(builder)

    return tflite.BuiltinOptions.Pool2DOptions, write


def _concat_options(axis: int) -> tuple[int, Callable[[flatbuffers.Builder], int]]:
    def write(builder: flatbuffers.Builder) -> int:
        tflite.ConcatenationOptionsStart(builder)
        tflite.ConcatenationOptionsAddAxis(builder, axis)
        return tflite.ConcatenationOptionsEnd(builder)

    return tflite.BuiltinOptions.ConcatenationOptions, write


def _graph_tflite(shapes: list[tuple[int, ...]], constants: dict[int, np.ndarray], ops: list[_Op],
                  outputs: list[int], sparsity: dict[int, Callable[[flatbuffers.Builder], int]] | None = None) -> bytes:
    """A TFLite flatbuffer: tensor ``i`` has shape ``shapes[i]`` (float32 unless a constant says otherwise),
    tensor 0 is the input, ``outputs`` the graph outputs in order. ``sparsity`` writes the SparsityParameters of
    sparse constants, whose ``constants`` entry is then the stored values only."""
    builder = flatbuffers.Builder(4096)
    types = {np.dtype("float32"): tflite.TensorType.FLOAT32, np.dtype("int32"): tflite.TensorType.INT32,
             np.dtype("float16"): tflite.TensorType.FLOAT16}
    sparsity = sparsity or {}

    def vector(start: Callable[[flatbuffers.Builder, int], None], items: list[int]) -> int:
        start(builder, len(items))
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    buffers = []
    for index in range(len(shapes) + 1):  # buffer 0 is the empty one, buffer i + 1 belongs to tensor i
        data = constants.get(index - 1)
        payload = builder.CreateNumpyVector(np.frombuffer(data.tobytes(), np.uint8)) if data is not None else None
        tflite.BufferStart(builder)
        if payload is not None:
            tflite.BufferAddData(builder, payload)
        buffers.append(tflite.BufferEnd(builder))
    tensors = []
    for index, shape in enumerate(shapes):
        name = builder.CreateString(f"t{index}")
        shape_vector = builder.CreateNumpyVector(np.array(shape, np.int32))
        sparse = sparsity[index](builder) if index in sparsity else None
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape_vector)
        if sparse is not None:
            tflite.TensorAddSparsity(builder, sparse)
        dtype = constants[index].dtype if index in constants else np.dtype("float32")
        tflite.TensorAddType(builder, types[dtype])
        tflite.TensorAddBuffer(builder, index + 1 if index in constants else 0)
        tflite.TensorAddName(builder, name)
        tensors.append(tflite.TensorEnd(builder))
    codes = sorted({op.code for op in ops})
    operators = []
    for op in ops:
        op_inputs = builder.CreateNumpyVector(np.array(op.inputs, np.int32))
        op_outputs = builder.CreateNumpyVector(np.array(op.outputs, np.int32))
        options = op.options[1](builder) if op.options else None
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, codes.index(op.code))
        tflite.OperatorAddInputs(builder, op_inputs)
        tflite.OperatorAddOutputs(builder, op_outputs)
        if op.options:
            tflite.OperatorAddBuiltinOptionsType(builder, op.options[0])
            tflite.OperatorAddBuiltinOptions(builder, options)
        operators.append(tflite.OperatorEnd(builder))
    graph_inputs = builder.CreateNumpyVector(np.array([0], np.int32))
    graph_outputs = builder.CreateNumpyVector(np.array(outputs, np.int32))
    tensor_vector = vector(tflite.SubGraphStartTensorsVector, tensors)
    operator_vector = vector(tflite.SubGraphStartOperatorsVector, operators)
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, graph_inputs)
    tflite.SubGraphAddOutputs(builder, graph_outputs)
    tflite.SubGraphAddOperators(builder, operator_vector)
    subgraph = tflite.SubGraphEnd(builder)
    code_tables = []
    for code in codes:
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, code)
        tflite.OperatorCodeAddVersion(builder, 1)
        code_tables.append(tflite.OperatorCodeEnd(builder))
    op_codes = vector(tflite.ModelStartOperatorCodesVector, code_tables)
    subgraphs = vector(tflite.ModelStartSubgraphsVector, [subgraph])
    buffer_vector = vector(tflite.ModelStartBuffersVector, buffers)
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, op_codes)
    tflite.ModelAddSubgraphs(builder, subgraphs)
    tflite.ModelAddBuffers(builder, buffer_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


OP = tflite.BuiltinOperator
CHANNEL_PAD = np.array([[0, 0], [0, 0], [0, 0], [0, 2]], np.int32)  # 3 -> 5 channels, zeros at the end
SLOPE = np.array([[[0.1, -0.5, 2.0, 0.25, 0.0]]], np.float32)  # PRELU alpha [1, 1, C], as MediaPipe stores it


def _head_tflite() -> bytes:
    """A BlazeFace-like head on a [1, 4, 4, 3] input, with every new op and three outputs:

    a: PAD channels -> MAX_POOL 2x2/2 VALID -> PRELU            = t4 [1, 2, 2, 5]
    b: MAX_POOL 3x3/2 SAME -> PAD channels                      = t7 [1, 2, 2, 5]
    joined = CONCATENATION(RESHAPE a [1, 4, 5], RESHAPE b [1, 4, 5], axis -2) = t10 [1, 8, 5]
    stacked = CONCATENATION(a, b, axis 3)                       = t11 [1, 2, 2, 10]
    pooled = MAX_POOL 2x2/2 VALID of RESHAPE joined [1, 2, 4, 5] = t13 [1, 1, 2, 5]
    """
    shapes = [(1, 4, 4, 3), (4, 2), (1, 4, 4, 5), (1, 2, 2, 5), (1, 2, 2, 5), (1, 2, 2, 3), (1, 1, 5),
              (1, 2, 2, 5), (1, 4, 5), (1, 4, 5), (1, 8, 5), (1, 2, 2, 10), (1, 2, 4, 5), (1, 1, 2, 5)]
    ops = [
        _Op(OP.PAD, [0, 1], [2]),
        _Op(OP.MAX_POOL_2D, [2], [3], _pool_options(2, 2, tflite.Padding.VALID)),
        _Op(OP.PRELU, [3, 6], [4]),
        _Op(OP.MAX_POOL_2D, [0], [5], _pool_options(3, 2, tflite.Padding.SAME)),
        _Op(OP.PAD, [5, 1], [7]),
        _Op(OP.RESHAPE, [4], [8]),
        _Op(OP.RESHAPE, [7], [9]),
        _Op(OP.CONCATENATION, [8, 9], [10], _concat_options(-2)),
        _Op(OP.CONCATENATION, [4, 7], [11], _concat_options(3)),
        _Op(OP.RESHAPE, [10], [12]),
        _Op(OP.MAX_POOL_2D, [12], [13], _pool_options(2, 2, tflite.Padding.VALID)),
    ]
    return _graph_tflite(shapes, {1: CHANNEL_PAD, 6: SLOPE}, ops, outputs=[10, 11, 13])


def _max_pool(x: np.ndarray, kernel: int, stride: int, pad: tuple[int, int] = (0, 0)) -> np.ndarray:
    """NHWC max pool; ``pad`` = (before, after) of -inf on both spatial axes."""
    x = np.pad(x, [(0, 0), pad, pad, (0, 0)], constant_values=-np.inf)
    rows, cols = ((size - kernel) // stride + 1 for size in x.shape[1:3])
    return np.stack([np.stack([x[:, i * stride:i * stride + kernel, j * stride:j * stride + kernel].max(axis=(1, 2))
                               for j in range(cols)], axis=1) for i in range(rows)], axis=1)


def _head_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's outputs in numpy, NHWC (TFLite's layout) with any batch."""
    n = len(x)
    a = _max_pool(np.pad(x, CHANNEL_PAD), 2, 2)
    a = np.where(a >= 0, a, SLOPE * a)
    b = np.pad(_max_pool(x, 3, 2, pad=(0, 1)), CHANNEL_PAD)  # SAME: 4 -> 2 with 3x3/2 pads 0 before, 1 after
    joined = np.concatenate([a.reshape(n, 4, 5), b.reshape(n, 4, 5)], axis=1)
    stacked = np.concatenate([a, b], axis=3)
    pooled = _max_pool(joined.reshape(n, 2, 4, 5), 2, 2)
    return joined, stacked, pooled


HEAD_OUTPUTS = {"joined": (8, 5), "stacked": (2, 2, 10), "pooled": (10,)}


def test_pad_max_pool_prelu_reshape_and_concatenation_match_tflite_semantics() -> None:
    model = convert_tflite(_head_tflite(), HEAD_OUTPUTS)
    assert [o.name for o in model.graph.output] == list(HEAD_OUTPUTS)
    assert [_dims(o) for o in model.graph.output] == [["batch", 8, 5], ["batch", 2, 2, 10], ["batch", 10]]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).normal(size=(2, 4, 4, 3)).astype(np.float32)  # negatives exercise PRELU
    joined, stacked, pooled = session.run(None, {"image": x.transpose(0, 3, 1, 2)})
    want_joined, want_stacked, want_pooled = _head_reference(x)
    np.testing.assert_allclose(joined, want_joined, rtol=0, atol=1e-6)
    np.testing.assert_allclose(stacked, want_stacked, rtol=0, atol=1e-6)  # TFLite's NHWC order, not NCHW
    np.testing.assert_allclose(pooled, want_pooled.reshape(2, 10), rtol=0, atol=1e-6)


def test_without_output_names_a_multi_output_model_is_refused() -> None:
    with pytest.raises(ConversionError, match="model has 3 outputs; the converter expects exactly one"):
        convert_tflite(_head_tflite())


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"joined": (8, 5), "stacked": (2, 2, 10)}, "the model has 3 outputs but 2 output names were given"),
        ({**HEAD_OUTPUTS, "pooled": (11,)}, r"output 'pooled' \[batch, 11\] does not fit TFLite output 't13' "
                                            r"\[1, 1, 2, 5\]: the element counts differ"),
        ({"joined": (8, 5), "image": (40,), "pooled": (10,)}, "output name 'image' must be an identifier other than"),
        ({"joined": (8, 5), "2nd": (40,), "pooled": (10,)}, "output name '2nd' must be an identifier"),
        ({"joined": (8, 5), "stacked": (), "pooled": (10,)}, r"output 'stacked': dims \(\) must be a non-empty"),
        ({"joined": (8, -5), "stacked": (40,), "pooled": (10,)}, r"dims \(8, -5\) must be a non-empty list"),
    ],
)
def test_bad_output_specs_say_what_is_wrong(outputs: dict[str, tuple[int, ...]], message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        convert_tflite(_head_tflite(), outputs)


def test_padding_the_batch_and_reshaping_across_it_are_refused() -> None:
    batch_pad = np.array([[1, 0], [0, 0], [0, 0], [0, 0]], np.int32)
    # The output is declared with batch 1 so that the graph's output checks pass and the PAD handler decides.
    model = _graph_tflite([(1, 4, 4, 3), (4, 2), (1, 4, 4, 3)], {1: batch_pad}, [_Op(OP.PAD, [0, 1], [2])], [2])
    with pytest.raises(ConversionError, match="PAD of 't2' pads the batch axis"):
        convert_tflite(model, {"padded": (48,)})
    model = _graph_tflite([(1, 4, 4, 3), (4, 12), (1, 48)], {}, [_Op(OP.RESHAPE, [0], [1]), _Op(OP.RESHAPE, [1], [2])],
                          [2])
    with pytest.raises(ConversionError, match=r"RESHAPE \(1, 4, 4, 3\) -> \(4, 12\) .* keep the batch of 1"):
        convert_tflite(model, {"flat": (48,)})


@pytest.mark.parametrize("name", ["face_detect", "face_landmarks", "iris_landmarks"])
def test_the_face_models_convert_with_the_catalogs_output_names(name: str) -> None:
    source = get_source(name)
    model = convert(source, fetch_source(source))
    assert [o.name for o in model.graph.output] == list(source.output_shapes)
    assert [_dims(o) for o in model.graph.output] == [["batch", *dims] for dims in source.output_shapes.values()]
    assert _dims(model.graph.input[0]) == ["batch", 3, *source.input_size]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    one = np.random.default_rng(11).random((1, 3, *source.input_size), dtype=np.float32)
    batched = session.run(None, {"image": np.concatenate([one, one[:, ::-1], one])})  # RGB -> BGR in the middle
    singles = session.run(None, {"image": one})
    for tensor, single in zip(batched, singles, strict=True):
        np.testing.assert_allclose(tensor[0], single[0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(tensor[2], single[0], rtol=0, atol=1e-5)
        assert np.abs(tensor[1] - single[0]).max() > 1e-4  # the other image of the batch gives other numbers


# --------------------------------------------------------------------------- sparse weights and DEPTH_TO_SPACE

_INDEX_TYPES = {  # numpy dtype of a sparse index vector -> (union type, the table's Start, AddValues, End)
    np.dtype("int32"): (tflite.SparseIndexVector.Int32Vector, tflite.Int32VectorStart, tflite.Int32VectorAddValues,
                        tflite.Int32VectorEnd),
    np.dtype("uint16"): (tflite.SparseIndexVector.Uint16Vector, tflite.Uint16VectorStart,
                         tflite.Uint16VectorAddValues, tflite.Uint16VectorEnd),
    np.dtype("uint8"): (tflite.SparseIndexVector.Uint8Vector, tflite.Uint8VectorStart, tflite.Uint8VectorAddValues,
                        tflite.Uint8VectorEnd),
}


@dataclass(frozen=True)
class _Encoding:
    """How a dense constant is stored sparsely: TFLite's traversal order, block map and per-level format."""

    traversal_order: list[int]
    dense_levels: list[bool]  # per traversed dimension: DENSE (True) or SPARSE_CSR
    block_map: tuple[int, ...] = ()
    block_sizes: tuple[int, ...] = ()
    index_dtype: str = "uint8"


def _encode(dense: np.ndarray, encoding: _Encoding) -> tuple[np.ndarray, list[tuple[int, list[int], list[int]]]]:
    """TFLite's sparse storage of ``dense``, walked depth first: the stored values and per level (dense size,
    segments, indices); a CSR level keeps the entries whose sub-tensor holds a non-zero."""
    rank = dense.ndim
    split = []  # blocked axis a becomes (a // block, a % block); blocks follow the tensor's own axes
    for axis in range(rank):
        size = encoding.block_sizes[encoding.block_map.index(axis)] if axis in encoding.block_map else 1
        split += [dense.shape[axis] // size, size]
    expanded = dense.reshape(split)
    order = [2 * axis for axis in range(rank)] + [2 * axis + 1 for axis in encoding.block_map]
    unblocked = [2 * axis + 1 for axis in range(rank) if axis not in encoding.block_map]  # of size 1
    tree = expanded.transpose(order + unblocked).reshape([expanded.shape[i] for i in order])
    tree = tree.transpose(encoding.traversal_order)
    values: list[np.ndarray] = []
    segments: list[list[int]] = [[0] for _ in encoding.dense_levels]
    indices: list[list[int]] = [[] for _ in encoding.dense_levels]

    def walk(node: np.ndarray, level: int) -> None:
        if level == len(encoding.dense_levels):
            values.append(node)
            return
        kept = range(len(node)) if encoding.dense_levels[level] else [i for i in range(len(node)) if node[i].any()]
        for i in kept:
            indices[level].append(i)
            walk(node[i], level + 1)
        segments[level].append(len(indices[level]))

    walk(tree, 0)
    levels = [(tree.shape[level], segments[level], indices[level]) for level in range(len(encoding.dense_levels))]
    return np.array(values, dense.dtype), levels


def _sparsity_writer(levels: list[tuple[int, list[int], list[int]]],
                     encoding: _Encoding) -> Callable[[flatbuffers.Builder], int]:
    def index_vector(builder: flatbuffers.Builder, items: list[int]) -> tuple[int, int]:
        kind, start, add_values, end = _INDEX_TYPES[np.dtype(encoding.index_dtype)]
        values = builder.CreateNumpyVector(np.array(items, encoding.index_dtype))
        start(builder)
        add_values(builder, values)
        return kind, end(builder)

    def write(builder: flatbuffers.Builder) -> int:
        records = []
        for (size, segments, indices), dense in zip(levels, encoding.dense_levels, strict=True):
            vectors = None if dense else (index_vector(builder, segments), index_vector(builder, indices))
            tflite.DimensionMetadataStart(builder)
            tflite.DimensionMetadataAddFormat(builder, tflite.DimensionType.DENSE if dense
                                              else tflite.DimensionType.SPARSE_CSR)
            if vectors is None:
                tflite.DimensionMetadataAddDenseSize(builder, size)
            else:
                (segment_kind, segment_table), (index_kind, index_table) = vectors
                tflite.DimensionMetadataAddArraySegmentsType(builder, segment_kind)
                tflite.DimensionMetadataAddArraySegments(builder, segment_table)
                tflite.DimensionMetadataAddArrayIndicesType(builder, index_kind)
                tflite.DimensionMetadataAddArrayIndices(builder, index_table)
            records.append(tflite.DimensionMetadataEnd(builder))
        traversal = builder.CreateNumpyVector(np.array(encoding.traversal_order, np.int32))
        block_map = builder.CreateNumpyVector(np.array(encoding.block_map, np.int32)) if encoding.block_map else None
        tflite.SparsityParametersStartDimMetadataVector(builder, len(records))
        for record in reversed(records):
            builder.PrependUOffsetTRelative(record)
        metadata = builder.EndVector()
        tflite.SparsityParametersStart(builder)
        tflite.SparsityParametersAddTraversalOrder(builder, traversal)
        if block_map is not None:
            tflite.SparsityParametersAddBlockMap(builder, block_map)
        tflite.SparsityParametersAddDimMetadata(builder, metadata)
        return tflite.SparsityParametersEnd(builder)

    return write


def _conv_options() -> tuple[int, Callable[[flatbuffers.Builder], int]]:
    def write(builder: flatbuffers.Builder) -> int:
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, tflite.Padding.VALID)
        tflite.Conv2DOptionsAddStrideW(builder, 1)
        tflite.Conv2DOptionsAddStrideH(builder, 1)
        return tflite.Conv2DOptionsEnd(builder)

    return tflite.BuiltinOptions.Conv2DOptions, write


def _sparse_kernel(out_channels: int, in_channels: int, seed: int) -> np.ndarray:
    """A 1x1 conv kernel [O, 1, 1, I] with about half its weights, and some whole rows and blocks, zero."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(out_channels, 1, 1, in_channels)).astype(np.float32)
    kernel[rng.random(kernel.shape) < 0.5] = 0
    kernel[1] = 0  # an output channel with no weight at all
    kernel[..., :4][2] = 0  # and a zero block of 4 input channels
    return kernel


def _sparse_conv_tflite(kernel: np.ndarray, encoding: _Encoding, fp16: bool) -> bytes:
    """input [1, 3, 3, I] -> CONV_2D 1x1 whose kernel is DENSIFY (then DEQUANTIZE when fp16) of a sparse
    constant stored with ``encoding``, as MediaPipe's full-range face detector stores its weights."""
    stored = kernel.astype(np.float16) if fp16 else kernel
    values, levels = _encode(stored, encoding)
    out_channels, _, _, in_channels = kernel.shape
    shapes = [(1, 3, 3, in_channels), kernel.shape, kernel.shape, kernel.shape, (1, 3, 3, out_channels)]
    ops = [_Op(OP.DENSIFY, [1], [2])]
    if fp16:
        ops.append(_Op(OP.DEQUANTIZE, [2], [3]))
    ops.append(_Op(OP.CONV_2D, [0, 3 if fp16 else 2, -1], [4], _conv_options()))
    return _graph_tflite(shapes, {1: values}, ops, outputs=[4], sparsity={1: _sparsity_writer(levels, encoding)})


ENCODINGS = {
    # MediaPipe's face_detection_full_range_sparse: row-major, the input channels of each filter in CSR
    "mediapipe_csr_last": (_Encoding([0, 1, 2, 3], [True, True, True, False]), True),
    # axes permuted: per input channel, the output channels that use it, then the (1 x 1) rest dense
    "permuted": (_Encoding([3, 0, 1, 2], [True, False, True, True], index_dtype="int32"), False),
    # blocks of 4 input channels: CSR over the blocks of each filter, each kept block dense
    "blocks_of_4": (_Encoding([0, 1, 2, 3, 4], [True, True, True, False, True], block_map=(3,), block_sizes=(4,),
                              index_dtype="uint16"), False),
}


@pytest.mark.parametrize("label", list(ENCODINGS))
def test_sparse_kernels_are_densified_in_tflites_layout(label: str) -> None:
    encoding, fp16 = ENCODINGS[label]
    kernel = _sparse_kernel(6, 8, seed=len(label))
    values, _ = _encode(kernel, encoding)
    assert 0 < values.size < kernel.size  # the storage really is sparse
    model = convert_tflite(_sparse_conv_tflite(kernel, encoding, fp16))
    assert "DENSIFY" not in {node.op_type for node in model.graph.node}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).normal(size=(2, 3, 3, 8)).astype(np.float32)
    (y,) = session.run(None, {"image": x.transpose(0, 3, 1, 2)})
    weights = kernel.astype(np.float16).astype(np.float32) if fp16 else kernel
    want = np.einsum("nhwi,oi->nhwo", x, weights[:, 0, 0, :])
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1), want, rtol=1e-5, atol=1e-5)


def test_sparse_storage_that_does_not_add_up_is_refused() -> None:
    encoding, _ = ENCODINGS["mediapipe_csr_last"]
    kernel = _sparse_kernel(6, 8, seed=1)
    values, levels = _encode(kernel, encoding)
    shapes = [(1, 3, 3, 8), kernel.shape, kernel.shape, (1, 3, 3, 6)]
    ops = [_Op(OP.DENSIFY, [1], [2]), _Op(OP.CONV_2D, [0, 2, -1], [3], _conv_options())]
    model = _graph_tflite(shapes, {1: values[:-1]}, ops, [3], sparsity={1: _sparsity_writer(levels, encoding)})
    with pytest.raises(ConversionError, match=rf"sparse constant 't1' stores {values.size - 1} values but its "
                                              rf"sparsity describes {values.size}"):
        convert_tflite(model)
    levels[3] = (levels[3][0], levels[3][1], [index + 8 for index in levels[3][2]])  # indices past the 8 channels
    model = _graph_tflite(shapes, {1: values}, ops, [3], sparsity={1: _sparsity_writer(levels, encoding)})
    with pytest.raises(ConversionError, match="CSR segments or indices of dimension 3 are inconsistent"):
        convert_tflite(model)


def _depth_to_space_options(block: int) -> tuple[int, Callable[[flatbuffers.Builder], int]]:
    def write(builder: flatbuffers.Builder) -> int:
        tflite.DepthToSpaceOptionsStart(builder)
        tflite.DepthToSpaceOptionsAddBlockSize(builder, block)
        return tflite.DepthToSpaceOptionsEnd(builder)

    return tflite.BuiltinOptions.DepthToSpaceOptions, write


def test_depth_to_space_reads_the_depth_as_tflite_does() -> None:
    block, channels = 2, 3
    model = convert_tflite(_graph_tflite([(1, 2, 3, block * block * channels), (1, 4, 6, channels)], {},
                                         [_Op(OP.DEPTH_TO_SPACE, [0], [1], _depth_to_space_options(block))], [1]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(2 * 2 * 3 * 12, dtype=np.float32).reshape(2, 2, 3, 12)
    (y,) = session.run(None, {"image": x.transpose(0, 3, 1, 2)})
    # TFLite: output[n, h * b + i, w * b + j, c] = input[n, h, w, (i * b + j) * channels + c]
    want = x.reshape(2, 2, 3, block, block, channels).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, 6, channels)
    channel_first = x.reshape(2, 2, 3, channels, block, block).transpose(0, 1, 4, 2, 5, 3).reshape(2, 4, 6, channels)
    assert not np.array_equal(want, channel_first)  # the input tells DCR from CRD apart
    np.testing.assert_array_equal(y.transpose(0, 2, 3, 1), want)


def test_depth_to_space_of_channels_that_do_not_split_is_refused() -> None:
    model = _graph_tflite([(1, 2, 3, 6), (1, 4, 6, 1)], {},
                          [_Op(OP.DEPTH_TO_SPACE, [0], [1], _depth_to_space_options(2))], [1])
    with pytest.raises(ConversionError, match=r"DEPTH_TO_SPACE of 't1': input \(1, 2, 3, 6\) with block size 2"):
        convert_tflite(model)


def test_the_full_range_face_detector_converts_without_sparse_or_depth_ops_left() -> None:
    source = get_source("face_detect_full")
    model = convert(source, fetch_source(source))
    assert [(o.name, _dims(o)) for o in model.graph.output] == [("regressors", ["batch", 2304, 16]),
                                                                 ("scores", ["batch", 2304, 1])]
    op_types = {node.op_type for node in model.graph.node}
    assert "DepthToSpace" in op_types and {init.data_type for init in model.graph.initializer} <= {
        onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}
