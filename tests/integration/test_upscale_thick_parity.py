"""UpscalerJS ESRGAN thick converted from tfjs (converters/tfjs_to_onnx.py) agrees with an independent NumPy
forward pass of model.json's layers and weights (tests/tfjs_reference.py; there is no tfjs runtime here) on crops
of real photos, and keeps every layer and weight of model.json."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data

from converters.build import convert
from converters.catalog import get_source
from converters.fetch import fetch_source, shard_paths
from tests import tfjs_reference

pytestmark = pytest.mark.integration

# Measured (ONNX Runtime 1.31, float32, against the float64 reference, 2-core x86): max abs difference in [0, 1]
# units 3.3e-7 (x2) and 3.0e-7 (x4) over these crops; the bound leaves room for other kernels' summation order and
# is still far below one 8-bit level (3.9e-3).
MAX_ABS_DIFF = 1e-5
# (photo, top, left, height, width): a face, a cat's fur and eye; sizes not multiples of 8
CROPS = [("astronaut", 90, 190, 36, 44), ("chelsea", 80, 150, 44, 30)]
MODELS = ("upscale_psnr_x4",)


def sources(name: str) -> tuple[onnx.ModelProto, str, dict[str, bytes]]:
    source = get_source(name)
    model_json = fetch_source(source)
    shards = {path.name: path.read_bytes() for path in shard_paths(source, model_json)}
    return convert(source, model_json), model_json.read_text(), shards


@pytest.mark.parametrize("name", MODELS)
def test_converted_model_matches_numpy_reference_on_real_photos(name: str) -> None:
    model, model_json, shards = sources(name)
    scale = get_source(name).scale
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for photo, top, left, height, width in CROPS:
        hwc = getattr(skimage.data, photo)()[top:top + height, left:left + width].astype(np.float32) / 255.0
        ours = session.run(None, {"image": np.ascontiguousarray(hwc.transpose(2, 0, 1))[None]})[0][0]
        reference = tfjs_reference.forward(model_json, shards, hwc).transpose(2, 0, 1)
        assert ours.shape == reference.shape == (3, scale * height, scale * width)
        difference = float(np.abs(ours - reference).max())
        assert difference <= MAX_ABS_DIFF, f"{name} on {photo}: max abs difference {difference:.2e}"
        assert ours.std() > 0.05  # a real picture, not a flat one


@pytest.mark.parametrize("name", MODELS)
def test_converted_graph_keeps_every_layer_and_weight(name: str) -> None:
    model, model_json, shards = sources(name)
    document = json.loads(model_json)
    layers = [layer["name"] for layer in document["modelTopology"]["model_config"]["config"]["layers"]]
    assert len(layers) == 477
    nodes = [node.name for node in model.graph.node]
    assert nodes == [*layers, "rgb"]  # one node per layer, in order, then the clip to [0, 1]
    manifest = {w["name"]: w["shape"] for group in document["weightsManifest"] for w in group["weights"]}
    initializers = {t.name: list(t.dims) for t in model.graph.initializer}
    assert len(manifest) == 308 and set(manifest) <= set(initializers)
    assert set(initializers) - set(manifest) == {"beta_0.2", "zero", "one"}
    assert all(np.prod(initializers[n]) == np.prod(shape) for n, shape in manifest.items())
    weights = tfjs_reference.manifest_weights(document, shards)
    converted = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for kernel in (n for n in manifest if n.endswith("/kernel")):  # HWIO -> OIHW, the same numbers
        assert np.array_equal(converted[kernel], weights[kernel].transpose(3, 2, 0, 1))
