"""Background replacement: the subject (foreground colour and alpha) over a colour, an image or its blurred backdrop.

Compositing is ``out = alpha * F + (1 - alpha) * B`` on the 8-bit sRGB values, as image editors and the
browsers' CSS compositing do (not in linear light): F is the estimated foreground colour
(``imaging.matte.layers(...).colour``, blur fusion, so the old background is not in the soft edge), B the
new background. ``cv2.blendLinear`` does it per pixel, rounded to uint8, in about 0.1 s at 12 MP; where
alpha is 0 the output is B and where it is 1 it is F, exactly. Over a translucent colour the result is
RGBA, Porter and Duff's "over" ("Compositing Digital Images", SIGGRAPH 1984) with straight (not
premultiplied) colour, as PNG and WebP store it.

``blurred_background`` is the photo's own backdrop blurred, as a lens would ("portrait mode"). A plain
blur would smear the subject into the backdrop around it, a halo of its colour; the blur here is
normalised ("hole-aware", normalised convolution, Knutsson and Westin, CVPR 1993): the photo weighted
by how surely each pixel is backdrop (``backdrop_weight``: 1 where alpha is 0, none where alpha is over
``ALPHA_CUT``) is blurred and divided by the blurred weights, so each output pixel averages backdrop
pixels only. Where a subject is larger than the blur and no backdrop is in reach, the hole is filled by
push-pull (Gortler et al., "The Lumigraph", SIGGRAPH 1996): the same ratio at coarser sizes. The blur
is a Gaussian of standard deviation ``radius`` output pixels; it runs on a copy shrunk so that the
Gaussian is at most ``WORK_SIGMA`` pixels there and the copy at most ``MAX_WORK_PIXELS`` (INTER_AREA
down, bilinear up: the result is smooth, so this loses nothing visible), which bounds the time: 0.15-0.45 s
at 12 MP whatever the radius. ``blur_behind`` puts the subject back on top.

``fit`` sizes a new background image: "cover" fills the output and crops the overflow (centred);
"contain" shows all of it and fills the bars with the same image, covering, shrunk to ``FILL_SIDE``
px, blurred and enlarged (the "blurred fill" of video and social apps), rather than black bars.
"""

from __future__ import annotations

import cv2
import numpy as np

from imaging.crop import largest_box

MODES = ("cover", "contain")
ALPHA_CUT = 0.1  # alpha at and above which a pixel gives the backdrop blur no weight
WORK_SIGMA = 4.0  # the Gaussian's standard deviation in pixels of the reduced copy, for large radii
MAX_RADIUS = 1000.0
FILL_SIDE = 48  # longest side of the blurred fill behind a "contain" image
FILL_SIGMA = 3.0  # its blur, in pixels of that size
MAX_WORK_PIXELS = 3_000_000  # the backdrop blur's reduced copy is at most this large, whatever the radius
_HOLE = 1e-3  # blurred backdrop weight under which a pixel is filled from coarser sizes
_BACKDROP_LUT = np.rint(255 * np.clip(1 - np.arange(256) / (255 * ALPHA_CUT), 0, 1)).astype(np.uint8)


def _rgb(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 (H, W, 3) RGB, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: {image.shape}")


def _layers(colour: np.ndarray, alpha: np.ndarray, name: str = "the foreground colour") -> np.ndarray:
    """Checks an image and its alpha; the alpha as contiguous float32 clipped to [0, 1]."""
    _rgb(colour, name)
    if not isinstance(alpha, np.ndarray) or alpha.shape != colour.shape[:2] or alpha.dtype.kind != "f":
        raise ValueError(f"alpha must be float (H, W) at the size of {name} {colour.shape[:2]}, got "
                         f"{getattr(alpha, 'dtype', type(alpha).__name__)} {getattr(alpha, 'shape', '')}")
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    if np.isnan(alpha).any():
        raise ValueError("alpha has NaN values")
    low, high, _, _ = cv2.minMaxLoc(alpha)
    return alpha if 0 <= low and high <= 1 else np.clip(alpha, 0.0, 1.0)


def _flat(rgb: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 (H, W, 3) image of one colour (a row broadcast: 10x numpy's fill)."""
    row = np.tile(np.array(rgb, np.uint8), (shape[1], 1))
    return np.ascontiguousarray(np.broadcast_to(row, (shape[0], shape[1], 3)))


def _size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1 for v in size):
        raise ValueError(f"size must be (width, height), two integers >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (width, height): area averaging to shrink, bicubic to enlarge (clipped to uint8)."""
    height, width = image.shape[:2]
    if (width, height) == size:
        return image
    shrink = size[0] <= width and size[1] <= height
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centred crop of ``image`` of ``size``'s aspect, resized to ``size``."""
    height, width = image.shape[:2]
    w, h = largest_box((width, height), size)
    x, y = (width - w) // 2, (height - h) // 2
    return resize(image[y:y + h, x:x + w], size)


def fit(background: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """The new background (uint8 (h, w, 3)) at ``size`` (width, height): "cover" crops, "contain" pads.

    "contain" shows the whole image, as large as fits, centred; the bars beside it are the image itself
    covering the output, blurred (see the module docstring). The aspect is kept either way (to a pixel).
    """
    _rgb(background, "the background")
    size = _size(size)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "cover":
        return _cover(background, size)
    height, width = background.shape[:2]
    scale = min(size[0] / width, size[1] / height)
    inner = (min(size[0], max(1, round(width * scale))), min(size[1], max(1, round(height * scale))))
    small = _cover(background, _fit_side(size, FILL_SIDE))
    small = cv2.GaussianBlur(small, (0, 0), FILL_SIGMA, borderType=cv2.BORDER_REFLECT)
    out = cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
    x, y = (size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2
    out[y:y + inner[1], x:x + inner[0]] = resize(background, inner)
    return out


def _fit_side(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``size`` shrunk (never enlarged) to ``longest`` on its longest side, aspect kept."""
    factor = min(1.0, longest / max(size))
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def over_image(colour: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``alpha * colour + (1 - alpha) * background``, uint8 (H, W, 3); the background already at the size."""
    alpha = _layers(colour, alpha)
    _rgb(background, "the background")
    if background.shape != colour.shape:
        raise ValueError(f"the background is {background.shape[1]}x{background.shape[0]}, the foreground "
                         f"{colour.shape[1]}x{colour.shape[0]}: fit() it to the output size first")
    return cv2.blendLinear(colour, np.ascontiguousarray(background), alpha, np.float32(1) - alpha)


def _colour(rgba: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    if len(rgba) != 4 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in rgba) or not all(
            0 <= v <= 255 for v in rgba):
        raise ValueError(f"the colour must be (r, g, b, a), four integers 0-255, got {rgba!r}")
    return int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3])


def over_colour(colour: np.ndarray, alpha: np.ndarray, rgba: tuple[int, int, int, int]) -> np.ndarray:
    """The subject over a flat colour: uint8 (H, W, 3) if the colour is opaque, else (H, W, 4).

    With a translucent colour (alpha ``a_b`` < 255) the output's alpha is ``alpha + a_b (1 - alpha)`` and
    its colour ``(alpha F + (1 - alpha) a_b C) / that``; where both are 0 the colour is C's (the pixel is
    transparent). ``a_b = 0`` gives the cutout itself.
    """
    alpha = _layers(colour, alpha)
    red, green, blue, opacity = _colour(rgba)
    height, width = alpha.shape
    flat = _flat((red, green, blue), alpha.shape)
    if opacity == 255:
        return cv2.blendLinear(colour, flat, alpha, np.float32(1) - alpha)
    behind = np.float32(opacity / 255)
    total = alpha * (np.float32(1) - behind) + behind  # alpha + behind (1 - alpha)
    weight = alpha / total if opacity else (alpha > 0).astype(np.float32)  # the foreground's share of the colour
    out = np.empty((height, width, 4), np.uint8)
    out[..., :3] = cv2.blendLinear(colour, flat, weight, np.float32(1) - weight)
    out[..., 3] = cv2.convertScaleAbs(total, alpha=255.0).reshape(height, width)
    return out


def backdrop_weight(alpha: np.ndarray) -> np.ndarray:
    """How surely each pixel is backdrop, uint8 0-255: 255 at alpha 0, falling linearly to 0 at ``ALPHA_CUT``."""
    return cv2.LUT(cv2.convertScaleAbs(alpha, alpha=255.0).reshape(alpha.shape), _BACKDROP_LUT)


def _push_pull(numerator: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``numerator / weight`` (float32 (h, w, 3) / (h, w)), holes (weight under ``_HOLE``) filled from coarser sizes.

    ``(numerator + (_HOLE - weight) coarse) / _HOLE`` where the weight is under ``_HOLE``: a blend of the
    pixel's own ratio and the coarser size's, by how much weight the pixel has.
    """
    height, width = weight.shape
    if weight.min() >= _HOLE or max(height, width) <= 1:
        return numerator / np.maximum(weight, _HOLE)[..., None]
    half = (max(1, (width + 1) // 2), max(1, (height + 1) // 2))
    coarse = _push_pull(cv2.resize(numerator, half, interpolation=cv2.INTER_AREA).reshape(half[1], half[0], 3),
                        cv2.resize(weight, half, interpolation=cv2.INTER_AREA).reshape(half[1], half[0]))
    coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, 3)
    missing = np.maximum(np.float32(_HOLE) - weight, 0.0)[..., None]
    return (numerator + missing * coarse) / np.maximum(weight, _HOLE)[..., None]


def blurred_background(photo: np.ndarray, alpha: np.ndarray, radius: float) -> np.ndarray:
    """The photo's backdrop, Gaussian-blurred by ``radius`` px (standard deviation), the subject left out.

    uint8 (H, W, 3): under the subject it is the surrounding backdrop carried in, so that
    ``over_image(colour, alpha, blurred_background(photo, alpha, radius))`` (``blur_behind``) shows no halo.
    """
    alpha = _layers(photo, alpha, "the photo")
    if not 0 < radius <= MAX_RADIUS:
        raise ValueError(f"radius must be in (0, {MAX_RADIUS:g}] pixels, got {radius!r}")
    height, width = alpha.shape
    weight = backdrop_weight(alpha)
    # photo x weight exactly, in 16 bits (255 x 255 fits): an 8-bit product, or its 8-bit shrink, would
    # round away the colour of barely weighted pixels.
    premultiplied = cv2.multiply(photo, cv2.merge([weight, weight, weight]), dtype=cv2.CV_16U)
    factor = min(1.0, WORK_SIGMA / radius, (MAX_WORK_PIXELS / (width * height)) ** 0.5)
    small = _fit_side((width, height), max(1, round(max(width, height) * factor)))
    numerator = resize(premultiplied, small).astype(np.float32).reshape(small[1], small[0], 3)
    numerator *= np.float32(1 / 255)
    weights = resize(weight.astype(np.float32), small).reshape(small[1], small[0]) * np.float32(1 / 255)
    sigma = radius * small[0] / width
    numerator = cv2.GaussianBlur(numerator, (0, 0), sigma, borderType=cv2.BORDER_REFLECT).reshape(numerator.shape)
    weights = cv2.GaussianBlur(weights, (0, 0), sigma, borderType=cv2.BORDER_REFLECT).reshape(weights.shape)
    backdrop = np.clip(_push_pull(numerator, weights), 0, 255)
    backdrop = np.rint(backdrop).astype(np.uint8)
    if small == (width, height):
        return backdrop
    return cv2.resize(backdrop, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, 3)


def blur_behind(photo: np.ndarray, colour: np.ndarray, alpha: np.ndarray, radius: float) -> np.ndarray:
    """The subject (foreground ``colour``, ``alpha``) over the photo's own backdrop blurred by ``radius`` px."""
    return over_image(colour, alpha, blurred_background(photo, alpha, radius))
