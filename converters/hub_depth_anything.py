"""Depth Anything V2 Small from the Hugging Face hub, exported to ONNX.

Optional source for users with network access; it needs the hub extra
(``pip install -r converters/requirements-hub.txt``: torch, transformers,
onnxscript). Only the Small checkpoint is allowed: its weights are Apache-2.0,
while Base, Large and Giant are CC-BY-NC-4.0 (non-commercial) and are refused.

The exported model follows the contract of our other depth model:

* input ``image``: float32 ``[batch, 3, H, W]``, RGB scaled to [0, 1] and then
  normalised with the ImageNet mean (0.485, 0.456, 0.406) and std
  (0.229, 0.224, 0.225). Depth Anything works on sizes that are multiples of
  its 14-pixel patch; the default is 518x518. H and W are fixed at export time;
  the batch axis is dynamic and named ``batch``.
* output ``depth``: float32 ``[batch, 1, H, W]``.

Unlike FastDepth (metric depth in metres, larger = farther), Depth Anything
predicts RELATIVE INVERSE depth (disparity: larger = nearer, arbitrary scale
and shift). ``export_onnx`` writes that raw output and records it in the ONNX
``metadata_props`` (``depth_kind = inverse_relative``).

Served as the ``depth`` model (``IMAGESERVE_DEPTH_MODEL=depth_anything``, the
catalog's ``[hub.depth_anything]``), ``export_served`` adds what the serving
contract needs: opset 17 like the other served models, the contract's checks
(``onnx_edit.to_serving_contract``) and a last step ``depth = max(disparity) -
disparity`` per image (``onnx_edit.append_disparity_flip``, which explains the
choice), so larger = farther as the steps assume; the values stay relative,
not metres (``depth_kind = relative``).

CLI (downloads the weights, so it needs network access; writes the raw export)::

    python -m converters.hub_depth_anything --out build/depth_anything.onnx [--size 518]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import onnx

from converters.errors import ConversionError, ConverterError
from converters.onnx_edit import TARGET_OPSET, append_disparity_flip, to_serving_contract

if TYPE_CHECKING:
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

log = logging.getLogger(__name__)

SMALL_REPO_ID = "depth-anything/Depth-Anything-V2-Small-hf"
# Commit of SMALL_REPO_ID on the hub; bump deliberately after checking the model card.
SMALL_REVISION = "5426e4f0f36572d16453bbda7a8389317b1bef99"
ALLOWED_REPO_IDS = frozenset({SMALL_REPO_ID.lower()})
NON_COMMERCIAL_VARIANTS = ("base", "large", "giant", "vitb", "vitl", "vitg")
SMALL_HIDDEN_SIZE = 384  # ViT-S/14 width: a cheap second check that the weights are the Small ones

PATCH_SIZE = 14
DEFAULT_SIZE = 518
DEFAULT_OPSET = 18  # the dynamo exporter's native opset; 17 works through ONNX's version converter
MIN_OPSET = 17  # LayerNormalization is a standard op from opset 17 on
INPUT_NAME = "image"
OUTPUT_NAME = "depth"
BATCH_AXIS = "batch"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HUB_EXTRA_HINT = "install the hub extra: pip install -r converters/requirements-hub.txt"
HUB_PACKAGES = ("torch", "transformers", "onnxscript")
SERVED_DEPTH_MEANING = ("relative depth, larger = farther: max(disparity) - disparity of each image; "
                        "not metres (unknown scale and shift), 0 = the image's nearest point")


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConversionError(f"Depth Anything export needs `{name}` ({exc}); {HUB_EXTRA_HINT}") from exc


def require_hub_packages() -> None:
    """Refuse, before any work, where the hub packages are not installed (e.g. the serving venv or image)."""
    missing = [name for name in HUB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConversionError(
            f"Depth Anything export needs {', '.join(HUB_PACKAGES)}; missing here ({sys.executable}): "
            f"{', '.join(missing)}; {HUB_EXTRA_HINT} (locally `make .venv-hub/.installed`, which "
            "`IMAGESERVE_DEPTH_MODEL=depth_anything make run` uses); the Triton image does not carry them "
            "(helm/README.md, Depth Anything)"
        )


def check_checkpoint_allowed(repo_id: str) -> None:
    """Refuse every checkpoint but Depth Anything V2 Small, before any download."""
    key = repo_id.strip().lower()
    if key in ALLOWED_REPO_IDS:
        return
    variant = next((v for v in NON_COMMERCIAL_VARIANTS if v in key.replace("_", "-").split("/")[-1]), None)
    if variant is not None:
        raise ConversionError(
            f"{repo_id!r} is a Depth Anything {variant} checkpoint: Depth Anything V2 Base, Large and Giant "
            "weights are licensed CC-BY-NC-4.0 (non-commercial use only) and cannot be served here; "
            f"use {SMALL_REPO_ID!r} (Apache-2.0) instead"
        )
    raise ConversionError(
        f"{repo_id!r} is not an allowed Depth Anything checkpoint; only {SMALL_REPO_ID!r} is allowed "
        "because its Apache-2.0 license has been checked (Base/Large/Giant are CC-BY-NC-4.0, non-commercial)"
    )


def small_config() -> DepthAnythingConfig:
    """The V2 Small architecture (ViT-S/14 backbone, 24.8 M parameters), as in the hub repository's config."""
    transformers = _import("transformers")
    backbone = transformers.Dinov2Config(
        image_size=DEFAULT_SIZE, patch_size=PATCH_SIZE, hidden_size=SMALL_HIDDEN_SIZE, num_attention_heads=6,
        out_indices=[3, 6, 9, 12], reshape_hidden_states=False,
    )
    return transformers.DepthAnythingConfig(backbone_config=backbone, depth_estimation_type="relative")


def build_model(config: DepthAnythingConfig | None = None) -> DepthAnythingForDepthEstimation:
    """A randomly initialised model (no download); by default with the V2 Small architecture."""
    transformers = _import("transformers")
    model = transformers.DepthAnythingForDepthEstimation(config if config is not None else small_config())
    return _prepare(model)


def load_pretrained(repo_id: str = SMALL_REPO_ID, revision: str = SMALL_REVISION) -> DepthAnythingForDepthEstimation:
    """Download (or take from the hub cache) the pretrained Small model at a pinned revision."""
    check_checkpoint_allowed(repo_id)
    if not revision.strip():
        raise ConversionError(f"no revision given for {repo_id!r}; pin a commit, e.g. {SMALL_REVISION}")
    transformers = _import("transformers")
    try:
        model = transformers.DepthAnythingForDepthEstimation.from_pretrained(repo_id, revision=revision)
    except OSError as exc:
        raise ConversionError(
            f"could not load {repo_id!r} at revision {revision!r}: {exc}; this needs network access to the "
            "Hugging Face hub (or a filled HF cache), and the revision must exist"
        ) from exc
    hidden = model.config.backbone_config.hidden_size
    if hidden != SMALL_HIDDEN_SIZE:
        raise ConversionError(
            f"{repo_id!r}@{revision} has backbone width {hidden}, not the Small model's {SMALL_HIDDEN_SIZE}; "
            "refusing it: only the Apache-2.0 Small weights may be used"
        )
    return _prepare(model)


def _prepare(model: DepthAnythingForDepthEstimation) -> DepthAnythingForDepthEstimation:
    # Plain MatMul/Softmax attention exports to a simpler graph than SDPA's decomposition
    # (which adds IsNaN/Where guards per layer) and is what TensorRT's attention fusion matches.
    model.set_attn_implementation("eager")
    return model.eval()


def check_size(height: int, width: int) -> None:
    for name, value in (("height", height), ("width", width)):
        if value <= 0 or value % PATCH_SIZE:
            raise ConversionError(
                f"{name} {value} is not a positive multiple of the {PATCH_SIZE}-pixel patch size; "
                f"use e.g. {DEFAULT_SIZE} (= 37 x {PATCH_SIZE})"
            )


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ConversionError(f"opset {opset} is too old; use opset {MIN_OPSET} or newer (default {DEFAULT_OPSET})")


def _wrap(model: DepthAnythingForDepthEstimation) -> torch.nn.Module:
    """Rename the tensors and add the channel axis: image [N,3,H,W] -> depth [N,1,H,W]."""
    torch = _import("torch")

    class DepthContract(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=image).predicted_depth.unsqueeze(1)

    return DepthContract(model).eval()


def _torch_export(module: torch.nn.Module, path: Path, height: int, width: int, opset: int) -> None:
    # Exporter choice (torch 2.13): the torch.export-based ("dynamo") exporter, which needs onnxscript.
    # The legacy TorchScript exporter (dynamo=False) is deprecated and, on this model, writes a wrong
    # output shape into the graph (the height axis is labelled "batch"), although it computes correctly.
    # The dynamo exporter gives a static H/W, a symbolic batch axis, and constant-folds the bicubic
    # position-embedding resize. Its example batch must be >= 2: torch.export specialises sizes 0 and 1.
    torch = _import("torch")
    _import("onnxscript")
    example = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim(BATCH_AXIS, min=1, max=4096)
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={INPUT_NAME: {0: batch}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value.type.tensor_type.shape.dim]


def _check_contract(model: onnx.ModelProto, height: int, width: int, opset: int) -> None:
    expected = {
        INPUT_NAME: (model.graph.input, [BATCH_AXIS, 3, height, width]),
        OUTPUT_NAME: (model.graph.output, [BATCH_AXIS, 1, height, width]),
    }
    for name, (values, dims) in expected.items():
        if [v.name for v in values] != [name]:
            raise ConversionError(f"exported graph has tensors {[v.name for v in values]}, expected [{name!r}]")
        value = values[0]
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ConversionError(f"{name!r} is not float32 in the exported graph")
        if _dims(value) != dims:
            raise ConversionError(f"{name!r} has shape {_dims(value)}, expected {dims}; the exporter changed")
    actual = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if actual != opset:
        raise ConversionError(
            f"asked for opset {opset} but the exporter wrote opset {actual} (ONNX version conversion failed); "
            f"use opset {DEFAULT_OPSET}"
        )


def _metadata(height: int, width: int, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "model": "Depth Anything V2 Small",
        "license": "Apache-2.0",
        "depth_kind": "inverse_relative",
        "depth_meaning": "relative inverse depth (disparity): larger = nearer, unknown scale and shift",
        "normalization": "imagenet",
        "normalization_mean": ",".join(map(str, IMAGENET_MEAN)),
        "normalization_std": ",".join(map(str, IMAGENET_STD)),
        "input_size": f"{height}x{width}",
        **extra,
    }


def export_onnx(
    model: DepthAnythingForDepthEstimation,
    path: str | Path,
    height: int = DEFAULT_SIZE,
    width: int = DEFAULT_SIZE,
    opset: int = DEFAULT_OPSET,
    *,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export ``model`` to ``path`` with the ``image`` -> ``depth`` contract, check it, tag its metadata."""
    check_size(height, width)
    _check_opset(opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _torch_export(_wrap(model.eval()), path, height, width, opset)
    except ConverterError:
        raise
    except Exception as exc:  # the exporter raises many unrelated types; keep its message
        raise ConversionError(f"torch.onnx.export of Depth Anything failed: {exc}") from exc
    exported = onnx.load(str(path))
    try:
        onnx.checker.check_model(exported, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ConversionError(f"exported Depth Anything graph is not valid ONNX: {exc}") from exc
    _check_contract(exported, height, width, opset)
    onnx.helper.set_model_props(exported, _metadata(height, width, extra_metadata or {}))
    onnx.save(exported, str(path))
    log.info("exported Depth Anything to %s (%dx%d, opset %d)", path, height, width, opset)
    return path


def to_served_depth(exported: onnx.ModelProto, height: int, width: int) -> onnx.ModelProto:
    """An ``export_onnx`` graph (opset 17) as the ``depth`` model serves it: the contract checked, the disparity
    flipped to farther-is-larger relative depth, the metadata saying so."""
    props = {p.key: p.value for p in exported.metadata_props}
    if props.get("depth_kind") != "inverse_relative":
        raise ConversionError(f"expected an export_onnx graph (depth_kind inverse_relative), got {props}")
    served = append_disparity_flip(to_serving_contract(exported, OUTPUT_NAME, (height, width)))
    props.update(depth_kind="relative", depth_meaning=SERVED_DEPTH_MEANING,
                 served_transform="depth = max(disparity) - disparity, per image")
    onnx.helper.set_model_props(served, props)
    return served


def export_served(height: int, width: int, repo_id: str = SMALL_REPO_ID,
                  revision: str = SMALL_REVISION) -> onnx.ModelProto:
    """Download the pinned Small weights and export the ``depth`` model: ``image`` [batch, 3, height, width]
    (ImageNet-normalised RGB) -> ``depth`` [batch, 1, height, width], relative, larger = farther."""
    require_hub_packages()
    check_size(height, width)
    model = load_pretrained(repo_id, revision)
    extra = {"source": f"hf://{repo_id}", "source_revision": revision}
    with tempfile.TemporaryDirectory(prefix="imageserve-depth-anything-") as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", height, width, TARGET_OPSET, extra_metadata=extra)
        exported = onnx.load(str(path))
    return to_served_depth(exported, height, width)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters.hub_depth_anything",
        description="Download Depth Anything V2 Small (Apache-2.0) and export it to ONNX (needs network access).",
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the .onnx file")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="square input size, a multiple of 14")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, >= {MIN_OPSET}")
    parser.add_argument("--repo", default=SMALL_REPO_ID, help="hub repository (only the Small one is allowed)")
    parser.add_argument("--revision", default=SMALL_REVISION, help="hub commit or tag to download")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_size(args.size, args.size)
        model = load_pretrained(args.repo, args.revision)
        extra = {"source": f"hf://{args.repo}", "source_revision": args.revision}
        path = export_onnx(model, args.out, args.size, args.size, args.opset, extra_metadata=extra)
    except ConverterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (image [batch,3,{args.size},{args.size}] -> depth, inverse relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
