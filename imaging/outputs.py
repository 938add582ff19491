"""Model outputs -> the pixels of the results at the output size (``imaging.encode`` makes the files).

Alpha is 8-bit, cutouts RGBA with the colour zeroed where the matte is 0. Depth is 16-bit, linear in depth,
near = bright (``imaging.depth.nearness`` x ``UINT16_MAX``).
"""

from __future__ import annotations

import cv2
import numpy as np

UINT16_MAX = 65535


def matte_to_uint8(matte: np.ndarray) -> np.ndarray:
    """A float matte (values clipped to [0, 1]) -> uint8, rounded (OpenCV: 5x numpy's rint/clip/astype at 12 MP)."""
    # THRESH_TOZERO clips the negatives; cv2.max(matte, 0.0) would read 0.0 as a 4-channel scalar and turn a
    # 1x1 matte into 4x1.
    _, clipped = cv2.threshold(np.ascontiguousarray(matte, dtype=np.float32), 0.0, 0.0, cv2.THRESH_TOZERO)
    return cv2.convertScaleAbs(clipped.reshape(matte.shape), alpha=255.0)


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
