"""Super-resolution over overlapping tiles, so memory stays bounded for any photo size.

The network sees tiles of exactly ``tile`` x ``tile`` pixels (its fixed input size). The photo is covered by
tiles placed ``tile - overlap`` apart; outside the photo (a margin of ``overlap // 2`` on every side, and
whatever a photo smaller than a tile lacks) the tiles read the photo reflected at its border (reflect-101, as
``np.pad(mode="reflect")``), never zeros. Seams are cropped, not blended: each output pixel comes from the one
tile whose centre region holds it, cut at the middle of each overlap, so every kept pixel had at least
``overlap // 2`` input pixels of real context on each side. For a network whose receptive field reaches less
than that, the tiled result equals the whole-image result (up to rounding). Memory: ``batch`` tiles in and out
at a time, plus the output.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from imaging.errors import ParameterError

TileRunner = Callable[[np.ndarray], np.ndarray]  # float32 [n, 3, t, t] in [0, 1] -> [n, 3, t*s, t*s]


def _reflect(coords: np.ndarray, length: int) -> np.ndarray:
    """Positions along an axis of ``length`` pixels for any coordinates, reflected at the borders (reflect-101)."""
    if length == 1:
        return np.zeros_like(coords)
    period = 2 * (length - 1)
    folded = np.mod(coords, period)
    return np.where(folded < length, folded, period - folded)


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Along one axis of ``length`` pixels: for each tile, (start, keep_from, keep_to) in photo coordinates.
    The tile reads [start, start + tile); its output is kept for [keep_from, keep_to); the kept spans cover
    [0, length) exactly once, in order."""
    margin = overlap // 2
    padded = max(length + 2 * margin, tile)
    stride = tile - overlap
    starts = list(range(0, padded - tile, stride)) + [padded - tile]
    # a boundary between neighbours sits at the middle of their overlap, in padded coordinates
    cuts = [margin] + [(starts[k + 1] + starts[k] + tile) // 2 for k in range(len(starts) - 1)] + [margin + length]
    return [(start - margin, cuts[k] - margin, cuts[k + 1] - margin) for k, start in enumerate(starts)]


def _check(rgb: np.ndarray, scale: int, tile: int, overlap: int, batch: int) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ParameterError(f"upscale needs an RGB photo as uint8 (height, width, 3), got {rgb.dtype} {rgb.shape}")
    if scale < 1 or tile < 1 or batch < 1:
        raise ParameterError(f"scale, tile and batch must be positive, got {scale}, {tile}, {batch}")
    if not 0 <= overlap < tile:
        raise ParameterError(f"tile overlap must be in [0, tile={tile}), got {overlap}")


def upscale_tiled(rgb: np.ndarray, run: TileRunner, scale: int, tile: int, overlap: int, batch: int) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 upscaled by ``scale`` through ``run`` on tiles: (H*scale, W*scale, 3) uint8."""
    _check(rgb, scale, tile, overlap, batch)
    height, width = rgb.shape[:2]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    places = [(row, col) for row in rows for col in cols]
    offsets = np.arange(tile)
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    for first in range(0, len(places), batch):
        group = places[first:first + batch]
        tiles = np.stack([
            rgb[np.ix_(_reflect(row[0] + offsets, height), _reflect(col[0] + offsets, width))] for row, col in group
        ]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        upscaled = np.asarray(run(tiles))
        expected = (len(group), 3, tile * scale, tile * scale)
        if upscaled.shape != expected:
            raise ValueError(f"the tile network returned {upscaled.shape}, expected {expected} (scale {scale})")
        for (row, col), result in zip(group, upscaled, strict=True):
            (start_y, top, bottom), (start_x, left, right) = row, col
            part = result[:, (top - start_y) * scale:(bottom - start_y) * scale,
                          (left - start_x) * scale:(right - start_x) * scale]
            out[top * scale:bottom * scale, left * scale:right * scale] = to_uint8(part.transpose(1, 2, 0))
    return out


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) as 8-bit, rounded to nearest."""
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """``rgb`` shrunk by an integer ``factor`` with area averaging (``scale=2`` from the x4 network's output)."""
    if factor < 1:
        raise ParameterError(f"downscale factor must be a positive integer, got {factor}")
    if factor == 1:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
