"""Conversions of source ONNX models to the serving contract.

Every served model has ONE float32 input ``image`` [batch, 3, H, W] and ONE
float32 output (``depth`` or ``alpha``) [batch, 1, H, W], with a symbolic
batch axis so Triton can batch requests dynamically and H, W fixed at the
catalog's ``input_size`` (a source with symbolic H, W, such as MODNet, gets them set).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import shape_inference, version_converter

from converters.errors import ConversionError

TARGET_OPSET = 17
INPUT_NAME = "image"
BATCH_DIM = "batch"


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """Old exporters list weights as graph inputs; keep only the real input."""
    weights = {init.name for init in model.graph.initializer}
    real = [value for value in model.graph.input if value.name not in weights]
    if len(real) != 1:
        raise ConversionError(f"expected one non-weight graph input, found {[v.name for v in real]}")
    del model.graph.input[:]
    model.graph.input.extend(real)


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def _set_batch_dim(value: onnx.ValueInfoProto) -> None:
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ConversionError(f"{value.name!r} has rank {len(dims)}, expected 4 (NCHW)")
    dims[0].ClearField("dim_value")
    dims[0].dim_param = BATCH_DIM


def _fix_spatial_dims(value: onnx.ValueInfoProto, size: tuple[int, int]) -> None:
    """Give symbolic H, W the catalog's input size (a fully convolutional source such as MODNet);
    a static H or W must already be that size."""
    for dim, wanted in zip(value.type.tensor_type.shape.dim[2:], size, strict=True):
        if dim.HasField("dim_value"):
            if dim.dim_value != wanted:
                raise ConversionError(f"{value.name!r} has a static H or W of {dim.dim_value}, the catalog's "
                                      f"input_size is {list(size)}; fix input_size in the catalog")
        else:
            dim.ClearField("dim_param")
            dim.dim_value = wanted


def _keep_only_output(model: onnx.ModelProto, index: int) -> None:
    outputs = list(model.graph.output)
    if index >= len(outputs):
        raise ConversionError(f"model has {len(outputs)} outputs, cannot keep output {index}")
    del model.graph.output[:]
    model.graph.output.append(outputs[index])
    _prune_unused_nodes(model.graph)


def _prune_unused_nodes(graph: onnx.GraphProto) -> None:
    needed = {value.name for value in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def to_serving_contract(
    model: onnx.ModelProto, output_name: str, input_size: tuple[int, int], keep_output: int = 0
) -> onnx.ModelProto:
    """Return ``model`` upgraded to ``TARGET_OPSET`` with the serving names, a dynamic batch and
    H x W fixed at ``input_size`` for both the input and the output."""
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if current is None:
        raise ConversionError("model declares no default-domain opset")
    if current < TARGET_OPSET:
        try:
            model = version_converter.convert_version(model, TARGET_OPSET)
        except Exception as exc:  # the converter raises bare RuntimeErrors
            raise ConversionError(f"opset {current} -> {TARGET_OPSET} conversion failed: {exc}") from exc
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())
    model.ir_version = max(model.ir_version, 8)
    _drop_initializer_inputs(model)
    _keep_only_output(model, keep_output)
    del model.graph.value_info[:]
    _rename_value(model.graph, model.graph.input[0].name, INPUT_NAME)
    _rename_value(model.graph, model.graph.output[0].name, output_name)
    _set_batch_dim(model.graph.input[0])
    _set_batch_dim(model.graph.output[0])
    _fix_spatial_dims(model.graph.input[0], input_size)
    _fix_spatial_dims(model.graph.output[0], input_size)
    for dim in model.graph.output[0].type.tensor_type.shape.dim[1:]:
        if not dim.HasField("dim_value"):
            raise ConversionError(f"output {output_name!r} must have static C, H, W")
    model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def append_minmax_rescale(model: onnx.ModelProto, epsilon: float = 1e-6) -> onnx.ModelProto:
    """Rescale the single output to [0, 1] per image: (x - min) / max(max - min, epsilon)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    output = graph.output[0].name
    raw = f"{output}_raw"
    for node in graph.node:
        node.output[:] = [raw if name == output else name for name in node.output]
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(epsilon, dtype=np.float32), "minmax_epsilon"))
    axes = [1, 2, 3]
    graph.node.extend([
        onnx.helper.make_node("ReduceMin", [raw], ["minmax_low"], axes=axes, keepdims=1),
        onnx.helper.make_node("ReduceMax", [raw], ["minmax_high"], axes=axes, keepdims=1),
        onnx.helper.make_node("Sub", ["minmax_high", "minmax_low"], ["minmax_span_raw"]),
        onnx.helper.make_node("Max", ["minmax_span_raw", "minmax_epsilon"], ["minmax_span"]),
        onnx.helper.make_node("Sub", [raw, "minmax_low"], ["minmax_shifted"]),
        onnx.helper.make_node("Div", ["minmax_shifted", "minmax_span"], [output]),
    ])
    onnx.checker.check_model(model, full_check=True)
    return model


def append_disparity_flip(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn a single disparity output (relative inverse depth, larger = nearer) into farther-is-larger depth:
    ``depth = max(disparity) - disparity``, the max taken over each image's C, H, W (never across the batch,
    so an image's result does not depend on what Triton batched it with).

    Why this and not ``1 / (disparity + eps)``: Depth Anything's disparity is affine-invariant (true inverse
    depth ~ a x disparity + b, a and b unknown per image), so its reciprocal is no truer a depth than any other
    decreasing map, and it is unbounded: where the disparity is near 0 (sky, a far wall) it is ~1 / eps, and the
    depth PNG, linear between the map's near and far, would squeeze the rest of the photo into its top levels.
    ``max - disparity`` is an affine map of the disparity: bounded, non-negative, no epsilon to choose, and the
    PNG's nearness becomes the disparity rescaled to [0, 1] (the model's own visualisation), so the bokeh's
    blur, linear in nearness, is proportional to the disparity difference, as a thin lens's blur circle is.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    if len(graph.output) != 1:
        raise ConversionError(f"expected one output to flip, found {[o.name for o in graph.output]}")
    output = graph.output[0].name
    raw = f"{output}_disparity"
    for node in graph.node:
        node.output[:] = [raw if name == output else name for name in node.output]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), TARGET_OPSET)
    axes = [1, 2, 3]
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(axes, dtype=np.int64), "disparity_axes"))
        reduce_max = onnx.helper.make_node("ReduceMax", [raw, "disparity_axes"], ["disparity_max"], keepdims=1)
    else:
        reduce_max = onnx.helper.make_node("ReduceMax", [raw], ["disparity_max"], axes=axes, keepdims=1)
    graph.node.extend([reduce_max, onnx.helper.make_node("Sub", ["disparity_max", raw], [output])])
    onnx.checker.check_model(model, full_check=True)
    return model


def with_named_io(model: onnx.ModelProto, inputs: dict[str, tuple[int, ...]],
                  outputs: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """``model`` with its inputs and outputs renamed, in order, to the catalog's ``inputs`` / ``outputs`` (name ->
    dims without the batch; -1 is a free size), a free batch axis first, and Reshapes to a constant shape that
    starts with 1 (an exporter writing batch 1 into the graph) freed to -1 there, so Triton can batch it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    real = [value for value in graph.input if value.name not in weights]
    for kind, values, wanted in (("inputs", real, inputs), ("outputs", list(graph.output), outputs)):
        if len(values) != len(wanted):
            raise ConversionError(f"the model has {len(values)} {kind} {[v.name for v in values]}, the catalog "
                                  f"names {len(wanted)}: {list(wanted)}")
    del graph.value_info[:]
    for value, (name, dims) in zip([*real, *graph.output], [*inputs.items(), *outputs.items()], strict=True):
        shape = value.type.tensor_type.shape.dim
        if len(shape) != len(dims) + 1:
            raise ConversionError(f"{value.name!r} has rank {len(shape)}; the catalog's {name} = {list(dims)} "
                                  f"(without the batch) says {len(dims) + 1}")
        _rename_value(graph, value.name, name)
        for index, (dim, wanted) in enumerate(zip(shape, (-1, *dims), strict=True)):
            dim.Clear()
            if wanted == -1:
                dim.dim_param = BATCH_DIM if index == 0 else f"{name}_{index}"
            else:
                dim.dim_value = wanted
    _free_reshape_batches(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    return model


def _free_reshape_batches(graph: onnx.GraphProto, weights: dict[str, onnx.TensorProto]) -> None:
    """Reshapes to a constant shape [1, ...] get [-1, ...]: the batch an exporter wrote into the graph."""
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[1] in weights:
            target = onnx.numpy_helper.to_array(weights[node.input[1]])
            if target.size and target[0] == 1:
                if (target == -1).any():
                    raise ConversionError(f"Reshape {node.name!r} to {target.tolist()} has a -1 already: its batch "
                                          "cannot be freed")
                freed = onnx.numpy_helper.from_array(np.concatenate([[-1], target[1:]]).astype(target.dtype),
                                                     node.input[1])
                weights[node.input[1]].CopyFrom(freed)
