"""The privacy scan: photos carrying a random marker, what a leak of them would look like, and the
search of every file written since a moment for it (tests/hostile/test_privacy.py, test_stub_crash.py)."""

from __future__ import annotations

import base64
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.hostile import images as img

# Installed toolchains under $HOME: large, and nothing in the stack writes there.
SKIPPED_DIRS = {".git", ".pyenv", ".rustup", ".cargo", ".m2", "proc", "sys"}


def marked_photos(marker: bytes, pixels: np.ndarray, step: int = 1) -> dict[str, tuple[bytes, str]]:
    """JPEG and PNG of the photo (every ``step``-th pixel) with ``pixels`` pasted in and ``marker`` in their
    metadata."""
    photo = img.photo()[::step, ::step].copy()
    photo[:pixels.shape[0], :pixels.shape[1]] = pixels
    exif = Image.Exif()
    exif[0x010E] = marker.decode()  # ImageDescription
    jpeg = img.encode(photo, "JPEG", quality=95, exif=exif, comment=marker)
    info = PngInfo()
    info.add_text("Comment", marker.decode())
    png = img.encode(photo, "PNG", pnginfo=info)
    return {"jpeg": (jpeg, "image/jpeg"), "png": (png, "image/png")}


def needles(marker: bytes, files: list[bytes], pixels: np.ndarray) -> dict[str, bytes]:
    """What a leak would look like on disk: the marker in several encodings, file slices, raw pixel rows."""
    found = {"marker": marker, "marker hex": marker.hex().encode()}
    for shift in range(3):  # base64 of the marker at each alignment: the 4-character groups made of marker bytes only
        first, last = -(-shift // 3), (shift + len(marker)) // 3
        found[f"marker base64/{shift}"] = base64.b64encode(b"\x00" * shift + marker)[4 * first:4 * last]
    for index, data in enumerate(files):
        middle = len(data) // 2
        found[f"file {index} bytes"] = data[middle:middle + 48]
    found["pixel row"] = pixels[0].tobytes()
    return found


def written_files(roots: list[Path], since: float) -> Iterator[Path]:
    """Regular files under ``roots`` modified at or after ``since`` (no symlinks followed)."""
    stack = [root for root in roots if root.is_dir()]
    seen: set[Path] = set()
    while stack:
        directory = stack.pop()
        if directory in seen:
            continue
        seen.add(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime >= since:
                    yield Path(entry.path)
            except OSError:
                continue


def leaks_in(path: Path, patterns: dict[str, bytes]) -> list[str]:
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return []
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as content:
                return [f"{name} in {path}" for name, needle in patterns.items() if content.find(needle) >= 0]
    except (OSError, ValueError):
        return []


def stack_dirs(*pids: int) -> list[Path]:
    """Working directories of the stack's processes and their children."""
    dirs = set()
    for pid in pids:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                dirs.add(Path(process.cwd()))
            except psutil.Error:
                continue
    return sorted(dirs)
