"""Seed inputs for the fuzzers, generated in code: one small file per container variant the check reads."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

PIXELS = np.random.default_rng(7).integers(0, 255, (12, 17, 3), dtype=np.uint8)


def _encode(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def seeds() -> dict[str, bytes]:
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "baseline.jpg": _encode("JPEG", quality=80),
        "progressive.jpg": _encode("JPEG", quality=80, progressive=True),
        "exif.jpg": _encode("JPEG", quality=50, exif=exif),
        "grey.jpg": _grey_jpeg(),
        "rgb.png": _encode("PNG"),
        "palette.png": _palette_png(),
        "lossy.webp": _encode("WEBP", quality=50),
        "lossless.webp": _encode("WEBP", lossless=True),
        "extended.webp": _encode("WEBP", quality=50, exif=exif),
        "other.gif": _encode("GIF"),
    }


def _grey_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).convert("L").save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


def _palette_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).quantize(colors=8).save(buffer, format="PNG", transparency=0)
    return buffer.getvalue()


def write_seeds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in seeds().items():
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def fuzz(argv: list[str], target: Callable[[bytes], None]) -> None:
    """Run atheris on ``target``; ``--seed DIR`` first writes the generated seed corpus into DIR."""
    import atheris  # only the harnesses need it

    if len(argv) >= 3 and argv[1] == "--seed":
        write_seeds(Path(argv[2]))
        argv = [argv[0], *argv[2:]]
    atheris.Setup(argv, target)
    atheris.Fuzz()
