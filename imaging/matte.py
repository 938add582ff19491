"""Mattes at the output size: the model's low-resolution matte refined against the photo, and cutout colours.

The segmentation models see the photo at 256-512 px; their matte, bilinearly upsampled (``upsample``), has
edges as soft as one model pixel, i.e. 10-15 output pixels wide for a 12 MP photo, and a cutout that keeps
the photo's own colour there shows a fringe of the old background. Two steps fix that:

- ``refine``: a guided filter (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) with the photo as
  the guide moves the matte's edge onto the photo's edges. ``guided_filter`` works at the output size;
  ``fast_guided_filter`` (He and Sun, "Fast Guided Filter", 2015) computes the filter's coefficients at a
  reduced size and only applies them at the output size, which is what is served (imaging/REFINEMENT.md
  compares the options on composites with known alpha: ``python -m evaluation.refinement``).
- ``estimate_foreground``: "blur fusion" (Forte and Pitié, "Approximate Fast Foreground Colour
  Estimation", ICIP 2021): in the soft edge, the person's colour is estimated from nearby opaque pixels
  and the photo, so the cutout over a new background shows no fringe of the old one.

Box filters and resizes are OpenCV's (about 10x numpy's integral images on 12 MP planes). Above
``Refinement.max_pixels`` the plain upsampled matte and the photo's colours are served instead and the
result says so (``Layers.refined``): the memory of a 40 MP refinement would not fit beside the other
requests, and a refinement must never fail a request.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("bilinear", "guided", "fast_guided")
_CHANNEL_SUM = np.ones((1, 3), np.float32)
WIDE_BANDS, NARROW_BANDS = 16.0, 0.25  # blur-fusion radii in soft-edge widths (foreground_radii)


@dataclass(frozen=True)
class Refinement:
    """How the matte is refined at the output size; the defaults are what is served.

    ``radius`` is in pixels of the reduced size (``work_scale``; for ``guided`` it is scaled up to the
    output size, where that filter runs). ``eps`` is the guided filter's regulariser on guide values in
    [0, 1]: smaller follows the photo's edges more closely. The served values were chosen on the tuning
    set (``python -m evaluation.refinement --tune``; imaging/REFINEMENT.md).
    """

    method: str = "fast_guided"
    work_scale: float = 1.0  # reduced size: longest side = work_scale x the model matte's longest side
    radius: int = 1
    eps: float = 1e-5
    colour: bool = True  # RGB guide (3x3 covariances) or luma guide
    max_pixels: int = 24_000_000  # above: fall back to the plain upsampled matte and the photo's colours
    foreground: bool = True  # estimate cutout colours in the soft edge (blur fusion)
    foreground_side: int = 512  # longest side of the blur-fusion blurs

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} is not one of {METHODS}")
        if self.radius < 1 or self.eps <= 0 or self.work_scale <= 0 or self.max_pixels < 1:
            raise ValueError(f"radius >= 1, eps > 0, work_scale > 0 and max_pixels >= 1, got {self}")


SERVED = Refinement()


@dataclass(frozen=True)
class Layers:
    """What the mask and cutout outputs are made of, at the output size."""

    alpha: np.ndarray  # float32 (H, W) in [0, 1]
    colour: np.ndarray | None  # uint8 (H, W, 3) cutout colour: the estimated foreground, or the photo; None: no photo
    refined: bool  # False: the plain upsampled matte and the photo's colours
    fallback: str = ""  # why not refined ("" when refined)
    failed: bool = False  # the refinement raised (out of memory, OpenCV) rather than was not tried


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel (edges mirrored), per channel."""
    side = 2 * radius + 1
    return cv2.blur(x, (side, side), borderType=cv2.BORDER_REFLECT)


def _resize(x: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``x`` at ``size`` (width, height); bilinear with pixel centres aligned, as Pillow's upsampling."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    return cv2.resize(x, size, interpolation=interpolation)


def upsample(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The baseline: the model's matte bilinearly resized to ``size`` (width, height), clipped to [0, 1].

    Shrinking (an output smaller than the matte) averages areas instead, as Pillow's filters do.
    """
    if alpha.ndim != 2:
        raise ValueError(f"expected a 2-D matte, got shape {alpha.shape}")
    shrink = size[0] < alpha.shape[1] and size[1] < alpha.shape[0]
    plane = _resize(np.ascontiguousarray(alpha, dtype=np.float32), size, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(plane, 0.0, 1.0)


def _guide(rgb: np.ndarray, colour: bool) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 guide in [0, 1]: (H, W, 3), or (H, W) luma."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"the guide must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if colour:
        return rgb.astype(np.float32) * np.float32(1 / 255)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)


def _coefficients(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Box-averaged coefficients (A, b) of the guided filter, float32: q = sum_c A_c * I_c + b.

    In float64: the variances are differences of nearly equal means, which float32 can make negative
    (and the 3x3 determinant zero) in flat or grey regions when ``eps`` is small.
    """
    guide, p = guide.astype(np.float64), p.astype(np.float64)
    mean_p = _box(p, radius)
    if guide.ndim == 2:
        mean_i = _box(guide, radius)
        cov_ip = _box(guide * p, radius) - mean_i * mean_p
        var_i = np.maximum(_box(guide * guide, radius) - mean_i * mean_i, 0.0)
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return _box(a, radius).astype(np.float32), _box(b, radius).astype(np.float32)
    r, g, bl = guide[..., 0], guide[..., 1], guide[..., 2]
    mean_i = _box(guide, radius)
    cov_ip = _box(guide * p[..., None], radius) - mean_i * mean_p[..., None]
    second = _box(np.stack([r * r, r * g, r * bl, g * g, g * bl, bl * bl], axis=-1), radius)
    mr, mg, mb = mean_i[..., 0], mean_i[..., 1], mean_i[..., 2]
    srr = np.maximum(second[..., 0] - mr * mr, 0.0) + eps
    srg = second[..., 1] - mr * mg
    srb = second[..., 2] - mr * mb
    sgg = np.maximum(second[..., 3] - mg * mg, 0.0) + eps
    sgb = second[..., 4] - mg * mb
    sbb = np.maximum(second[..., 5] - mb * mb, 0.0) + eps
    # Inverse of the symmetric 3x3 covariance by its adjugate, for every pixel at once.
    i_rr, i_rg, i_rb = sgg * sbb - sgb * sgb, srb * sgb - srg * sbb, srg * sgb - srb * sgg
    i_gg, i_gb, i_bb = srr * sbb - srb * srb, srg * srb - srr * sgb, srr * sgg - srg * srg
    det = np.maximum(srr * i_rr + srg * i_rg + srb * i_rb, eps**3)  # >= eps^3 for a covariance + eps I
    cr, cg, cb = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.stack([i_rr * cr + i_rg * cg + i_rb * cb,
                  i_rg * cr + i_gg * cg + i_gb * cb,
                  i_rb * cr + i_gb * cg + i_bb * cb], axis=-1) / det[..., None]
    b = mean_p - (a * mean_i).sum(axis=-1)
    return _box(a, radius).astype(np.float32), _box(b, radius).astype(np.float32)


def _apply(a: np.ndarray, b: np.ndarray, rgb: np.ndarray, colour: bool) -> np.ndarray:
    """q = sum_c A_c * I_c + b on the uint8 photo, with A and b (guide in [0, 1]) bilinearly resized to its size.

    OpenCV's element-wise operations on the uint8 photo: a 12 MP application is about 0.1 s, numpy's
    ``(A * I).sum(axis=-1)`` on float planes 0.28 s.
    """
    height, width = rgb.shape[:2]
    a = _resize(a * np.float32(1 / 255), (width, height))
    if colour:
        q = cv2.transform(cv2.multiply(a, rgb, dtype=cv2.CV_32F), _CHANNEL_SUM)
    else:
        q = cv2.multiply(a, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=cv2.CV_32F)
    q = cv2.add(q, _resize(b, (width, height)))
    return np.clip(q, 0.0, 1.0, out=q)


def guided_filter(rgb: np.ndarray, p: np.ndarray, radius: int, eps: float, colour: bool = True) -> np.ndarray:
    """He et al.'s guided filter of ``p`` (float32 (H, W)) with the photo ``rgb`` (uint8 (H, W, 3)) as guide."""
    guide = _guide(rgb, colour)
    if p.shape != guide.shape[:2]:
        raise ValueError(f"p is {p.shape}, the guide {guide.shape[:2]}")
    a, b = _coefficients(guide, np.ascontiguousarray(p, dtype=np.float32), radius, eps)
    return _apply(a, b, rgb, colour)


def fast_guided_filter(rgb: np.ndarray, alpha: np.ndarray, work_size: tuple[int, int], radius: int, eps: float,
                       colour: bool = True) -> np.ndarray:
    """The fast guided filter: coefficients at ``work_size`` (width, height), applied to ``rgb``'s full size.

    ``alpha`` is the model's matte at any size; it is resized to ``work_size``, where the photo is
    area-averaged to, and the coefficients A, b are bilinearly upsampled and applied to the full photo.
    """
    height, width = rgb.shape[:2]
    work_size = (min(work_size[0], width), min(work_size[1], height))
    small = _guide(_resize(rgb, work_size, cv2.INTER_AREA), colour)
    p = upsample(alpha, work_size)
    a, b = _coefficients(small, p, radius, eps)
    return _apply(a, b, rgb, colour)


def fit(size: tuple[int, int], longest: float) -> tuple[int, int]:
    """``size`` (width, height) shrunk to at most ``longest`` pixels on its longest side, same aspect."""
    width, height = size
    factor = min(1.0, longest / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def work_size(alpha_shape: tuple[int, ...], size: tuple[int, int], work_scale: float) -> tuple[int, int]:
    """The fast guided filter's reduced size: longest side ``work_scale`` x the matte's, the output's aspect."""
    return fit(size, work_scale * max(alpha_shape[:2]))


def refine(alpha: np.ndarray, rgb: np.ndarray, settings: Refinement = SERVED) -> np.ndarray:
    """The model's matte ``alpha`` (float (h, w), any size) at the size of the photo ``rgb``, refined against it.

    No pixel bound here: ``layers`` applies it and falls back.
    """
    height, width = rgb.shape[:2]
    size = (width, height)
    if settings.method == "bilinear":
        return upsample(alpha, size)
    work = work_size(alpha.shape, size, settings.work_scale)
    if settings.method == "fast_guided":
        return fast_guided_filter(rgb, alpha, work, settings.radius, settings.eps, settings.colour)
    radius = max(1, round(settings.radius * max(width, height) / max(work)))
    return guided_filter(rgb, upsample(alpha, size), radius, settings.eps, settings.colour)


def layers(alpha: np.ndarray, size: tuple[int, int], rgb: np.ndarray | None, colours: bool,
           settings: Refinement = SERVED) -> Layers:
    """The served matte (and, if ``colours``, the cutout colour) at ``size`` (width, height); never fails to refine.

    ``rgb`` is the photo at ``size`` (None: no guide, so the plain matte). Over ``settings.max_pixels``, or
    if the refinement runs out of memory or OpenCV refuses it, the plain upsampled matte and the photo's
    colours are returned with ``refined=False`` and the reason.
    """
    width, height = size
    if rgb is not None and rgb.shape[:2] != (height, width):
        raise ValueError(f"the photo is {rgb.shape[1]}x{rgb.shape[0]}, the output {width}x{height}")
    if rgb is None:
        reason = "no photo to guide the refinement"
    elif settings.method == "bilinear":
        reason = "refinement is off"
    elif width * height > settings.max_pixels:
        reason = f"{width}x{height} is over the refinement's bound of {settings.max_pixels} pixels"
    else:
        try:
            matte = refine(alpha, rgb, settings)
            if not (colours and settings.foreground):
                return Layers(matte, rgb, refined=True)
            band = max(1.0, max(size) / max(alpha.shape))
            return Layers(matte, estimate_foreground(rgb, matte, band, settings.foreground_side), refined=True)
        except (MemoryError, cv2.error) as exc:
            reason = f"the refinement failed ({type(exc).__name__}: {str(exc).strip()[:200]})"
            return Layers(upsample(alpha, size), rgb, refined=False, fallback=reason, failed=True)
    return Layers(upsample(alpha, size), rgb, refined=False, fallback=reason)


def _blur_fusion(image: np.ndarray, fore: np.ndarray, back: np.ndarray, alpha: np.ndarray,
                 radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Blurred foreground and background of one blur-fusion pass (all float32, image-shaped)."""
    a = alpha[..., None]
    blurred_a = _box(alpha, radius)[..., None]
    blurred_f = _box(fore * a, radius) / (blurred_a + np.float32(1e-5))
    blurred_b = _box(back * (1 - a), radius) / ((1 - blurred_a) + np.float32(1e-5))
    return blurred_f, blurred_b


def _fuse(image: np.ndarray, alpha: np.ndarray, blurred_f: np.ndarray, blurred_b: np.ndarray) -> np.ndarray:
    """F = F_blur + alpha (I - alpha F_blur - (1 - alpha) B_blur), clipped to [0, 1]: alpha (N, 1), others (N, 3)."""
    spread = blurred_f - blurred_b
    spread *= alpha
    fore = image - blurred_b  # = I - alpha F_blur - (1 - alpha) B_blur after subtracting alpha (F_blur - B_blur)
    fore -= spread
    fore *= alpha
    fore += blurred_f
    return np.clip(fore, 0.0, 1.0, out=fore)


def foreground_radii(band: float, scale: float) -> tuple[int, int]:
    """Blur-fusion radii (wide, narrow) at a size ``scale`` x the output's, for soft edges ``band`` output px wide.

    A box must reach well past the soft edge into opaque foreground and clear background: the wide pass
    spans ``WIDE_BANDS`` edge widths each side, the narrow one a quarter (chosen on the tuning set of
    ``python -m evaluation.refinement --tune``; Forte and Pitie's 90 and 6 px boxes suit 1-2 MP mattes).
    """
    return max(1, round(WIDE_BANDS * band * scale)), max(1, round(NARROW_BANDS * band * scale))


_SAMPLE_ROW = 4096  # cv2.remap maps are 2-D and under 32767 on a side: N samples as rows of this length


def _sample(planes: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear samples (N, C) of ``planes`` (h, w, C), as if resized to ``size`` (width, height), at (ys, xs)."""
    height, width = planes.shape[:2]
    count = ys.size
    padded = -(-count // _SAMPLE_ROW) * _SAMPLE_ROW
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count] = (xs + 0.5) * (width / size[0]) - 0.5
    map_y[:count] = (ys + 0.5) * (height / size[1]) - 0.5
    shape = (padded // _SAMPLE_ROW, _SAMPLE_ROW)
    sampled = cv2.remap(planes, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, planes.shape[2])[:count]


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray, band: float = 1.0, work_side: int = 512) -> np.ndarray:
    """The foreground colour (uint8 (H, W, 3)) of the photo ``rgb`` under the matte ``alpha`` (float (H, W)).

    ``band`` is about how wide the matte's soft edges are, in pixels: the upsampling factor of a model
    matte (``layers`` passes output side / matte side), 1 for a matte made at the photo's size.

    Blur fusion x2 (Forte and Pitie): a wide pass estimates the foreground and background colours near
    each pixel from where alpha is high and low, a narrow pass refines them from the first pass's
    estimates, and each soft pixel's colour is solved from the photo, its alpha and those two. The blurs
    are smooth, so they run at ``work_side`` pixels on the longest side; only the soft pixels (alpha
    strictly between 0 and 1 in 8 bits) are solved at the full size. Elsewhere the photo's colour is kept
    (alpha 1: it is the foreground; alpha 0: the cutout zeroes it).
    """
    if rgb.shape[:2] != alpha.shape or rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) photo and its (H, W) alpha, got {rgb.shape}, {alpha.shape}")
    height, width = alpha.shape
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    flat = np.flatnonzero((alpha >= np.float32(0.5 / 255)) & (alpha < np.float32(254.5 / 255)))
    out = rgb.copy()
    if flat.size == 0:
        return out
    small = fit((width, height), work_side)
    image = _resize(rgb, small, cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)
    a = np.clip(_resize(alpha, small, cv2.INTER_AREA), 0.0, 1.0)
    wide, narrow = foreground_radii(band, max(small) / max(width, height))
    blurred_f, blurred_b = _blur_fusion(image, image, image, a, wide)
    fore = _fuse(image, a[..., None], blurred_f, blurred_b)
    blurred_f, blurred_b = _blur_fusion(image, fore, blurred_b, a, narrow)
    ys, xs = np.divmod(flat, width)
    blurred = _sample(np.concatenate([blurred_f, blurred_b], axis=-1), ys, xs, (width, height))
    pixels = out.reshape(-1, 3)
    colour = pixels.take(flat, axis=0).astype(np.float32) * np.float32(1 / 255)
    fused = _fuse(colour, alpha.reshape(-1).take(flat)[:, None], blurred[:, :3], blurred[:, 3:])
    pixels[flat] = np.rint(fused * 255).astype(np.uint8)
    return out
