"""``converters.onnx_edit.with_named_io`` on a small graph made here: the catalog's names, a free batch (also
through a Reshape that an exporter wrote with batch 1) and free sizes, and clear refusals."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.errors import ConversionError
from converters.onnx_edit import with_named_io


def exported(reshape: list[int] | None = None) -> onnx.ModelProto:
    """photo [1, 8, 8, 3] and vector [1, 1, 1, 3] -> photo * mean(vector reshaped to [1, 3, 1, 1]), as NHWC."""
    nodes = [
        helper.make_node("Transpose", ["photo_in"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Reshape", ["vector_in", "shape"], ["gain"]),
        helper.make_node("Mul", ["nchw", "gain"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["out"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes, "exported",
        [helper.make_tensor_value_info("photo_in", TensorProto.FLOAT, [1, 8, 8, 3]),
         helper.make_tensor_value_info("vector_in", TensorProto.FLOAT, [1, 1, 1, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 8, 3])],
        [numpy_helper.from_array(np.array(reshape or [1, 3, 1, 1], np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_the_catalogs_names_a_free_batch_and_free_sizes() -> None:
    model = with_named_io(exported(), {"content": (-1, -1, 3), "style_vector": (1, 1, 3)}, {"stylized": (-1, -1, 3)})
    assert [i.name for i in model.graph.input] == ["content", "style_vector"]
    assert [o.name for o in model.graph.output] == ["stylized"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    photos = np.random.default_rng(0).random((2, 12, 20, 3), dtype=np.float32)  # batch 2, not 8 x 8
    vectors = np.array([[[[1, 2, 3]]], [[[0.5, 0, 1]]]], np.float32)
    (out,) = session.run(None, {"content": photos, "style_vector": vectors})
    assert out.shape == (2, 12, 20, 3)
    assert np.allclose(out, photos * vectors)  # each photo with its own vector: the Reshape kept the batch


def test_a_count_or_rank_the_model_does_not_have_is_refused() -> None:
    with pytest.raises(ConversionError, match=r"2 inputs .* the catalog names 1"):
        with_named_io(exported(), {"content": (-1, -1, 3)}, {"stylized": (-1, -1, 3)})
    with pytest.raises(ConversionError, match="rank 4; the catalog's content = \\[-1, 3\\]"):
        with_named_io(exported(), {"content": (-1, 3), "style_vector": (1, 1, 3)}, {"stylized": (-1, -1, 3)})


def test_a_reshape_whose_batch_cannot_be_freed_is_refused() -> None:
    with pytest.raises(ConversionError, match="has a -1 already"):
        with_named_io(exported([1, -1, 1, 1]), {"content": (8, 8, 3), "style_vector": (1, 1, 3)},
                      {"stylized": (8, 8, 3)})
