"""Tone adjustments with separate settings for the subject and the backdrop, blended by a per-pixel weight.

``adjust`` tones the photo twice, once with the foreground's ``Tone`` and once with the background's, and
blends the two by ``weight`` (1 = foreground): with a matte as the weight the subject and its backdrop get
separate tones, with ``depth_ramp`` the tone changes smoothly along the depth map.

A ``Tone`` has three settings in [-1, 1], 0 leaving the photo unchanged, applied in this order to the sRGB
values v in [0, 1] (the photo's own encoding: a perceptual scale, mid-grey 0.5 looks half as light as white):

- brightness b: a power curve that keeps black and white where they are (``brightness_curve``). b < 0
  darkens, v -> v^g; b > 0 lightens, 1 - v -> (1 - v)^g, i.e. the same power on the distance to white; with
  g = 1 + (BRIGHTNESS_POWER - 1) |b|. It is multiplicative on the values' logarithm (on v's for b < 0, on
  1 - v's for b > 0) rather than additive, so it never clips: at b = +1 mid-grey becomes 1 - 0.5^4.32 = 0.95
  (near white) and at b = -1 0.5^4.32 = 0.05 (near black), while black and white stay.
- contrast c, around mid-grey 0.5 (``contrast_curve``), with g = 1 + (CONTRAST_POWER - 1) |c| (3 at |c| = 1):
  c > 0 is an S-curve of slope g at mid-grey, v -> 0.5 (2 v)^g below it and 1 - 0.5 (2 (1 - v))^g above
  (black, mid-grey and white stay); c < 0 compresses the values towards mid-grey, v -> 0.5 + (v - 0.5) / g
  (at c = -1 into [1/3, 2/3]: a faded print, without the banding a flattening power curve makes in the
  shadows).
- saturation s: each pixel moves away from (s > 0) or towards (s < 0) its Rec. 709 luma
  Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' (on the sRGB values): v -> Y' + (1 + s) (v - Y'); s = -1 is grey
  (R' = G' = B' = Y'), s = +1 twice the chroma, clipped.

Brightness and contrast are per-channel curves, applied together as one 256-entry LUT (cv2.LUT), and the
saturation is a 3 x 3 matrix on the LUT's output (cv2.transform, which rounds and saturates to uint8); the
blend is cv2.blendLinear (per-pixel weights on uint8 images). All of them run on the uint8 photo.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

BRIGHTNESS_POWER = math.log2(1.0 / 0.05)  # 4.32: at |brightness| 1, mid-grey -> 1 - 0.05 (or 0.05)
CONTRAST_POWER = 3.0  # the slope at mid-grey at contrast +1 (and 1/3 at -1)
REC709_LUMA = (0.2126, 0.7152, 0.0722)
_SLACK = 1e-4  # weights this far outside [0, 1] (float rounding of filters) are accepted and clipped


@dataclass(frozen=True)
class Tone:
    """Brightness, contrast and saturation, each in [-1, 1]; 0 leaves the photo unchanged (module docstring)."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and -1.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [-1, 1], got {value!r}")


def brightness_curve(v: np.ndarray, brightness: float) -> np.ndarray:
    """The brightness curve on sRGB values ``v`` in [0, 1] (float64): v^g darker, 1 - (1 - v)^g lighter."""
    power = 1.0 + (BRIGHTNESS_POWER - 1.0) * abs(brightness)
    if brightness >= 0:
        return 1.0 - (1.0 - v) ** power
    return v**power


def contrast_curve(v: np.ndarray, contrast: float) -> np.ndarray:
    """The contrast curve around mid-grey on sRGB values ``v`` in [0, 1] (float64); slope g at 0.5.

    Raised: the S-curve 0.5 (2 v)^g / 1 - 0.5 (2 (1 - v))^g (black and white stay). Lowered: a straight line
    through mid-grey, 0.5 + g (v - 0.5): a power under 1 would be infinitely steep at black and white and
    band the deep shadows, a line fades evenly.
    """
    slope = 1.0 + (CONTRAST_POWER - 1.0) * abs(contrast)
    if contrast < 0:
        return 0.5 + (v - 0.5) / slope
    low = 0.5 * (2.0 * np.minimum(v, 0.5)) ** slope
    high = 1.0 - 0.5 * (2.0 * (1.0 - np.maximum(v, 0.5))) ** slope
    return np.where(v < 0.5, low, high)


def tone_lut(tone: Tone) -> np.ndarray:
    """The 256-entry uint8 LUT of ``tone``'s brightness then contrast; the identity for 0 and 0, exactly."""
    v = np.arange(256, dtype=np.float64) / 255
    curve = contrast_curve(brightness_curve(v, tone.brightness), tone.contrast)
    return np.clip(np.rint(curve * 255), 0, 255).astype(np.uint8)


def saturation_matrix(saturation: float) -> np.ndarray:
    """The 3 x 3 float32 matrix (rows: output R', G', B') of v -> Y' + (1 + s)(v - Y'), Y' the Rec. 709 luma."""
    luma = np.tile(np.array(REC709_LUMA, np.float64), (3, 1))
    return ((1.0 + saturation) * np.eye(3) - saturation * luma).astype(np.float32)


def _toned(rgb: np.ndarray, tone: Tone) -> np.ndarray:
    """``rgb`` with ``tone`` applied; ``rgb`` itself (not a copy) for the neutral tone."""
    out = rgb if tone.brightness == 0 and tone.contrast == 0 else cv2.LUT(rgb, tone_lut(tone))
    if tone.saturation != 0:
        out = cv2.transform(out, saturation_matrix(tone.saturation))
    return out


def apply_tone(rgb: np.ndarray, tone: Tone) -> np.ndarray:
    """``rgb`` (uint8 (H, W, 3)) with ``tone`` applied: brightness and contrast (one LUT), then saturation."""
    out = _toned(rgb, tone)
    return out.copy() if out is rgb else out


def _check_plane(name: str, plane: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
    """A float (H, W) plane in [0, 1] of the photo's size as contiguous float32 and its range, else ValueError."""
    if not isinstance(plane, np.ndarray) or plane.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a float32 array, got {getattr(plane, 'dtype', type(plane))}")
    if plane.shape != shape:
        raise ValueError(f"{name} is {plane.shape}, expected {shape}")
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    low, high = float(plane.min()), float(plane.max())
    if not (low >= -_SLACK and high <= 1.0 + _SLACK):
        raise ValueError(f"{name} must be in [0, 1], got values in [{low}, {high}]")
    if low < 0.0 or high > 1.0:
        return np.clip(plane, 0.0, 1.0), max(low, 0.0), min(high, 1.0)
    return plane, low, high


def adjust(rgb: np.ndarray, weight: np.ndarray, foreground: Tone, background: Tone) -> np.ndarray:
    """The photo toned with ``foreground`` where ``weight`` is 1 and ``background`` where it is 0, blended between.

    ``rgb``: uint8 (H, W, 3); ``weight``: float32 (H, W) in [0, 1], e.g. a matte or ``depth_ramp``.
    out = weight x apply_tone(rgb, foreground) + (1 - weight) x apply_tone(rgb, background), rounded; where the
    weight is exactly 1 (or 0) a pixel is exactly the foreground (background) toned photo. Returns uint8
    (H, W, 3), a new array. ValueError for wrong dtypes, shapes or ranges.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {getattr(rgb, 'dtype', type(rgb))} "
                         f"{getattr(rgb, 'shape', '')}")
    if not (isinstance(foreground, Tone) and isinstance(background, Tone)):
        raise ValueError(f"foreground and background must be Tone, got {type(foreground)}, {type(background)}")
    weight, low, high = _check_plane("weight", weight, rgb.shape[:2])
    if foreground == background or low == 1.0:
        return apply_tone(rgb, foreground)
    if high == 0.0:
        return apply_tone(rgb, background)
    return cv2.blendLinear(_toned(rgb, foreground), _toned(rgb, background), weight, 1.0 - weight)


def depth_ramp(nearness: np.ndarray, start: float, end: float) -> np.ndarray:
    """A weight along depth: 1 at nearness >= ``start``, 0 at nearness <= ``end``, smoothstep in between.

    ``nearness``: float32 (H, W) in [0, 1] (1 = nearest); 0 <= ``end`` < ``start`` <= 1. Between them the
    weight is 3 t^2 - 2 t^3 with t = (nearness - end) / (start - end): continuous with a zero slope at both
    ends, so the tone changes without a visible seam. Returns float32 (H, W) in [0, 1].
    """
    for name, value in (("start", start), ("end", end)):
        if not (isinstance(value, numbers.Real) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be a nearness in [0, 1], got {value!r}")
    if not end < start:
        raise ValueError(f"the ramp needs end < start (weight 1 from start on, nearer), got start {start}, end {end}")
    if not isinstance(nearness, np.ndarray) or nearness.ndim != 2:
        raise ValueError(f"nearness must be a float32 (H, W) array, got {getattr(nearness, 'shape', type(nearness))}")
    near = _check_plane("nearness", nearness, nearness.shape)[0]
    t = near * np.float32(1.0 / (start - end))
    t -= np.float32(end / (start - end))
    np.clip(t, 0.0, 1.0, out=t)
    ramp = t * t
    t *= np.float32(-2.0)
    t += np.float32(3.0)
    ramp *= t
    return ramp
