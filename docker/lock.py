"""Write the hash-locked requirements the images install: ``python docker/lock.py`` (``make image-locks``).

Each image installs its extras of pyproject.toml in two steps: every distribution from
``docker/requirements/<image>.txt`` with ``pip install --require-hashes --no-deps`` (exact versions,
and the sha256 of every x86_64 Linux or pure-Python wheel of that version, from the index's JSON
simple API, so whichever compatible wheel pip picks on the build machine is covered), then the
project alone with ``--no-deps --no-build-isolation``. pip's resolver makes the lock, for the image's
Python and platform, from pyproject.toml's pins and the build backend; no version is written here.
Rerun it after changing a pin (tests/helm/test_dockerfiles.py fails on a stale lock).

    python docker/lock.py            # both images
    python docker/lock.py gateway    # one
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "docker" / "requirements"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
INDEX = os.environ.get("IMAGESERVE_LOCK_INDEX", "https://pypi.org/simple")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


@dataclass(frozen=True)
class Image:
    name: str
    python: str  # the base image's Python, major.minor
    extras: str

    @property
    def path(self) -> Path:
        return LOCKS / f"{self.name}.txt"


IMAGES = (Image("gateway", "3.11", "gateway"), Image("triton", "3.12", "serving,build"))


def build_requirements() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]


def resolve(image: Image) -> list[tuple[str, str]]:
    """(name, version) of every distribution the image needs, the project itself left out."""
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--disable-pip-version-check", "--report", str(report), "--only-binary=:all:",
                   "--python-version", image.python, "--implementation", "cp", *platforms,
                   "--target", str(Path(work) / "target"), f".[{image.extras}]", *build_requirements()]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            raise SystemExit(f"docker/lock.py: pip could not resolve the {image.name} image:\n{result.stderr[-2000:]}")
        installs = json.loads(report.read_text())["install"]
    locked = []
    for item in installs:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if name == PROJECT:
            continue  # installed from the build context
        locked.append((re.sub(r"[-_.]+", "-", name).lower(), version))
    return sorted(locked)


def wheel_hashes(name: str, version: str) -> list[str]:
    """sha256 of every wheel of ``name`` ``version`` that a CPython on x86_64 Linux could install."""
    request = urllib.request.Request(f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    prefix = re.sub(r"[-.]+", "_", name).lower() + "-" + version + "-"
    hashes = sorted({file["hashes"]["sha256"] for file in files
                     if file["filename"].lower().startswith(prefix) and _installable(file["filename"])})
    if not hashes:
        raise SystemExit(f"docker/lock.py: {INDEX} lists no x86_64 Linux wheel of {name} {version}")
    return hashes


def _installable(filename: str) -> bool:
    """A pure-Python wheel, or one for glibc Linux on x86_64 (its platform tags, dot-separated, last)."""
    if not filename.endswith(".whl"):
        return False
    platforms = filename.removesuffix(".whl").split("-")[-1].split(".")
    return "any" in platforms or any(tag.startswith(("manylinux", "linux_")) and tag.endswith("x86_64")
                                     for tag in platforms)


def render(image: Image, locked: list[tuple[str, str]]) -> str:
    lines = [f"# The {image.name} image's distributions (pyproject.toml extras [{image.extras}], the build backend),",
             f"# resolved for CPython {image.python} on x86_64 Linux by docker/lock.py: regenerate, never edit.",
             f"# python-version: {image.python}", f"# extras: {image.extras}"]
    for name, version in locked:
        hashes = [f"--hash=sha256:{sha256}" for sha256 in wheel_hashes(name, version)]
        lines.append(" \\\n    ".join([f"{name}=={version}", *hashes]))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    chosen = [image for image in IMAGES if not argv or image.name in argv]
    if not chosen or len(chosen) < len(set(argv)):
        raise SystemExit(f"usage: python docker/lock.py [{' '.join(image.name for image in IMAGES)}]")
    LOCKS.mkdir(exist_ok=True)
    for image in chosen:
        image.path.write_text(render(image, resolve(image)))
        print(f"wrote {image.path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
