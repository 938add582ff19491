"""Super-resolution over overlapping tiles, so memory stays bounded for any photo size.

The network sees tiles of exactly ``tile`` x ``tile`` pixels (its fixed input size), placed ``tile - overlap``
apart (the last one flush with the photo's edge). Outside the photo (a margin of ``overlap // 2`` on every side,
and whatever a photo smaller than a tile lacks) tiles read the photo reflected at its border (reflect-101, as
``np.pad(mode="reflect")``), never zeros. Neighbouring tiles are blended with a linear ramp ``overlap // 2``
input pixels wide in the middle of their overlap, so every pixel used had at least ``overlap // 4`` pixels of
real context on each side. A network whose receptive field reaches less than that gives the whole-image result
(within one 8-bit level); Real-ESRGAN x4plus reaches much farther (a changed pixel still moves the output by a
few levels 47 pixels away), and there the ramp spreads the small tile-to-tile differences so that no seam shows
(evaluation/upscale_results.md measures both). Memory: ``batch`` tiles in and out at a time, one row of tiles
of output (8-bit) and the output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np

from imaging.errors import ParameterError

# The served overlap (input pixels). animevideov3 reaches about 16 pixels: at 16 its tiled output is within
# 4 levels of the whole-image result (mean 0.04), at 32 within 1. x4plus reaches farther than any affordable
# overlap (mean 1 level from the whole-image result at 16 and at 32 alike); evaluation/upscale_results.md shows
# what tiling at this overlap costs in PSNR against the original photo.
OVERLAP_PX = 16
TileRunner = Callable[[np.ndarray], np.ndarray]  # float32 [n, 3, t, t] in [0, 1] -> [n, 3, t*s, t*s]
Span = tuple[int, int, int, int]  # start (first pixel read), used from, used to, ramp (pixels shared with the previous)


def _reflect(coords: np.ndarray, length: int) -> np.ndarray:
    """Positions along an axis of ``length`` pixels for any coordinates, reflected at the borders (reflect-101)."""
    if length == 1:
        return np.zeros_like(coords)
    period = 2 * (length - 1)
    folded = np.mod(coords, period)
    return np.where(folded < length, folded, period - folded)


def tile_spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Along one axis of ``length`` pixels, in photo coordinates, for each tile: (start, used_from, used_to, ramp).
    The tile reads [start, start + tile) and its output is used for [used_from, used_to), blended with the
    previous tile's over the first ``ramp`` pixels; every pixel of [0, length) is used once outside the ramps."""
    margin, half_ramp = overlap // 2, overlap // 4
    padded = max(length + 2 * margin, tile)
    starts = list(range(0, padded - tile, tile - overlap)) + [padded - tile]
    mids = [(starts[k + 1] + starts[k] + tile) // 2 for k in range(len(starts) - 1)]  # middle of each overlap
    used_from = [margin] + [mid - half_ramp for mid in mids]
    used_to = [mid + half_ramp for mid in mids] + [margin + length]
    return [(start - margin, used_from[k] - margin, used_to[k] - margin, 2 * half_ramp if k else 0)
            for k, start in enumerate(starts)]


def _check(rgb: np.ndarray, scale: int, tile: int, overlap: int, batch: int) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ParameterError(f"upscale needs an RGB photo as uint8 (height, width, 3), got {rgb.dtype} {rgb.shape}")
    if scale < 1 or tile < 1 or batch < 1:
        raise ParameterError(f"scale, tile and batch must be positive, got {scale}, {tile}, {batch}")
    if not 0 <= overlap <= tile // 2:
        raise ParameterError(f"tile overlap must be in [0, tile // 2 = {tile // 2}], got {overlap}")


def _blend_into(target: np.ndarray, part: np.ndarray, start: int, ramp: int, axis: int) -> None:
    """Write ``part`` (uint8, or 0-255 floats) into the uint8 ``target`` from ``start`` along ``axis``; over its
    first ``ramp`` entries it fades in linearly over what ``target`` holds there. Only the ramp is computed in
    floats, so a row of tiles is written into the output without a float copy of it."""
    def along(begin: int, stop: int) -> tuple[slice, ...]:
        index = [slice(None)] * 3
        index[axis] = slice(begin, stop)
        return tuple(index)

    length = part.shape[axis]
    if ramp:
        shape = [1, 1, 1]
        shape[axis] = ramp
        weight = ((np.arange(ramp, dtype=np.float32) + 0.5) / ramp).reshape(shape)
        old = target[along(start, start + ramp)]
        target[along(start, start + ramp)] = _to_uint8(old * (1.0 - weight) + part[along(0, ramp)] * weight)
    rest = part[along(ramp, length)]
    target[along(start + ramp, start + length)] = rest if rest.dtype == np.uint8 else _to_uint8(rest)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def _run_tiles(rgb: np.ndarray, run: TileRunner, scale: int, tile: int, places: list[tuple[Span, Span]],
               batch: int) -> Iterator[np.ndarray]:
    """Each place's network output, in order, running ``batch`` tiles at a time."""
    height, width = rgb.shape[:2]
    offsets = np.arange(tile)
    for first in range(0, len(places), batch):
        group = places[first:first + batch]
        tiles = np.stack([
            rgb[np.ix_(_reflect(row[0] + offsets, height), _reflect(col[0] + offsets, width))] for row, col in group
        ]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        upscaled = np.asarray(run(tiles))
        expected = (len(group), 3, tile * scale, tile * scale)
        if upscaled.shape != expected:
            raise ValueError(f"the tile network returned {upscaled.shape}, expected {expected} (scale {scale})")
        yield from upscaled


def upscale_tiled(rgb: np.ndarray, run: TileRunner, scale: int, tile: int, overlap: int, batch: int) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 upscaled by ``scale`` through ``run`` on tiles: (H*scale, W*scale, 3) uint8."""
    _check(rgb, scale, tile, overlap, batch)
    height, width = rgb.shape[:2]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    places = [(row, col) for row in rows for col in cols]
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    band = np.empty(0, dtype=np.uint8)  # one row of tiles, blended left to right, then into ``out`` top to bottom
    results = _run_tiles(rgb, run, scale, tile, places, batch)
    for index, ((row, col), result) in enumerate(zip(places, results, strict=True)):
        (row_start, top, bottom, row_ramp), (col_start, left, right, col_ramp) = row, col
        if index % len(cols) == 0:
            band = np.empty(((bottom - top) * scale, width * scale, 3), dtype=np.uint8)
        part = result[:, (top - row_start) * scale:(bottom - row_start) * scale,
                      (left - col_start) * scale:(right - col_start) * scale].transpose(1, 2, 0) * 255.0
        _blend_into(band, part, left * scale, col_ramp * scale, axis=1)
        if index % len(cols) == len(cols) - 1:
            _blend_into(out, band, top * scale, row_ramp * scale, axis=0)
    return out


def downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """``rgb`` shrunk by an integer ``factor`` with area averaging (``scale=2`` from the x4 network's output)."""
    if factor < 1:
        raise ParameterError(f"downscale factor must be a positive integer, got {factor}")
    if factor == 1:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
