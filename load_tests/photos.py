"""Benchmark photos made from a real portrait at the sizes users send, and the machine they run on."""

from __future__ import annotations

import io
import os
import platform
from functools import cache
from importlib import metadata

import numpy as np
import skimage.data
from PIL import Image

# name -> (width, height)
SIZES = {"0.3MP": (640, 480), "1MP": (1152, 864), "3MP": (2048, 1536), "12MP": (4000, 3000)}
# Sensor-like grain (standard deviation in 8-bit levels). An upscaled 512-px portrait
# is unnaturally smooth: without grain its 12 MP JPEG is ~1 MB and decodes faster
# than a camera's (3-5 MB); with it, ~1.6 MB, closer to what users send.
GRAIN_SIGMA = 3.0


def check_sizes(names: list[str]) -> list[str]:
    """The photo size names, or a ValueError that lists the known ones."""
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise ValueError(f"unknown photo size(s) {unknown or names}; choose from {', '.join(SIZES)}")
    return names


@cache
def photo_jpeg(size: str, quality: int = 90) -> bytes:
    """The astronaut portrait (scikit-image) resized to ``size``, with grain, as a JPEG; cached and reproducible."""
    width, height = SIZES[check_sizes([size])[0]]
    portrait = Image.fromarray(skimage.data.astronaut())
    pixels = np.asarray(portrait.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = np.random.default_rng(seed=width).normal(0.0, GRAIN_SIGMA, pixels.shape)
    canvas = Image.fromarray(np.clip(np.rint(pixels + grain), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> str:
    """Cores, memory, OS and the versions that shape the numbers, in one line."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{name} {_version(package)}" for name, package in (
        ("ONNX Runtime", "onnxruntime"), ("Pillow", "pillow"), ("numpy", "numpy"), ("tritonclient", "tritonclient"),
        ("FastAPI", "fastapi"), ("uvicorn", "uvicorn"), ("locust", "locust"),
    ))
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {memory_gib:.0f} GiB RAM, no GPU; "
        f"Linux {platform.release()}; Python {platform.python_version()}, "
        f"Triton 2.51.0 (nvidia-pytriton {_version('nvidia-pytriton')}), {versions}"
    )
