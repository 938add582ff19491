"""Converted ONNX models agree with their source models on real photos."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from converters.build import convert
from converters.catalog import get_source
from converters.fetch import fetch_source
from imaging.tensors import model_input

pytestmark = pytest.mark.integration


def session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def batch_of(photos: dict[str, np.ndarray], name: str) -> np.ndarray:
    source = get_source(name)
    return np.stack([model_input(Image.fromarray(p), *source.input_size, source.normalization)
                     for p in photos.values()])


@pytest.mark.parametrize("name", ["depth", "segmentation_quality"])
def test_converted_model_matches_source_on_real_photos(name: str, photos: dict[str, np.ndarray]) -> None:
    source = get_source(name)
    source_file = fetch_source(source)
    converted = convert(source, source_file)
    assert [i.name for i in converted.graph.input] == ["image"]
    assert [o.name for o in converted.graph.output] == [source.output]
    assert converted.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(o.version for o in converted.opset_import if o.domain in ("", "ai.onnx")) >= 13
    onnx.checker.check_model(converted, full_check=True)

    images = batch_of(photos, name)
    original = session(str(source_file))
    reference = np.concatenate([
        original.run(None, {original.get_inputs()[0].name: images[i : i + 1]})[0] for i in range(len(images))
    ])
    if name == "segmentation_quality":  # served output: U2-Net's first output, min-max rescaled per image
        low = reference.min(axis=(1, 2, 3), keepdims=True)
        high = reference.max(axis=(1, 2, 3), keepdims=True)
        reference = (reference - low) / (high - low)
    served = session(converted.SerializeToString()).run(None, {"image": images})[0]  # one batch of all photos
    assert served.shape == (len(images), 1, *source.input_size)
    assert np.abs(served - reference).max() <= 1e-4
