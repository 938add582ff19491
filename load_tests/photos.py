"""Benchmark photos made from a real portrait at the sizes users send."""

from __future__ import annotations

import io

import numpy as np
import skimage.data
from PIL import Image

# name -> (width, height)
SIZES = {"0.3MP": (640, 480), "1MP": (1152, 864), "3MP": (2048, 1536), "12MP": (4000, 3000)}


def photo_jpeg(size: str, quality: int = 90) -> bytes:
    width, height = SIZES[size]
    portrait = Image.fromarray(skimage.data.astronaut())
    canvas = portrait.resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def machine_description() -> str:
    import os
    import platform

    import onnxruntime
    import PIL

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {memory_gib:.0f} GiB RAM, no GPU; "
        f"Python {platform.python_version()}, Triton 2.51.0 (nvidia-pytriton 0.7.0), "
        f"ONNX Runtime {onnxruntime.__version__}, Pillow {PIL.__version__}"
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))
