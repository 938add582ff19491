"""Upscaling's memory is bounded by its output, whatever the photo: the largest photo ``/v1/upscale`` accepts at
scale 4 (``LIMITS.max_upscaled_pixels`` of result) runs with the 8-bit result, a row of tiles and a batch of network
input and output (measured: 93 MiB for a 48 MiB result), never a float
copy of the whole image (which alone would be 12 bytes per result pixel)."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np

from contract.product import LIMITS
from imaging.tiles import OVERLAP_PX, upscale_tiled

SCALE, TILE, BATCH = 4, 192, 2  # as served (converters/catalog.toml, converters/triton_config.py)


def nearest(tiles: np.ndarray) -> np.ndarray:
    """A real network stand-in of the same shapes: each tile enlarged 4x by OpenCV."""
    out = np.empty((*tiles.shape[:2], tiles.shape[2] * SCALE, tiles.shape[3] * SCALE), np.float32)
    for n, tile in enumerate(tiles):
        for c, plane in enumerate(tile):
            out[n, c] = cv2.resize(plane, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    return out


def test_the_largest_accepted_upscale_stays_within_two_and_a_half_times_its_result() -> None:
    side = int((LIMITS.max_upscaled_pixels / SCALE**2) ** 0.5)  # 1024: 4096x4096 of result, the limit
    photo = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        result = upscale_tiled(photo, nearest, SCALE, TILE, OVERLAP_PX, BATCH)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.shape == (side * SCALE, side * SCALE, 3)
    assert peak < 2.5 * result.nbytes, f"peak {peak / 2**20:.0f} MiB for a {result.nbytes / 2**20:.0f} MiB result"
    assert (result[::SCALE, ::SCALE] == photo).all()
