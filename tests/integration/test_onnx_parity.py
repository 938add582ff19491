"""Converted ONNX models agree with their source models on real photos.

Every catalog model whose source is an ONNX file is covered (the TFLite one, MediaPipe's, has its own
test against MediaPipe's runtime: test_segmentation_fast_parity.py). The source runs one photo at a
time, as its authors ran it; ours runs all of them as one batch, as Triton's dynamic batcher does.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from converters.build import convert
from converters.catalog import get_source, load_catalog
from converters.fetch import fetch_source
from imaging.tensors import model_input

pytestmark = pytest.mark.integration

ONNX_SOURCED = [name for name, source in load_catalog().items()
                if source.source_format == "onnx" and source.conversion not in ("onnx_as_is", "onnx_named_io")]
SERVED_AS_IS = [name for name, source in load_catalog().items() if source.conversion == "onnx_as_is"]
NAMED_IO = [name for name, source in load_catalog().items() if source.conversion == "onnx_named_io"]
# Measured 0.0 for every model and photo (ONNX Runtime 1.31 on a 2-core x86 CPU); the bound leaves room for
# other kernels (batched vs single-image convolutions may round differently).
MAX_ABS_DIFF = 1e-5


def session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def batch_of(photos: dict[str, np.ndarray], name: str) -> np.ndarray:
    source = get_source(name)
    return np.stack([model_input(Image.fromarray(p), *source.input_size, source.normalization)
                     for p in photos.values()])


def test_every_onnx_sourced_model_is_covered() -> None:
    assert set(ONNX_SOURCED) == {"depth", "matte_portrait", "matte_object", "matte_object_lite"}
    assert SERVED_AS_IS == ["style"]
    assert NAMED_IO == ["style_predict", "style_transform"]


def test_the_arbitrary_style_pair_matches_its_source_batched(photos: dict[str, np.ndarray]) -> None:
    """Renamed, with the batch freed (and the transform's size): a batch gives what the source gives one photo
    at a time, at the source's fixed sizes; the transform also runs at other sizes."""
    from imaging.style import style_square

    (predict_source, predictor), (transform_source, transform) = (
        (session(str(fetch_source(get_source(name)))),
         session(convert(get_source(name), fetch_source(get_source(name))).SerializeToString()))
        for name in NAMED_IO)
    squares = np.concatenate([style_square(photo, 256) for photo in photos.values()])
    vectors = predictor.run(None, {"style_image": squares})[0]
    content = np.concatenate([style_square(photo, 384) for photo in photos.values()])
    stylized = transform.run(None, {"content": content, "style_vector": vectors[::-1].copy()})[0]
    for index, square in enumerate(squares):
        vector = predict_source.run(None, {"style_image": square[None]})[0]
        assert np.abs(vector - vectors[index]).max() <= MAX_ABS_DIFF
        theirs = transform_source.run(None, {"content_image": content[index][None],
                                             "mobilenet_conv/Conv/BiasAdd": vectors[::-1][index][None]})[0]
        assert np.abs(theirs[0] - stylized[index]).max() <= MAX_ABS_DIFF
    other = transform.run(None, {"content": content[:1, :248, :332], "style_vector": vectors[:1]})[0]
    assert other.shape == (1, 248, 332, 3) and 0 <= other.min() and other.max() <= 1
    assert np.abs(other[0] - stylized[-1, :248, :332]).mean() > 0.05  # another style vector, another picture


def test_the_style_network_is_served_as_it_ships(photos: dict[str, np.ndarray]) -> None:
    """The served graph is the package's, and the step's pixels are the network's on the padded photo."""
    from contract.product import STYLE_NAMES
    from imaging.style import style_weights, stylize

    source = get_source("style")
    source_file = fetch_source(source)
    converted = convert(source, source_file)
    assert converted.graph == onnx.load(str(source_file)).graph
    original, served = session(str(source_file)), session(converted.SerializeToString())
    photo = next(iter(photos.values()))[:250, :333]  # neither side a multiple of 4
    for name in ("starry", "mosaic"):
        weights = style_weights(name, STYLE_NAMES)
        ours = stylize(photo, lambda x, w=weights: served.run(None, {"image": x, "style_weights": w})[0], 1024)
        padded = np.pad(photo, ((0, 2), (0, 3), (0, 0)), mode="reflect").transpose(2, 0, 1)[None] / 255
        theirs = original.run(None, {"image": padded.astype(np.float32), "style_weights": weights})[0]
        expected = np.rint(np.clip(theirs[0].transpose(1, 2, 0)[:250, :333], 0, 1) * 255).astype(np.uint8)
        assert np.array_equal(ours, expected), name


@pytest.mark.parametrize("name", ONNX_SOURCED)
def test_converted_model_matches_source_on_real_photos(name: str, photos: dict[str, np.ndarray]) -> None:
    source = get_source(name)
    source_file = fetch_source(source)
    converted = convert(source, source_file)
    assert [i.name for i in converted.graph.input] == ["image"]
    assert [o.name for o in converted.graph.output] == [source.output]
    for value in (converted.graph.input[0], converted.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
        assert [d.dim_value for d in dims[2:]] == list(source.input_size)  # fixed H x W, as Triton's config says
    assert max(o.version for o in converted.opset_import if o.domain in ("", "ai.onnx")) >= 13
    onnx.checker.check_model(converted, full_check=True)

    images = batch_of(photos, name)
    original = session(str(source_file))
    reference = np.concatenate([
        original.run(None, {original.get_inputs()[0].name: images[i : i + 1]})[0] for i in range(len(images))
    ])
    if source.conversion == "onnx_first_output":  # served: U2-Net's first output, min-max rescaled per image
        low = reference.min(axis=(1, 2, 3), keepdims=True)
        high = reference.max(axis=(1, 2, 3), keepdims=True)
        reference = (reference - low) / (high - low)
    served = session(converted.SerializeToString()).run(None, {"image": images})[0]  # one batch of all photos
    assert served.shape == (len(images), 1, *source.input_size)
    diff = np.abs(served - reference).max(axis=(1, 2, 3))
    assert diff.max() <= MAX_ABS_DIFF, f"max abs diff per photo {dict(zip(photos, diff.round(8), strict=True))}"
    if source.output == "alpha":
        assert 0.0 <= served.min() and served.max() <= 1.0
