"""Unit tests of the hand-written TFLite -> ONNX converter (no MediaPipe needed)."""

from __future__ import annotations

import flatbuffers
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tflite

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
