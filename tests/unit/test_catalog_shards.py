"""The catalog's ``weights_shards`` (a tfjs model's weight files beside its model.json): every shard pinned by its
own sha256, bad keys refused with what to fix, and fetch extracting and verifying each shard."""

import dataclasses
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from converters import fetch
from converters.catalog import CATALOG_PATH, get_source, parse_catalog
from converters.errors import CatalogError, FetchError

THICK = ("upscale_psnr_x4",)


def test_the_thick_upscalers_pin_model_json_and_every_shard() -> None:
    for name in THICK:
        source = get_source(name)
        assert source.registry == "npm" and source.conversion == "tfjs_to_onnx" and "MIT" in source.license
        assert source.file.endswith("/model.json") and len(source.weights_shards) == 7
        assert all(shard.startswith(source.file.removesuffix("model.json")) for shard in source.weights_shards)
        assert len(set(source.weights_shards_sha256)) == 7 and source.scale == int(name[-1])
    assert get_source("upscale_fast").weights_shards == ()  # the default


def test_bad_shard_keys_say_what_to_fix() -> None:
    text = CATALOG_PATH.read_text()
    start = text.index("[models.upscale_psnr_x4]")
    for old, new, message in [
        (r"weights_shards_sha256 = \[[^\]]*\]\n", "", "weights_shards and weights_shards_sha256 come together"),
        ('"c2f3147c', '"XYZ3147c', "weights_shards_sha256 must list one sha256 .* per shard"),
        ('    "c2f3147c', '    # "c2f3147c', "weights_shards_sha256 must list one sha256 .* per shard"),
        (r"weights_shards = \[", "weights_shards = [1, ", "weights_shards must be a non-empty list of file paths"),
    ]:
        edited = text[:start] + re.sub(old, new, text[start:], count=1)
        with pytest.raises(CatalogError, match=r"\[models.upscale_psnr_x4\]: " + message):
            parse_catalog(edited)


def test_fetch_extracts_and_verifies_every_shard_beside_model_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"package/m/model.json": b"{}", "package/m/s1.bin": b"one", "package/m/s2.bin": b"two"}
    archive = tmp_path / "pkg-1.0.0.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    source = dataclasses.replace(
        get_source("upscale_psnr_x4"), package="pkg", version="1.0.0",
        package_sha256=hashlib.sha256(archive.read_bytes()).hexdigest(), file="package/m/model.json",
        file_sha256=digest["package/m/model.json"], weights_shards=("package/m/s1.bin", "package/m/s2.bin"),
        weights_shards_sha256=(digest["package/m/s1.bin"], digest["package/m/s2.bin"]))
    downloads = []

    def download(src: object, into: Path) -> Path:
        downloads.append(src)
        copy = into / archive.name
        copy.write_bytes(archive.read_bytes())
        return copy

    monkeypatch.setattr(fetch, "_download", download)
    monkeypatch.setenv("IMAGESERVE_CACHE", str(tmp_path / "cache"))
    path = fetch.fetch_source(source)
    assert [p.read_bytes() for p in fetch.shard_paths(source, path)] == [b"one", b"two"]
    fetch.fetch_source(source)
    assert len(downloads) == 1  # all cached
    fetch.shard_paths(source, path)[1].unlink()
    fetch.fetch_source(source)
    assert len(downloads) == 2  # a missing shard is fetched again
    with pytest.raises(FetchError, match=r"package/m/s2.bin: sha256 .* does not match the catalog's 0{64}"):
        fetch.fetch_source(dataclasses.replace(source, weights_shards_sha256=(digest["package/m/s1.bin"], "0" * 64)))
