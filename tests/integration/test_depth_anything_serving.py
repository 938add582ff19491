"""Depth Anything V2 Small served as the ``depth`` model, end to end on the real Triton, with no download.

The repository is built in a temporary directory by the real build code with the switch on
(``IMAGESERVE_DEPTH_MODEL=depth_anything``): ``hub_depth_anything.load_pretrained`` runs as it would online
(licence check, pinned revision, the Small backbone width) but the hub's ``from_pretrained`` hands it a tiny
randomly initialised model with the Small width (384) and one layer. Its disparity also rises linearly
towards the bottom of the image (a floor coming nearer), so the served depth PNG must be brighter (nearer)
at the bottom: that fails if the graph's flip (``max(disparity) - disparity``) is missing or reversed. The
other models' weights are linked from /work/main/model_repository (``make models``) with their build stamps,
so only ``depth`` is exported. Runs in the hub venv:

    .venv-hub/bin/python -m pytest -m hub -p no:cacheprovider tests/integration/test_depth_anything_serving.py
"""

from __future__ import annotations

import importlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image

from contract.product import PRODUCT
from converters import hub_depth_anything as hub
from converters.build import build_repository
from converters.catalog import DEPTH_MODEL_ENV, load_hub_sources
from stack.ports import free_port
from stack.triton import TritonPorts, TritonServer
from tests.conftest import MODEL_REPOSITORY

pytestmark = pytest.mark.hub

SOURCE = load_hub_sources()["depth_anything"]
HEIGHT, WIDTH = SOURCE.input_size
RAMP = 20.0  # disparity added from the top row (0) to the bottom row; the random model's own output is ~1
PHOTO_SIZE = (320, 240)  # width, height: not square, not the model's size


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"`{name}` is missing ({exc}): run this test with the hub venv (make .venv-hub/.installed): "
                    ".venv-hub/bin/python -m pytest -m hub tests/integration/test_depth_anything_serving.py",
                    pytrace=False)


def _ramp_model(torch: ModuleType, transformers: ModuleType) -> Any:
    """A tiny random Depth Anything with the Small width whose disparity rises by RAMP towards the bottom."""
    from transformers.modeling_outputs import DepthEstimatorOutput

    class RampDisparity(transformers.DepthAnythingForDepthEstimation):
        def forward(self, pixel_values: Any, **kwargs: Any) -> Any:
            predicted = super().forward(pixel_values=pixel_values, **kwargs).predicted_depth
            rows = torch.linspace(0.0, RAMP, predicted.shape[-2], dtype=predicted.dtype)
            return DepthEstimatorOutput(predicted_depth=predicted + rows.reshape(1, -1, 1))

    backbone = transformers.Dinov2Config(
        image_size=HEIGHT, patch_size=hub.PATCH_SIZE, hidden_size=hub.SMALL_HIDDEN_SIZE, num_hidden_layers=1,
        num_attention_heads=6, intermediate_size=64, out_indices=[1], reshape_hidden_states=False,
        initializer_range=0.15,
    )
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hub.SMALL_HIDDEN_SIZE, neck_hidden_sizes=[16],
        reassemble_factors=[1], fusion_hidden_size=16, head_hidden_size=8, initializer_range=0.15,
    )
    torch.manual_seed(0)
    return RampDisparity(config).train()  # load_pretrained must put it in eval mode


def _link_other_models(repository: Path) -> None:
    """The other catalog models' built weights and stamps, so that the build converts only ``depth``."""
    for name in PRODUCT.models():
        if name == "depth":
            continue
        built = MODEL_REPOSITORY / name / "1" / "model.onnx"
        stamp = built.with_suffix(".onnx.source")
        if not (built.exists() and stamp.exists()):
            pytest.fail(f"{built} is not built; run `make models`", pytrace=False)
        (repository / name / "1").mkdir(parents=True)
        (repository / name / "1" / "model.onnx").symlink_to(built)
        shutil.copy2(stamp, repository / name / "1" / stamp.name)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[tuple]]:
    """(repository, models the build converted, the hub calls it made)."""
    torch, transformers = _require("torch"), _require("transformers")
    _require("onnxscript")
    repository = tmp_path_factory.mktemp("depth_anything_repository")
    _link_other_models(repository)
    model, calls = _ramp_model(torch, transformers), []

    def from_pretrained(*args: object, **kwargs: object) -> Any:
        calls.append((args, kwargs))
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DEPTH_MODEL_ENV, "depth_anything")
        patch.setattr(transformers.DepthAnythingForDepthEstimation, "from_pretrained", from_pretrained)
        converted = build_repository(repository, "cpu")
    return repository, converted, calls


@pytest.fixture(scope="module")
def triton(built: tuple[Path, list[str], list[tuple]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    ports = TritonPorts(free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp("triton") / "triton.log"
    with TritonServer(built[0], ports, log_path=log) as server:
        yield server


@pytest.fixture(scope="module")
def client(triton: TritonServer) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{triton.ports.grpc}")


def _png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _photo() -> bytes:
    """A flat grey photo: no subject for the matte to fuse in front, no edges for the depth to follow, so the
    served depth is the model's alone."""
    width, height = PHOTO_SIZE
    return _png_bytes(np.full((height, width, 3), 128, np.uint8))


def test_the_build_exported_only_depth_from_the_pinned_small_checkpoint(built: tuple) -> None:
    repository, converted, calls = built
    assert converted == ["depth"]
    assert calls == [((hub.SMALL_REPO_ID,), {"revision": hub.SMALL_REVISION})]
    served = onnx.load(str(repository / "depth" / "1" / "model.onnx"))
    props = {p.key: p.value for p in served.metadata_props}
    assert props["depth_kind"] == "relative" and props["license"] == "Apache-2.0"
    assert props["source"] == f"hf://{SOURCE.package}" and props["source_revision"] == SOURCE.version
    assert props["input_size"] == f"{HEIGHT}x{WIDTH}"
    assert served.graph.node[-1].op_type == "Sub"  # the flip is the graph's last step
    stamp = (repository / "depth" / "1" / "model.onnx.source").read_text()
    assert SOURCE.version in stamp and f"{HEIGHT}x{WIDTH}" in stamp
    config = (repository / "depth" / "config.pbtxt").read_text()
    assert f"dims: {HEIGHT}\n  dims: {WIDTH}" in config


def test_preprocess_feeds_the_depth_model_its_size_and_imagenet_normalisation(client) -> None:
    image = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[_photo()]], dtype=np.object_))
    result = client.infer("preprocess", [image], outputs=[grpcclient.InferRequestedOutput("DEPTH_INPUT")])
    tensor = result.as_numpy("DEPTH_INPUT")
    assert tensor.shape == (1, 3, HEIGHT, WIDTH)
    # grey 128 under ImageNet normalisation: (128/255 - mean) / std per channel
    expected = (128 / 255 - np.array(hub.IMAGENET_MEAN)) / np.array(hub.IMAGENET_STD)
    assert np.allclose(tensor[0].mean(axis=(1, 2)), expected, atol=1e-3)


def test_photo_depth_is_a_16_bit_png_at_the_photo_size_nearer_at_the_bottom(client) -> None:
    image = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")  # the only input a direct caller must give
    image.set_data_from_numpy(np.array([[_photo()]], dtype=np.object_))
    outputs = [grpcclient.InferRequestedOutput(name) for name in ("DEPTH_IMAGE", "DEPTH_RANGE")]
    result = client.infer("photo_depth_portrait", [image], outputs=outputs)
    png = Image.open(io.BytesIO(bytes(result.as_numpy("DEPTH_IMAGE").reshape(-1)[0])))
    near, far = result.as_numpy("DEPTH_RANGE").reshape(-1).tolist()

    assert (png.mode, png.size) == ("I;16", PHOTO_SIZE)
    rows = np.asarray(png, dtype=np.float64).mean(axis=1)  # near = bright
    quarter = len(rows) // 4
    assert rows[-quarter:].mean() - rows[:quarter].mean() > 0.5 * 65535, "the bottom is nearer: brighter"
    assert np.corrcoef(np.arange(len(rows)), rows)[0, 1] > 0.95
    assert np.isfinite([near, far]).all() and 0 <= near < far
    assert far - near > RAMP / 2  # the ramp's span, in the model's relative units


def test_depth_model_flips_each_image_of_a_batch_on_its_own(client) -> None:
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((2, 3, HEIGHT, WIDTH), dtype=np.float32)
    batch[1] *= 3  # a different image: a different disparity maximum

    def depth(images: np.ndarray) -> np.ndarray:
        tensor = grpcclient.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        return client.infer("depth", [tensor]).as_numpy("depth")

    together = depth(batch)
    alone = np.concatenate([depth(batch[:1]), depth(batch[1:])])
    assert together.shape == (2, 1, HEIGHT, WIDTH) and np.isfinite(together).all()
    assert np.allclose(together, alone, atol=1e-4 * float(np.abs(alone).max()))
    assert np.allclose(together.min(axis=(1, 2, 3)), 0.0, atol=1e-5)  # each image's nearest point is 0
    assert (together[:, 0, 0].mean(axis=-1) > together[:, 0, -1].mean(axis=-1) + RAMP / 2).all()  # top farther
