"""Export path of the Depth Anything V2 hub source, on a tiny randomly initialised model (no download).

Runs in the hub virtual environment (torch + transformers + onnxscript):

    python3 -m venv .venv-hub && .venv-hub/bin/pip install -e '.[dev]' -r converters/requirements-hub.txt
    .venv-hub/bin/python -m pytest -m hub tests/integration/test_depth_anything_export.py

Collection needs no torch, so ``-m "not hub"`` deselects this module in the main environment; run
with the hub marker but without torch, every test FAILS (it does not skip) and says how to fix it.
"""

from __future__ import annotations

import importlib
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from converters import hub_depth_anything as hub
from converters.errors import ConversionError

pytestmark = pytest.mark.hub

HEIGHT, WIDTH = 56, 70  # 4 x 5 patches: non-square, so the position embeddings are resized too
TOLERANCE = 1e-3  # max abs difference, relative to the largest output value


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(
            f"`{name}` is missing ({exc}): run this test with the hub venv: python3 -m venv .venv-hub && "
            ".venv-hub/bin/pip install -e '.[dev]' -r converters/requirements-hub.txt && "
            ".venv-hub/bin/python -m pytest -m hub tests/integration/test_depth_anything_export.py",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def torch() -> ModuleType:
    for name in ("transformers", "onnxscript"):
        _require(name)
    return _require("torch")


@pytest.fixture(scope="module")
def tiny_model(torch: ModuleType) -> Any:
    from transformers import DepthAnythingConfig, Dinov2Config

    # initializer_range 0.15 gives depth values of order 1 (the default 0.02 gives ~1e-6)
    backbone = Dinov2Config(
        image_size=HEIGHT, patch_size=14, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, out_indices=[1, 2], reshape_hidden_states=False, initializer_range=0.15,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=32, neck_hidden_sizes=[16, 32],
        reassemble_factors=[2, 1], fusion_hidden_size=16, head_hidden_size=8, initializer_range=0.15,
    )
    torch.manual_seed(0)
    return hub.build_model(config)


@pytest.fixture(scope="module")
def exported(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("depth_anything") / "model.onnx"
    return hub.export_onnx(tiny_model, path, HEIGHT, WIDTH, extra_metadata={"source": "test:random-init"})


@pytest.fixture(scope="module")
def exported_17(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("depth_anything_17") / "model.onnx"
    return hub.export_onnx(tiny_model, path, HEIGHT, WIDTH, opset=17)


def _reference(torch: ModuleType, model: Any, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(image)).predicted_depth.unsqueeze(1).numpy()


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_torch(torch: ModuleType, tiny_model: Any, exported: Path, batch: int) -> None:
    image = np.random.default_rng(batch).standard_normal((batch, 3, HEIGHT, WIDTH), dtype=np.float32)
    expected = _reference(torch, tiny_model, image)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"image": image})

    assert actual.dtype == np.float32
    assert actual.shape == (batch, 1, HEIGHT, WIDTH)
    scale = float(np.abs(expected).max())
    assert scale > 1e-2 and (expected > 0).mean() > 0.2, "degenerate reference: the comparison would prove nothing"
    diff = float(np.abs(actual - expected).max())
    assert diff <= TOLERANCE * scale, f"max abs diff {diff:.3g} > {TOLERANCE} x output scale {scale:.3g}"


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_graph_contract(exported: Path) -> None:
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["depth"]
    (image,), (depth,) = model.graph.input, model.graph.output
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert depth.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == ["batch", 3, HEIGHT, WIDTH]
    assert _dims(depth) == ["batch", 1, HEIGHT, WIDTH]
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    assert opset["ai.onnx"] >= 17


def test_metadata_says_inverse_relative_depth(exported: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert props["depth_kind"] == "inverse_relative"
    assert props["normalization"] == "imagenet"
    assert props["license"] == "Apache-2.0"
    assert props["input_size"] == f"{HEIGHT}x{WIDTH}"
    assert props["source"] == "test:random-init"


def test_opset_17_is_honoured(torch: ModuleType, tiny_model: Any, exported_17: Path) -> None:
    path = exported_17
    model = onnx.load(str(path))
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 17
    image = np.random.default_rng(7).standard_normal((2, 3, HEIGHT, WIDTH), dtype=np.float32)
    (actual,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image})
    expected = _reference(torch, tiny_model, image)
    assert float(np.abs(actual - expected).max()) <= TOLERANCE * float(np.abs(expected).max())


@pytest.mark.parametrize("opset", [17, 18])
def test_served_graph_is_farther_is_larger_for_each_image(torch: ModuleType, tiny_model: Any, exported: Path,
                                                          exported_17: Path, opset: int) -> None:
    """What the `depth` model serves: max(disparity) - disparity, per image (a batch must not mix them)."""
    raw = onnx.load(str(exported_17 if opset == 17 else exported))
    served = hub.to_served_depth(raw, HEIGHT, WIDTH)
    image = np.random.default_rng(11).standard_normal((3, 3, HEIGHT, WIDTH), dtype=np.float32)
    image[2] *= 2  # another image, another disparity maximum
    disparity = _reference(torch, tiny_model, image)
    expected = disparity.max(axis=(1, 2, 3), keepdims=True) - disparity
    session = ort.InferenceSession(served.SerializeToString(), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"image": image})

    assert {o.domain or "ai.onnx": o.version for o in served.opset_import}["ai.onnx"] == opset
    assert actual.shape == (3, 1, HEIGHT, WIDTH)
    scale = float(np.abs(disparity).max())
    assert float(np.abs(actual - expected).max()) <= TOLERANCE * scale
    assert np.array_equal(actual.reshape(3, -1).argmin(axis=1), disparity.reshape(3, -1).argmax(axis=1))
    assert _dims(served.graph.output[0]) == ["batch", 1, HEIGHT, WIDTH]
    props = {p.key: p.value for p in served.metadata_props}
    assert props["depth_kind"] == "relative" and "not metres" in props["depth_meaning"]
    assert props["license"] == "Apache-2.0" and props["input_size"] == f"{HEIGHT}x{WIDTH}"


def test_served_graph_needs_an_inverse_depth_export(exported: Path) -> None:
    served = hub.to_served_depth(onnx.load(str(exported)), HEIGHT, WIDTH)
    with pytest.raises(ConversionError, match="inverse_relative"):
        hub.to_served_depth(served, HEIGHT, WIDTH)  # flipping twice would undo it


@pytest.mark.parametrize(
    "repo_id",
    [
        "depth-anything/Depth-Anything-V2-Base-hf",
        "depth-anything/Depth-Anything-V2-Large-hf",
        "depth-anything/Depth-Anything-V2-Giant-hf",
        "depth-anything/Depth-Anything-V2-Large",
    ],
)
def test_non_small_checkpoint_refused_offline(
    torch: ModuleType, monkeypatch: pytest.MonkeyPatch, repo_id: str
) -> None:
    import transformers

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the licence check must refuse before touching the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(transformers.DepthAnythingForDepthEstimation, "from_pretrained", no_network)
    with pytest.raises(ConversionError, match="CC-BY-NC-4.0") as info:
        hub.load_pretrained(repo_id, hub.SMALL_REVISION)
    assert hub.SMALL_REPO_ID in str(info.value)


def _stub_from_pretrained(monkeypatch: pytest.MonkeyPatch, model: Any) -> list[tuple[tuple, dict]]:
    import transformers

    calls: list[tuple[tuple, dict]] = []

    def from_pretrained(*args: object, **kwargs: object) -> Any:
        calls.append((args, kwargs))
        return model

    monkeypatch.setattr(transformers.DepthAnythingForDepthEstimation, "from_pretrained", from_pretrained)
    return calls


def test_load_pretrained_pins_revision_and_prepares_model(torch: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    # Small's backbone width (384) with one layer: stands in for the downloaded weights
    backbone = Dinov2Config(
        image_size=28, patch_size=14, hidden_size=hub.SMALL_HIDDEN_SIZE, num_hidden_layers=1, num_attention_heads=6,
        intermediate_size=64, out_indices=[1], reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hub.SMALL_HIDDEN_SIZE, neck_hidden_sizes=[16],
        reassemble_factors=[1], fusion_hidden_size=16, head_hidden_size=8,
    )
    downloaded = DepthAnythingForDepthEstimation(config).train()
    calls = _stub_from_pretrained(monkeypatch, downloaded)

    model = hub.load_pretrained()

    assert calls == [((hub.SMALL_REPO_ID,), {"revision": hub.SMALL_REVISION})]
    assert model is downloaded and not model.training
    assert model.backbone.config._attn_implementation == "eager"


def test_load_pretrained_refuses_weights_that_are_not_small(
    torch: ModuleType, tiny_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_from_pretrained(monkeypatch, tiny_model)  # backbone width 32, not 384
    with pytest.raises(ConversionError, match="backbone width 32"):
        hub.load_pretrained(hub.SMALL_REPO_ID, hub.SMALL_REVISION)


def test_unknown_checkpoint_refused() -> None:
    with pytest.raises(ConversionError, match="not an allowed Depth Anything checkpoint"):
        hub.check_checkpoint_allowed("someone/depth-anything-v2-small-finetuned")


def test_small_checkpoint_allowed() -> None:
    hub.check_checkpoint_allowed(hub.SMALL_REPO_ID)


@pytest.mark.parametrize("height, width", [(500, 518), (518, 0)])
def test_size_must_be_multiple_of_patch(tiny_model: Any, tmp_path: Path, height: int, width: int) -> None:
    with pytest.raises(ConversionError, match="multiple of the 14-pixel patch"):
        hub.export_onnx(tiny_model, tmp_path / "bad.onnx", height, width)


def test_old_opset_refused(tiny_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="opset 13 is too old"):
        hub.export_onnx(tiny_model, tmp_path / "old.onnx", HEIGHT, WIDTH, opset=13)
