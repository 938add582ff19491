"""Build a Triton model repository: converted weights, generated configs, warm-up data."""

from __future__ import annotations

import io
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from contract.product import PRODUCT
from converters.catalog import HUB_REGISTRY, ModelSource, serving_catalog
from converters.errors import ConversionError
from converters.fetch import atomic_write, fetch_source, progress, shard_paths, weights_path
from converters.onnx_edit import append_minmax_rescale, to_serving_contract, with_named_io
from converters.triton_config import (
    WARMUP_OUTPUT_SIZE,
    WARMUP_OUTPUT_SIZE_FILE,
    WARMUP_PHOTO_FILE,
    python_model_file,
    repository_configs,
    served_sources,
    to_pbtxt,
    warmup_file,
    warmup_model_outputs,
    warmup_parameters,
)

WARMUP_PHOTO = Path(__file__).with_name("data") / "warmup_photo.jpg"
WARMUP_PART_SIZE = (64, 48)  # (width, height) of the warm-up's image parts: a new background, a mask to erase
# Bump when a conversion changes so that built models are redone.
CONVERTER_REVISION = "1"


def convert(source: ModelSource, source_file: Path) -> onnx.ModelProto:
    """Source model file -> ONNX model following the serving contract."""
    if source.conversion == "tflite_to_onnx":
        from converters.tflite_to_onnx import convert_tflite

        # Raw-tensor models (output_shapes) name their outputs; a single-output model keeps the name `alpha`.
        return convert_tflite(source_file.read_bytes(), source.output_shapes or None)
    if source.conversion == "ncnn_to_onnx":
        from converters.ncnn_to_onnx import convert_ncnn

        return convert_ncnn(source_file.read_text(), weights_path(source, source_file).read_bytes())
    if source.conversion == "tfjs_to_onnx":
        from converters.tfjs_to_onnx import convert_tfjs

        return convert_tfjs(source_file.read_text(), {p.name: p.read_bytes() for p in shard_paths(source, source_file)})
    model = onnx.load(str(source_file))
    if source.conversion == "onnx_upgrade":
        return to_serving_contract(model, source.output, source.input_size)
    if source.conversion == "onnx_as_is":  # a pixel model's own tensors, read by its step
        onnx.checker.check_model(model, full_check=True)
        return model
    if source.conversion == "onnx_named_io":  # a called model's own tensors, named by the catalog
        return with_named_io(model, source.input_shapes, source.output_shapes)
    if source.conversion == "onnx_first_output":
        return append_minmax_rescale(to_serving_contract(model, source.output, source.input_size, keep_output=0))
    raise ConversionError(f"model {source.name!r}: unknown conversion {source.conversion!r}")


def convert_hub(source: ModelSource) -> onnx.ModelProto:
    """A hub source (catalog [hub.*]): downloaded at its pinned commit and exported by its exporter."""
    if source.conversion == "hub_depth_anything":
        from converters import hub_depth_anything

        return hub_depth_anything.export_served(source.input_height, source.input_width, source.package,
                                                source.version)
    raise ConversionError(f"model {source.name!r}: unknown hub exporter {source.conversion!r}")


def require_exporters(sources: dict[str, ModelSource]) -> None:
    """Refuse before anything is written when a hub source's exporter cannot run here (no hub packages)."""
    if any(source.conversion == "hub_depth_anything" for source in sources.values()):
        from converters import hub_depth_anything

        hub_depth_anything.require_hub_packages()


def _stamp(source: ModelSource) -> str:
    if source.registry == HUB_REGISTRY:
        origin = f"{source.registry}:{source.package}@{source.version} {source.input_height}x{source.input_width}"
        return f"{origin} revision {CONVERTER_REVISION}\n"
    return f"{source.file_sha256} revision {CONVERTER_REVISION}\n"


def build_weights(repository: Path, sources: dict[str, ModelSource]) -> list[str]:
    """Convert every model whose ``model.onnx`` is missing or stale; returns the names rebuilt."""
    rebuilt = []
    for name, source in sources.items():
        target = repository / name / "1" / "model.onnx"
        stamp = target.with_suffix(".onnx.source")
        if target.exists() and stamp.exists() and stamp.read_text() == _stamp(source):
            continue
        started = time.perf_counter()
        model = convert_hub(source) if source.registry == HUB_REGISTRY else convert(source, fetch_source(source))
        model.producer_name = "imageserve.converters"
        atomic_write(target, model.SerializeToString())
        atomic_write(stamp, _stamp(source).encode())
        progress(f"{name}: converted ({source.conversion}, {target.stat().st_size / 2**20:.1f} MiB ONNX) in "
                 f"{time.perf_counter() - started:.1f} s")
        rebuilt.append(name)
    return rebuilt


def serialized_bytes_tensor(data: bytes) -> bytes:
    """Triton's raw encoding of one BYTES element: little-endian uint32 length + bytes."""
    return struct.pack("<I", len(data)) + data


def _raw_value(value: int | float | str) -> bytes:
    """One tensor element in Triton's raw little-endian encoding (int32, fp32 or BYTES)."""
    if isinstance(value, str):
        return serialized_bytes_tensor(value.encode())
    return struct.pack("<i", value) if isinstance(value, int) else struct.pack("<f", value)


def warmup_part() -> bytes:
    """A PNG the warm-up sends as every image part: grey with a white disc (a new background; a mask)."""
    width, height = WARMUP_PART_SIZE
    rows, cols = np.mgrid[0:height, 0:width]
    disc = np.hypot(rows - height / 2, cols - width / 2) < min(width, height) / 4
    buffer = io.BytesIO()
    Image.fromarray(np.where(disc, 255, 96).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def remove_stale_models(repository: Path, current: set[str]) -> list[str]:
    """Delete model folders the declaration no longer has (a renamed operation, variant or catalog model): Triton
    would otherwise try to load them, with tensors the steps no longer make or without a config at all."""
    stale = [d for d in sorted(repository.iterdir()) if d.is_dir() and d.name not in current
             and not d.name.startswith(".")] if repository.is_dir() else []
    for directory in stale:
        shutil.rmtree(directory)
    return [d.name for d in stale]


def write_configs(repository: Path, sources: dict[str, ModelSource], target: str) -> None:
    """Write config.pbtxt (and model.py for python-backend models) of every model."""
    configs = repository_configs(sources, target)
    remove_stale_models(repository, set(configs))
    for name, config in configs.items():
        directory = repository / name
        atomic_write(directory / "config.pbtxt", to_pbtxt(config).encode())
        code = python_model_file(name, config)
        if code is not None:
            atomic_write(directory / "1" / "model.py", code.encode())
        else:
            (directory / "1").mkdir(parents=True, exist_ok=True)
        if name == "preprocess":  # its warm-up reads a real photo
            warmup = serialized_bytes_tensor(WARMUP_PHOTO.read_bytes())
            atomic_write(directory / "warmup" / WARMUP_PHOTO_FILE, warmup)
        if name == "postprocess":  # its warm-up needs a real output size (int32 height, width) and parameters
            atomic_write(directory / "warmup" / WARMUP_OUTPUT_SIZE_FILE, struct.pack("<2i", *WARMUP_OUTPUT_SIZE))
            for part in PRODUCT.image_parts():
                atomic_write(directory / "warmup" / warmup_file(part.tensor), serialized_bytes_tensor(warmup_part()))
            for tensor, value in warmup_parameters().items():
                atomic_write(directory / "warmup" / warmup_file(tensor), _raw_value(value))
            for tensor, plane in warmup_model_outputs(served_sources(sources)).items():
                atomic_write(directory / "warmup" / warmup_file(tensor), plane.tobytes())


def build_repository(repository: Path, target: str, with_weights: bool = True,
                     depth_model: str | None = None) -> list[str]:
    """Configs and (``with_weights``) converted models; ``depth_model`` is the depth model's source
    (converters/catalog.py; None: ``$IMAGESERVE_DEPTH_MODEL``, by default FastDepth)."""
    sources = serving_catalog(depth_model)
    if with_weights:
        require_exporters(served_sources(sources))
    write_configs(repository, sources, target)
    # Only what the product serves: a catalogued model no ensemble uses would be a folder without a config.
    return build_weights(repository, served_sources(sources)) if with_weights else []

