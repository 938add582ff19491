"""converters/tfjs_to_onnx.py on a small tfjs layers model built here: every supported layer against the NumPy
reference (tests/tfjs_reference.py), and refusals that name what is unsupported."""

import copy
import json

import numpy as np
import onnxruntime as ort
import pytest

from converters.errors import ConversionError
from converters.tfjs_to_onnx import convert_tfjs
from tests import tfjs_reference

SHARD = "group1-shard1of1.bin"


def _conv(name: str, filters: int, inbound: str, kernel: int = 3) -> dict:
    return {"class_name": "Conv2D", "name": name, "inbound_nodes": [[[inbound, 0, 0, {}]]],
            "config": {"name": name, "filters": filters, "kernel_size": [kernel, kernel], "strides": [1, 1],
                       "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                       "activation": "linear", "use_bias": True}}


def _layer(kind: str, name: str, inbound: list[str], **config: object) -> dict:
    return {"class_name": kind, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]]}


def tiny_model() -> tuple[dict, dict[str, bytes]]:
    """Input -> conv 3->8 (3x3) -> relu, concat with the conv (16) -> conv 16->12 (2x2, TF's uneven same
    padding) -> PixelShuffle2x -> conv 3->3 -> beta 0.2, added to itself: every supported layer."""
    layers = [
        {"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
         "config": {"name": "in", "batch_input_shape": [None, None, None, 3], "dtype": "float32"}},
        _conv("a", 8, "in"), _layer("Activation", "r", ["a"], activation="relu"),
        _layer("Concatenate", "c", ["a", "r"], axis=3), _conv("b", 12, "c", kernel=2),
        _layer("PixelShuffle2x", "ps", ["b"], scale=2), _conv("SR", 3, "ps"),
        _layer("MultiplyBeta", "m", ["SR"], beta=0.2), _layer("Add", "out", ["SR", "m"]),
    ]
    rng = np.random.default_rng(0)
    shapes = {"a": (3, 3, 3, 8), "b": (2, 2, 16, 12), "SR": (3, 3, 3, 3)}
    specs, data = [], b""
    for name, shape in shapes.items():
        for suffix, array in (("kernel", rng.normal(0, 0.3, shape)), ("bias", rng.normal(0, 0.1, shape[-1:]))):
            specs.append({"name": f"{name}/{suffix}", "shape": list(array.shape), "dtype": "float32"})
            data += array.astype("<f4").tobytes()
    document = {"format": "layers-model", "modelTopology": {"model_config": {"class_name": "Functional", "config": {
        "name": "tiny", "layers": layers, "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}}},
        "weightsManifest": [{"paths": [SHARD], "weights": specs}]}
    return document, {SHARD: data}


def test_every_supported_layer_matches_the_numpy_reference() -> None:
    document, shards = tiny_model()
    model = convert_tfjs(json.dumps(document), shards)
    hwc = np.random.default_rng(1).random((7, 9, 3), dtype=np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = session.run(None, {"image": np.ascontiguousarray(hwc.transpose(2, 0, 1))[None]})[0][0]
    reference = tfjs_reference.forward(json.dumps(document), shards, hwc).transpose(2, 0, 1)
    assert ours.shape == (3, 14, 18)
    assert 0.0 < float(reference.std()) and np.abs(ours - reference).max() < 1e-5


def _refused(document: dict, shards: dict[str, bytes], *words: str) -> None:
    with pytest.raises(ConversionError) as error:
        convert_tfjs(json.dumps(document), shards)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_unsupported_layer_setting_and_weights_are_refused_by_name() -> None:
    document, shards = tiny_model()
    layers = document["modelTopology"]["model_config"]["config"]["layers"]

    unknown = copy.deepcopy(document)
    unknown["modelTopology"]["model_config"]["config"]["layers"][2]["class_name"] = "LeakyReLU"
    _refused(unknown, shards, "'r'", "LeakyReLU", "not supported")

    strided = copy.deepcopy(document)
    strided["modelTopology"]["model_config"]["config"]["layers"][1]["config"]["strides"] = [2, 2]
    _refused(strided, shards, "'a'", "strides")

    quantized = copy.deepcopy(document)
    quantized["weightsManifest"][0]["weights"][0]["quantization"] = {"dtype": "uint8"}
    _refused(quantized, shards, "'a/kernel'", "quantized")

    _refused(document, {}, SHARD, "missing")
    _refused(document, {SHARD: shards[SHARD][:-4]}, "do not match")

    unused = copy.deepcopy(document)
    no_sr_conv = [*layers[:-3], _layer("Add", "out", ["ps", "ps"])]
    unused["modelTopology"]["model_config"]["config"]["layers"] = no_sr_conv
    _refused(unused, shards, "SR/kernel", "used by no layer")

    _refused({**document, "format": "graph-model"}, shards, "graph-model", "layers-model")
