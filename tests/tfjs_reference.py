"""An independent NumPy forward pass of a tfjs layers model, straight from ``model.json`` and its weight shards,
in TensorFlow's own layout (NHWC, HWIO kernels, float64): the reference converters/tfjs_to_onnx.py is checked
against (no tfjs runtime here)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np


def manifest_weights(document: dict, shards: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    weights = {}
    for group in document["weightsManifest"]:
        data = b"".join(shards[path] for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            assert spec["dtype"] == "float32"
            count = int(np.prod(spec["shape"]))
            weights[spec["name"]] = np.frombuffer(data, "<f4", count, offset).reshape(spec["shape"]).astype(np.float64)
            offset += 4 * count
        assert offset == len(data)
    return weights


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
    """Keras Conv2D at stride 1 on one HWC image: cross-correlation, ``same`` padding (the odd pixel at the end)."""
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = np.pad(x, (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))  # H, W, C, kh, kw
    return np.tensordot(windows, kernel, axes=([3, 4, 2], [0, 1, 2])) + bias


def _depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    """tf.nn.depth_to_space, NHWC: out[h*b + i, w*b + j, c] = in[h, w, (i*b + j)*C + c]."""
    height, width, depth = x.shape
    channels = depth // (block * block)
    return x.reshape(height, width, block, block, channels).transpose(0, 2, 1, 3, 4).reshape(
        height * block, width * block, channels)


def forward(model_json: str, shards: Mapping[str, bytes], hwc: np.ndarray) -> np.ndarray:
    """The model's output for one HWC image in [0, 1], clipped to [0, 1] (as the served graph is)."""
    document = json.loads(model_json)
    weights = manifest_weights(document, shards)
    config = document["modelTopology"]["model_config"]["config"]
    values: dict[str, np.ndarray] = {}
    for layer in config["layers"]:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [values[inbound[0]] for inbound in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            values[name] = hwc.astype(np.float64)
        elif kind == "Conv2D":
            assert cfg["strides"] == [1, 1] and cfg["activation"] == "linear"
            values[name] = _conv_same(inputs[0], weights[f"{name}/kernel"], weights[f"{name}/bias"], cfg["padding"])
        elif kind == "Activation":
            assert cfg["activation"] == "relu"
            values[name] = np.maximum(inputs[0], 0.0)
        elif kind == "Concatenate":
            values[name] = np.concatenate(inputs, axis=-1)
        elif kind == "Add":
            values[name] = np.sum(inputs, axis=0)
        elif kind == "MultiplyBeta":
            values[name] = inputs[0] * cfg["beta"]
        elif kind.startswith("PixelShuffle"):
            values[name] = _depth_to_space(inputs[0], cfg["scale"])
        else:
            raise AssertionError(f"the reference has no layer {kind}")
    return np.clip(values[config["output_layers"][0][0]], 0.0, 1.0)
