"""Model input tensors from RGB images."""

from __future__ import annotations

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
NORMALIZATIONS = ("unit", "imagenet", "symmetric")  # converters/catalog.toml explains each


def model_input(rgb: Image.Image, height: int, width: int, normalization: str) -> np.ndarray:
    """Resize (without keeping the aspect ratio) and normalise to a float32 CHW tensor."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization {normalization!r} is not one of {NORMALIZATIONS}")
    resized = rgb.resize((width, height), Image.Resampling.BILINEAR)
    return normalize(np.asarray(resized), normalization)


def normalize(hwc: np.ndarray, normalization: str) -> np.ndarray:
    """An 8-bit RGB array (H, W, 3) as a float32 CHW tensor in the named normalisation."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization {normalization!r} is not one of {NORMALIZATIONS}")
    if hwc.dtype != np.uint8 or hwc.ndim != 3 or hwc.shape[2] != 3:
        raise ValueError(f"normalize needs an 8-bit RGB array of shape (H, W, 3), got {hwc.dtype} {hwc.shape}")
    pixels = hwc.astype(np.float32).transpose(2, 0, 1)
    if normalization == "symmetric":  # (RGB - 127.5) / 127.5, in [-1, 1] (MODNet, MediaPipe's face detector)
        tensor = (pixels - np.float32(127.5)) / np.float32(127.5)
    else:
        tensor = pixels / np.float32(255.0)
        if normalization == "imagenet":
            tensor = (tensor - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(tensor, dtype=np.float32)
