"""Model outputs -> encoded images at the output size.

Depth PNGs are 16-bit greyscale, linear in depth, near = bright:
``pixel = round(65535 * (far - d) / (far - near))`` where ``near`` and ``far``
are the smallest and largest depth in the image (metres for FastDepth), so
``d = far - pixel / 65535 * (far - near)``. ``near`` and ``far`` are returned
beside the PNG. Alpha PNGs are 8-bit greyscale, cutouts RGBA. No output
carries EXIF, XMP or any other metadata.
"""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
from PIL import Image

UINT16_MAX = 65535


def _resize_float(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if plane.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {plane.shape}")
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def encode_png(image: Image.Image, compress_level: int) -> bytes:
    """PNG with pixels only: IHDR, IDAT, IEND, deflated with zlib's run-length strategy.

    On real 1 MP outputs ``Z_RLE`` is smaller than the default strategy at level 1 for every output and
    faster for depth and cutouts (``python -m load_tests.bench --sections hot_path``, "Hot-path costs" in
    load_tests/results/bench.md).

    Pillow's PNG writer copies some of ``image.info`` (ICC profile,
    transparency, ...) into the file; the info is emptied first so nothing
    from an input photo can reach an output, whichever image is passed in.
    """
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level, compress_type=zlib.Z_RLE)
    return buffer.getvalue()


def depth_to_uint16(depth: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Depth map (larger = farther) -> (uint16 map near = bright at ``size``, near, far)."""
    near, far = float(depth.min()), float(depth.max())
    resized = _resize_float(depth, size)
    span = far - near
    if span <= 0.0:
        scaled = np.full(resized.shape, UINT16_MAX, dtype=np.float32)
    else:
        scaled = (far - resized) * (UINT16_MAX / span)
    return np.clip(np.rint(scaled), 0, UINT16_MAX).astype(np.uint16), near, far


def matte_to_uint8(matte: np.ndarray) -> np.ndarray:
    """A float matte (values clipped to [0, 1]) -> uint8, rounded (OpenCV: 5x numpy's rint/clip/astype at 12 MP)."""
    # THRESH_TOZERO clips the negatives; cv2.max(matte, 0.0) would read 0.0 as a 4-channel scalar and turn a
    # 1x1 matte into 4x1.
    _, clipped = cv2.threshold(np.ascontiguousarray(matte, dtype=np.float32), 0.0, 0.0, cv2.THRESH_TOZERO)
    return cv2.convertScaleAbs(clipped.reshape(matte.shape), alpha=255.0)


def depth_png(depth: np.ndarray, size: tuple[int, int], compress_level: int) -> tuple[bytes, float, float]:
    plane, near, far = depth_to_uint16(depth, size)
    return encode_png(Image.fromarray(plane), compress_level), near, far


def matte_png(matte: np.ndarray, compress_level: int) -> bytes:
    """A matte already at the output size (float in [0, 1], e.g. ``imaging.matte.refine``) -> 8-bit PNG."""
    return encode_png(Image.fromarray(matte_to_uint8(matte)), compress_level)


def cutout_rgba(rgb: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """Colour (H, W, 3) uint8 + uint8 matte (H, W) -> RGBA, colour zeroed under alpha 0.

    Colour under fully transparent pixels is zeroed: it is invisible, compresses
    far better, and leaks nothing of the removed background.
    """
    if rgb.shape[:2] != matte.shape or matte.dtype != np.uint8:
        raise ValueError(f"colour is {rgb.shape}, the matte {matte.dtype} {matte.shape}")
    height, width = matte.shape
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = rgb
    rgba[..., :3][matte == 0] = 0
    rgba[..., 3] = matte
    return rgba


def refined_cutout_png(colour: np.ndarray, matte: np.ndarray, compress_level: int) -> bytes:
    """Colour (H, W, 3) uint8 (e.g. ``imaging.matte.estimate_foreground``) + a matte at that size -> RGBA PNG."""
    return encode_png(Image.fromarray(cutout_rgba(colour, matte_to_uint8(matte))), compress_level)
