"""Scores of one predicted matte (and cutout) against a composite's true alpha and foreground.

- ``iou``: intersection over union of ``pred >= 0.5`` and ``true >= 0.5`` (1 when both are empty).
- ``alpha_error``: mean absolute difference of the alphas, on [0, 1].
- soft-band colour error: mean absolute RGB difference (0-255) against the true foreground over the
  pixels where ``0.05 < true alpha < 0.95`` and ``predicted alpha > 0.05``, i.e. the edge pixels a
  cutout shows partly. ``band_error`` is the cutout's colour there; ``band_baseline`` is the raw
  composite's colour on the same pixels (what a cutout that keeps the photo's colour shows). A value
  below the baseline means the cutout recovered some of the person's colour from the mixed pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BAND = (0.05, 0.95)


@dataclass(frozen=True)
class Scores:
    iou: float
    alpha_error: float
    band_error: float | None = None  # None without a cutout; nan when the band is empty
    band_baseline: float | None = None
    band_pixels: int = 0


def to_unit(matte: np.ndarray) -> np.ndarray:
    """An 8-bit matte (H, W) as float64 on [0, 1]."""
    if matte.dtype != np.uint8 or matte.ndim != 2:
        raise ValueError(f"expected an 8-bit (H, W) matte, got {matte.dtype} {matte.shape}")
    return matte.astype(np.float64) / 255.0


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    """IoU at 0.5 of two alphas on [0, 1]."""
    p, t = pred >= 0.5, true >= 0.5
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def alpha_error(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - true.astype(np.float64)).mean())


def soft_band(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The pixels a cutout shows partly: true alpha strictly inside ``BAND`` and predicted alpha above its floor."""
    low, high = BAND
    return (true > low) & (true < high) & (pred > low)


def colour_error(rgb: np.ndarray, foreground: np.ndarray, band: np.ndarray) -> float:
    """Mean absolute RGB difference (0-255) over ``band``; nan when the band is empty."""
    if not band.any():
        return float("nan")
    return float(np.abs(rgb[band].astype(np.float64) - foreground[band].astype(np.float64)).mean())


def score(true_alpha: np.ndarray, foreground: np.ndarray, photo: np.ndarray, matte: np.ndarray,
          cutout: np.ndarray | None = None) -> Scores:
    """Scores of an 8-bit ``matte`` (H, W) and optionally an RGBA ``cutout`` (H, W, 4) of the composite ``photo``.

    The band of the colour error uses the cutout's own alpha channel (what the cutout shows).
    """
    pred = to_unit(matte)
    if pred.shape != true_alpha.shape:
        raise ValueError(f"matte is {pred.shape}, the composite {true_alpha.shape}")
    result = Scores(iou(pred, true_alpha), alpha_error(pred, true_alpha))
    if cutout is None:
        return result
    if cutout.shape != (*true_alpha.shape, 4) or cutout.dtype != np.uint8:
        raise ValueError(f"cutout is {cutout.dtype} {cutout.shape}, expected uint8 {(*true_alpha.shape, 4)}")
    band = soft_band(true_alpha, to_unit(np.ascontiguousarray(cutout[..., 3])))
    return Scores(result.iou, result.alpha_error, colour_error(cutout[..., :3], foreground, band),
                  colour_error(photo, foreground, band), int(band.sum()))
