"""Style transfer's pixel work around the network: the working size, the padding the network needs, and the mix
of the styled result into the photo (by strength, and outside the subject's matte for ``keep=person``)."""

from __future__ import annotations

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


def stylize(rgb: np.ndarray, run: Callable[[np.ndarray], np.ndarray], max_side: int) -> np.ndarray:
    """uint8 (h, w, 3) styled at the working size; ``run`` maps float [1, 3, H, W] in [0, 1] to the same shape."""
    height, width = rgb.shape[:2]
    small_w, small_h = working_size((width, height), max_side)
    small = rgb if (small_w, small_h) == (width, height) else cv2.resize(rgb, (small_w, small_h),
                                                                           interpolation=cv2.INTER_AREA)
    padded_h = max(MIN_SIDE, -(-small_h // MULTIPLE) * MULTIPLE)
    padded_w = max(MIN_SIDE, -(-small_w // MULTIPLE) * MULTIPLE)
    mode = "reflect" if min(small_h, small_w) >= 2 else "edge"
    if (padded_h, padded_w) != (small_h, small_w):
        small = np.pad(small, ((0, padded_h - small_h), (0, padded_w - small_w), (0, 0)), mode=mode)
    tensor = np.ascontiguousarray(small.transpose(2, 0, 1)[np.newaxis], dtype=np.float32) / 255
    styled = run(tensor)[0].transpose(1, 2, 0)[:small_h, :small_w]
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
