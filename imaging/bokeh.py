"""Portrait depth of field: a photo re-rendered as if shot with a wide-open lens focused at one nearness.

The blur of a defocused point is a disc, the circle of confusion (CoC). Its radius in pixels grows linearly
with the distance of the pixel's nearness from the focal plane's (``coc_scale``)::

    radius = MAX_COC * (aperture / MAX_APERTURE) * max(H, W) * |nearness - focus|

so at aperture 10 a pixel at the far end of the depth map, focused at its near end (|nearness - focus| = 1),
is blurred into a disc of radius 3 % of the photo's longest side (120 px at 4000 x 3000); aperture 0 returns
the photo unchanged. Nearness is the depth PNG's scale (imaging/outputs.py: linear in depth, 1 = nearest),
so this is a thin lens's CoC (proportional to |1/depth - 1/focus depth|) only for shallow scenes; it keeps
``focus`` and the strength in the depth map's units.

The rendering is layered, as in Kraus and Strengert ("Depth-of-Field Rendering by Pyramidal Image
Processing", Eurographics 2007) and Google's portrait mode (Wadhwa et al., "Synthetic Depth-of-Field with a
Single-Camera Mobile Phone", SIGGRAPH 2018), so that a sharp subject leaves no halo:

- Layers: the CoC is quantised into layers on each side of the focal plane (behind it: farther; in front:
  nearer) with radii ``r_max, r_max / 2, r_max / 4, ...`` down to ``MIN_RADIUS`` px (``levels``), ``r_max``
  the largest CoC on that side in this photo (so the farthest backdrop is one layer and gets clean discs). A
  pixel's weight goes to the two layers around its CoC, linearly in radius; below the smallest layer it is
  shared with the in-focus layer, which is the photo itself at the full size. A pixel's weights sum to 1.
- Discs: each blurred layer's premultiplied colour (in linear light) and its coverage are convolved with a
  disc of its radius (``disc_kernel``, anti-aliased; not a Gaussian, so a bright point becomes a flat round
  disc). The layers are composited with "over", far to near: behind the focal plane from the farthest in,
  then the in-focus layer, then the layers in front of it from the focal plane out, so a layer's colour only
  spreads over what is behind it. The composite behind the in-focus layer is normalised by its coverage
  (opaque from ``SUPPORT``): next to a sharp subject, the blurred backdrop is the mean of the backdrop around
  it, with none of the subject's colour, which is in no backdrop layer.
- The subject: with a ``matte``, the subject is its own layer: sharp, at the full size, when ``focus`` is
  within its depth range (``subject_depth``: the 10th to 90th percentile of the nearness under the matte);
  otherwise blurred as a whole with the disc of its end nearest the focal plane and composited at its depth,
  over the backdrop's layers of the same CoC. Its coverage is the matte, so its soft
  edge is the matte's; the backdrop's coverage is 1 - matte, given to the layers by the backdrop's own
  nearness. In the soft edge, the subject's colour is the cutout colour (imaging/matte.py,
  ``estimate_foreground``: blur fusion) and the backdrop's what the matte's compositing equation leaves,
  (photo - matte x cutout) / (1 - matte): the old sharp backdrop does not show in the subject's hair, and the
  subject's colour is not blurred into the backdrop. The in-focus layer is composited in sRGB values, as a
  matte composites, so a pixel entirely in focus keeps the photo's value exactly.
- Under a blurred near object (the subject focused past, or the backdrop in front of the focal plane) the
  lens sees part of what is behind its edge. What is behind is unknown; the in-focus backdrop blurred as much
  as the most blurred thing in front, normalised, is put under everything and fills it in, so a blurred near
  edge fades out on both sides of its outline instead of ending in a hard-edged blurred cutout.
- Highlights: in linear light, channel values above ``HIGHLIGHT_KNEE`` are stretched before blurring so that
  a clipped white counts as ``HIGHLIGHT_GAIN`` (3) times white, and the blurred result is mapped back by the
  inverse curve: a flat bright area is unchanged, while a small clipped highlight spread into a disc stays
  bright, as a real light's bokeh ball does, instead of fading into a dim grey disc.

Cost: the blurred layers are made from the photo reduced by a whole factor to at most ``BASE_PIXELS`` (half
size at 12 MP, ``base_size``), and each is blurred at the size where its disc has ``reduced_radius`` px: 5 px
for most (an 11 x 11 kernel, convolved directly; 13 x 13 and over go through a DFT, 4x slower), up to 12 px
for the largest, whose layers are small, and 1.5-3 px for discs under 10 px. The layers are upsampled
bilinearly as each is composited over the coarser ones and the stacks once to the full size; only the
in-focus layer, the matte's work and the final composite (cv2.blendLinear on uint8) are at the full size.
Measured on two shared cores (skimage.data.astronaut resized, a vertical depth gradient, a disc matte):
focused on the subject 0.11-0.25 s at 1 MP and 0.9-1.3 s at 12 MP; focused on the backdrop, the subject and
five depth layers blurred in front of it, 0.37-0.4 s at 1 MP and 1.8-2.0 s at 12 MP (CPU time; wall time was
the same or, with the machine's other work, up to twice that).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from imaging.matte import estimate_foreground, fit

MAX_COC = 0.03  # CoC radius at aperture MAX_APERTURE and |nearness - focus| = 1, as a fraction of the longest side
MAX_APERTURE = 10.0
MIN_RADIUS = 1.5  # px: the smallest blurred layer's radius is in [MIN_RADIUS, 2 MIN_RADIUS)
IN_FOCUS_RADIUS = 0.5  # px: a CoC under this is in focus (a side of the focal plane, or the subject)
REDUCED_RADIUS = 5.0  # px: a large layer is blurred at the size where its disc has this radius (11 x 11 taps)
SMALLEST_REDUCED_RADIUS, SMALL_REDUCED_RADIUS = 1.5, 3.0  # px: a small layer's disc where it is blurred
LARGEST_REDUCED_RADIUS, DISC_PIXELS = 12.0, 120_000  # px, and the most pixels a layer with a larger disc may have
BASE_PIXELS = 3_000_000  # the blurred layers are made from the photo reduced to at most this many pixels
HIGHLIGHT_KNEE, HIGHLIGHT_GAIN = 0.75, 3.0  # linear light: above the knee, stretched so that 1.0 -> the gain
BACKDROP_REACH = 0.01  # of the longest side: how far from the subject the depth map's backdrop is not trusted
SUPPORT = 0.05  # the normalised backdrop is opaque where the blurred backdrop layers cover at least this much
_SLOPE = 1.0 + (HIGHLIGHT_GAIN - 1.0) / (1.0 - HIGHLIGHT_KNEE)  # of the highlight curve above the knee
_EPS = 1e-6
_SLACK = 1e-4  # nearness and matte values this far outside [0, 1] (float rounding of filters) are clipped


def _decode_lut() -> np.ndarray:
    """uint8 sRGB -> float32 linear light with the highlight boost, as a 256-entry LUT for cv2.LUT."""
    v = np.arange(256, dtype=np.float64) / 255
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    boosted = linear + (_SLOPE - 1.0) * np.maximum(linear - HIGHLIGHT_KNEE, 0.0)
    return boosted.astype(np.float32)


def _encode_lut() -> np.ndarray:
    """Boosted linear light quantised to 16 bits over [0, HIGHLIGHT_GAIN] -> uint8 sRGB (inverse boost, clipped)."""
    boosted = np.arange(_ENCODE_STEPS, dtype=np.float64) * (HIGHLIGHT_GAIN / (_ENCODE_STEPS - 1))
    linear = np.clip(boosted - (_SLOPE - 1.0) / _SLOPE * np.maximum(boosted - HIGHLIGHT_KNEE, 0.0), 0.0, 1.0)
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(encoded * 255).astype(np.uint8)


_ENCODE_STEPS = 65536  # boosted linear steps of 4.6e-5: under 0.2 of an 8-bit step near black, where sRGB is steepest
_DECODE, _ENCODE = _decode_lut(), _encode_lut()


def _encode(premultiplied: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Premultiplied boosted linear colour (float32 (h, w, 3)) and its coverage -> uint8 sRGB colour.

    cv2.multiply rounds and saturates into the 16-bit LUT index in one pass (numpy: four).
    """
    per_step = np.float32((_ENCODE_STEPS - 1) / HIGHLIGHT_GAIN) / np.maximum(coverage, np.float32(_EPS))
    steps = cv2.multiply(premultiplied, cv2.merge([per_step, per_step, per_step]), dtype=cv2.CV_16U)
    return _ENCODE.take(steps)


def coc_scale(shape: tuple[int, ...], aperture: float) -> float:
    """The CoC radius in pixels per unit of |nearness - focus| for a photo of ``shape`` (H, W, ...)."""
    return MAX_COC * (aperture / MAX_APERTURE) * max(shape[0], shape[1])


def levels(r_max: float) -> list[float]:
    """The blurred layers' radii (px, ascending) for a side of the focal plane whose largest CoC is ``r_max``."""
    if r_max < IN_FOCUS_RADIUS:
        return []
    count = max(1, math.floor(math.log2(r_max / MIN_RADIUS)) + 1) if r_max >= MIN_RADIUS else 1
    return [r_max / 2.0**j for j in range(count - 1, -1, -1)]


def disc_kernel(radius: float) -> np.ndarray:
    """A disc of ``radius`` px, anti-aliased (each tap's weight ~ its area inside the circle), summing to 1."""
    half = max(0, math.ceil(radius + 0.5) - 1)
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    taps = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)
    return (taps / taps.sum()).astype(np.float32)


def _tent(radius: np.ndarray, lower: float, centre: float, upper: float | None) -> np.ndarray:
    """The weight of the layer at ``centre`` between its neighbours: 1 at centre, 0 at lower and upper.

    ``upper`` None: the outermost layer, weight 1 from ``centre`` on.
    """
    rising = (radius - np.float32(lower)) * np.float32(1.0 / (centre - lower))
    if upper is not None:
        rising = np.minimum(rising, (np.float32(upper) - radius) * np.float32(1.0 / (upper - centre)))
    return np.clip(rising, 0.0, 1.0)


def _area(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``x`` area-averaged to ``size`` (width, height); unchanged at its own size."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    return cv2.resize(x, size, interpolation=cv2.INTER_AREA)


def _linear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``x`` bilinearly resized to ``size`` (width, height); unchanged at its own size."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    return cv2.resize(x, size, interpolation=cv2.INTER_LINEAR)


def base_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """The size (width, height) the blurred layers are made at: the photo reduced by the smallest whole factor
    that brings it to at most ``BASE_PIXELS`` (OpenCV's area resize is fastest for whole factors)."""
    height, width = shape[0], shape[1]
    factor = max(1, math.ceil(math.sqrt(height * width / BASE_PIXELS)))
    return max(1, round(width / factor)), max(1, round(height / factor))


def reduced_radius(radius: float, pixels: int) -> float:
    """The disc's radius at the size a layer of ``radius`` px of a ``pixels``-pixel photo is blurred at.

    Discs under ``2 REDUCED_RADIUS`` px are halved, to between ``SMALLEST_REDUCED_RADIUS`` and
    ``SMALL_REDUCED_RADIUS`` px (the upsampling's own softness is then under a pixel of the full size; the
    smallest stay at the base size); larger ones get ``REDUCED_RADIUS`` px (11 x 11 taps, convolved
    directly), and the largest, whose reduced layers are small, up to ``LARGEST_REDUCED_RADIUS`` px while the
    layer has at most ``DISC_PIXELS`` pixels (convolved through a DFT): the sharper the disc's rim after
    upsampling, the more a bokeh ball looks like a lens's.
    """
    if radius < 2.0 * REDUCED_RADIUS:
        return min(radius, max(SMALLEST_REDUCED_RADIUS, min(radius / 2.0, SMALL_REDUCED_RADIUS)))
    return min(LARGEST_REDUCED_RADIUS, max(REDUCED_RADIUS, radius * math.sqrt(DISC_PIXELS / pixels)))


def _soft(alpha: np.ndarray) -> np.ndarray:
    """Flat indices of the matte's soft pixels (strictly between 0 and 1 in 8 bits), as estimate_foreground's."""
    return np.flatnonzero((alpha >= np.float32(0.5 / 255)) & (alpha < np.float32(254.5 / 255)))


def _backdrop_srgb(rgb: np.ndarray, fore: np.ndarray, alpha: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """The backdrop's colour B (uint8 sRGB): the photo where alpha is 0, 0 under the opaque subject, and in the
    soft edge what the matte's compositing equation leaves, (photo - alpha F) / (1 - alpha), F the cutout colour."""
    backdrop = cv2.copyTo(rgb, (alpha < np.float32(254.5 / 255)).view(np.uint8))
    if soft.size:
        pixels = backdrop.reshape(-1, 3)
        a = alpha.reshape(-1).take(soft)[:, None]
        photo = pixels.take(soft, axis=0).astype(np.float32)
        subject = fore.reshape(-1, 3).take(soft, axis=0).astype(np.float32)
        pixels[soft] = np.clip(np.rint((photo - a * subject) / (1.0 - a)), 0, 255).astype(np.uint8)
    return backdrop


def _premultiplied_linear(colour: np.ndarray, coverage: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Linear light (boosted) x coverage, float32 (H, W, 3), of a uint8 colour that is already 0 where the
    coverage is 0: only the soft pixels are multiplied (elsewhere the coverage is 0 or 1)."""
    linear = cv2.LUT(colour, _DECODE)
    if soft.size:
        flat = linear.reshape(-1, 3)
        flat[soft] = flat.take(soft, axis=0) * coverage.reshape(-1).take(soft)[:, None]
    return linear


@dataclass(frozen=True)
class _Backdrop:
    """What the backdrop's blurred layers are made of, at the base size."""

    premultiplied: np.ndarray  # float32 (h, w, 4): linear RGB x coverage, coverage (1 - matte)
    nearness: np.ndarray  # float32 (h, w): the backdrop's nearness (next to the subject: _backdrop_nearness)
    longest: int  # the full photo's longest side, px


def _make_backdrop(rgb: np.ndarray, nearness: np.ndarray, cover: np.ndarray | None,
                   linear: np.ndarray | None) -> _Backdrop:
    """The backdrop at ``base_size``; with a matte, ``cover`` (1 - matte) and ``linear``, its premultiplied
    linear colour, at the full size."""
    base = base_size(rgb.shape)
    premultiplied = np.empty((base[1], base[0], 4), np.float32)
    longest = max(rgb.shape[:2])
    if cover is None or linear is None:
        premultiplied[..., :3] = _area(cv2.LUT(rgb, _DECODE), base)
        premultiplied[..., 3] = 1.0
        return _Backdrop(premultiplied, _area(nearness, base), longest)
    premultiplied[..., :3] = _area(linear, base)
    coverage = premultiplied[..., 3]
    coverage[...] = _area(cover, base)
    return _Backdrop(premultiplied, _backdrop_nearness(_area(nearness, base), coverage), longest)


def _backdrop_nearness(nearness: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """The backdrop's nearness at the base size: within ``BACKDROP_REACH`` of the subject (and under its soft
    edge) that of the nearest subject-free pixel beyond it; elsewhere the depth map's.

    A depth model's map is softer than the matte at the subject's outline: next to the subject, and in the
    backdrop part of the matte's soft pixels, it gives the backdrop the subject's depth, which would keep a
    ring of sharp backdrop around a sharp subject. There the backdrop is taken to be as far as the backdrop
    just beyond the reach (cv2.distanceTransformWithLabels: the nearest such pixel, whose labels count the
    zero pixels in raster order).
    """
    pure = (coverage >= np.float32(0.999)).view(np.uint8)
    if pure.all():
        return nearness
    side = 2 * max(1, round(BACKDROP_REACH * max(coverage.shape))) + 1
    trusted = cv2.erode(pure, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)),
                        borderType=cv2.BORDER_CONSTANT, borderValue=1)
    if not trusted.any():
        return nearness
    _, labels = cv2.distanceTransformWithLabels(1 - trusted, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    nearest = nearness[trusted.view(bool)].take(labels - 1)
    return np.where(trusted.view(bool), nearness, nearest)


def _subject_layer(fore: np.ndarray, alpha: np.ndarray, soft: np.ndarray, base: tuple[int, int]) -> np.ndarray:
    """The subject's premultiplied linear colour and coverage (the matte) at ``base``, float32 (h, w, 4)."""
    colour = cv2.copyTo(fore, (alpha >= np.float32(0.5 / 255)).view(np.uint8))
    layer = np.empty((base[1], base[0], 4), np.float32)
    layer[..., :3] = _area(_premultiplied_linear(colour, alpha, soft), base)
    layer[..., 3] = _area(alpha, base)
    return layer


def subject_depth(nearness: np.ndarray, matte: np.ndarray) -> tuple[float, float]:
    """The subject's depth range: the 10th and 90th percentiles of ``nearness`` where ``matte`` >= 0.5.

    On a grid of about 250k pixels. The subject is one layer: sharp when ``focus`` is anywhere in this range
    (focusing on the face or the shoulder keeps the whole subject sharp), else blurred by the CoC of its end
    nearest the focal plane.
    """
    step = max(1, math.isqrt(nearness.size // 250_000))
    inside = nearness[::step, ::step][matte[::step, ::step] >= 0.5]
    if inside.size == 0:
        inside = nearness[::step, ::step]
    far, near = np.percentile(inside, [10.0, 90.0])
    return float(far), float(near)


def _subject_coc(depth: tuple[float, float], focus: float, scale: float) -> float:
    """The subject's signed CoC (> 0 behind the focal plane, < 0 in front, 0 in focus) from its depth range."""
    far, near = depth
    if focus > near:
        return scale * (focus - near)
    if focus < far:
        return scale * (focus - far)
    return 0.0


@dataclass(frozen=True)
class _Item:
    """One blurred layer: ``source`` (base size, premultiplied, (h, w, 4)) x ``weight`` (None: 1), a disc of
    ``radius`` px of the full size; a stack composites its items in ascending ``order``."""

    radius: float
    source: np.ndarray
    weight: np.ndarray | None
    order: float


def _blurred(item: _Item, longest: int) -> np.ndarray:
    """An item convolved with its disc, at the size where the disc has about ``reduced_radius`` px, float32
    (h, w, 4). Reductions from the base size under 3x are by a whole factor (OpenCV's area resize is several
    times faster then), rounded down unless that makes the disc over 1.25 x ``reduced_radius``."""
    base_h, base_w = item.source.shape[:2]
    base_longest = max(base_h, base_w)
    pixels = round(base_h * base_w * (longest / base_longest) ** 2)  # the full photo's
    target = reduced_radius(item.radius, pixels)
    factor = base_longest * item.radius / (longest * target)
    if factor < 3.0:  # whole: the smaller unless its disc is over 1.25 x the target
        low = max(1, math.floor(factor))
        factor = low if item.radius * base_longest / (longest * low) <= 1.25 * target else math.ceil(factor)
    size = fit((base_w, base_h), base_longest / factor)
    source = item.source if item.weight is None else item.source * item.weight[..., None]
    reduced = item.radius * max(size) / longest
    return cv2.filter2D(_area(source, size), -1, disc_kernel(reduced), borderType=cv2.BORDER_REFLECT)


def _over(top: np.ndarray, below: np.ndarray | None) -> np.ndarray:
    """Premultiplied ``top`` over ``below`` (resized to ``top``'s size), both float32 (h, w, 4); may reuse ``below``."""
    if below is None:
        return top
    below = _linear(below, (top.shape[1], top.shape[0]))
    below *= 1.0 - top[..., 3:]
    below += top
    return below


def _stack(items: list[_Item], longest: int, behind: bool) -> np.ndarray | None:
    """The items blurred and composited with "over", at the size of the last (finest) one; None: no items.

    Behind the focal plane the items come bottom-up (the farthest, largest CoC first); in front, top-down
    (the nearest, largest CoC first). Either way the sizes grow from the coarsest.
    """
    stack = None
    for item in sorted(items, key=lambda item: item.order):
        layer = _blurred(item, longest)
        if behind:
            stack = _over(layer, stack)
        else:
            stack = layer if stack is None else _over(_linear(stack, (layer.shape[1], layer.shape[0])), layer)
    return stack


def _radii(backdrop: _Backdrop, focus: float, scale: float) -> tuple[list[float], list[float]]:
    """The backdrop's blurred layers' radii behind and in front of the focal plane, from its CoC range."""
    seen = backdrop.premultiplied[..., 3] > np.float32(1e-3)  # base pixels with some backdrop in them
    if not seen.any():
        return [], []
    nearness = backdrop.nearness[seen]
    far, near = float(nearness.min()), float(nearness.max())
    return levels(max(focus - far, 0.0) * scale), levels(max(near - focus, 0.0) * scale)


def _side_items(backdrop: _Backdrop, focus: float, scale: float, radii: list[float]) -> list[_Item]:
    """The backdrop's layers on one side (``scale`` < 0: in front), each weighted by its tent in the CoC."""
    if not radii:
        return []
    radius = backdrop.nearness * np.float32(-scale) + np.float32(focus * scale)  # the CoC, < 0 on the other side
    items = []
    bounds = [0.0, *radii]
    for index, centre in enumerate(radii):
        upper = radii[index + 1] if index + 1 < len(radii) else None
        weight = _tent(radius, bounds[index], centre, upper)
        if weight.any():
            items.append(_Item(centre, backdrop.premultiplied, weight, -centre))
    return items


def _unpremultiply(stack: np.ndarray, size: tuple[int, int], opaque_at: float) -> tuple[np.ndarray, np.ndarray]:
    """A stack -> (sRGB uint8 colour, float32 coverage) at ``size``; coverage scaled by 1 / ``opaque_at``.

    The coverage is at least 1e-4, so that a pixel covered by nothing else still gets the stack's colour.
    """
    coverage = np.ascontiguousarray(stack[..., 3])
    colour = _encode(stack[..., :3], coverage)
    cover = np.clip(coverage * np.float32(1.0 / opaque_at), 1e-4, 1.0)
    return _linear(colour, size), _linear(cover, size)


def _focus_weight(nearness: np.ndarray, focus: float, scale: float, behind: list[float],
                  front: list[float]) -> np.ndarray:
    """The in-focus layer's weight: 1 at the focal plane, 0 from the smallest blurred layer's CoC on.

    1 - CoC / (smallest layer's radius) on each side, clipped; 1 on a side with no blurred layer.
    """
    weight = np.ones(nearness.shape, np.float32)
    for radii, sign in ((behind, -1.0), (front, 1.0)):
        if radii:
            per = sign * scale / radii[0]
            np.minimum(weight, nearness * np.float32(-per) + np.float32(1.0 + focus * per), out=weight)
    return np.clip(weight, 0.0, 1.0, out=weight)


def _check(rgb: np.ndarray, nearness: np.ndarray, focus: float, aperture: float, matte: np.ndarray | None) -> None:
    """ValueError unless the arrays and arguments are as ``bokeh`` documents."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {getattr(rgb, 'dtype', type(rgb))} "
                         f"{getattr(rgb, 'shape', '')}")
    for name, plane in (("nearness", nearness), ("matte", matte)):
        if plane is None:
            continue
        if not isinstance(plane, np.ndarray) or plane.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be a float32 array, got {getattr(plane, 'dtype', type(plane))}")
        if plane.shape != rgb.shape[:2]:
            raise ValueError(f"{name} is {plane.shape}, the photo {rgb.shape[:2]}: they must be the same size")
        low, high = float(plane.min()), float(plane.max())
        if not (low >= -_SLACK and high <= 1.0 + _SLACK):
            raise ValueError(f"{name} must be in [0, 1], got values in [{low}, {high}]")
    for name, value, high in (("focus", focus, 1.0), ("aperture", aperture, MAX_APERTURE)):
        if not (isinstance(value, numbers.Real) and 0.0 <= value <= high):
            raise ValueError(f"{name} must be a number in [0, {high:g}], got {value!r}")


def _plane(plane: np.ndarray) -> np.ndarray:
    """A checked nearness or matte as contiguous float32, clipped to [0, 1] if rounding left it outside."""
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    if float(plane.min()) < 0.0 or float(plane.max()) > 1.0:
        plane = np.clip(plane, 0.0, 1.0)
    return plane


def _composite(layer: np.ndarray, cover: np.ndarray, behind: tuple[np.ndarray, np.ndarray],
               front: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """front over (in-focus layer over normalised behind), normalised, in sRGB values at the full size.

    ``layer``/``cover``: the in-focus layer's uint8 colour and coverage; ``behind``, ``front``: colour and
    coverage of the stacks. cv2.blendLinear blends two uint8 images with per-pixel weights and divides by
    their sum: one pass per "over", normalised.
    """
    plate, plate_cover = behind
    under = (1.0 - cover) * plate_cover
    out = cv2.blendLinear(layer, plate, cover, under)
    if front is not None:
        colour, front_cover = front
        out = cv2.blendLinear(colour, out, front_cover, (1.0 - front_cover) * (cover + under))
    return out


@dataclass(frozen=True)
class _Subject:
    """The matte's subject: cutout colour, matte, soft pixels, backdrop colour, and its signed CoC (> 0 behind)."""

    fore: np.ndarray
    alpha: np.ndarray
    soft: np.ndarray
    backdrop: np.ndarray  # uint8 sRGB colour of the backdrop (0 under the opaque subject)
    coc: float

    @property
    def sharp(self) -> bool:
        """In focus: kept at the full size in the in-focus layer."""
        return abs(self.coc) < IN_FOCUS_RADIUS


def _in_focus_layer(rgb: np.ndarray, subject: _Subject | None, in_focus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The in-focus layer's uint8 sRGB colour and coverage at the full size.

    The in-focus share of the backdrop (coverage (1 - alpha) x ``in_focus``) and, when it is in focus, the
    subject (coverage alpha, the cutout colour F): premultiplied alpha F (1 - in_focus) + in_focus x photo.
    """
    if subject is None:
        return rgb, in_focus
    if not subject.sharp:
        return subject.backdrop, (1.0 - subject.alpha) * in_focus
    share = subject.alpha * (1.0 - in_focus)
    return cv2.blendLinear(subject.fore, rgb, share, in_focus), share + in_focus


def _items(backdrop: _Backdrop, subject: _Subject | None, focus: float, scale: float,
           radii: tuple[list[float], list[float]]) -> tuple[list[_Item], list[_Item]]:
    """The items behind and in front of the focal plane: the backdrop's layers, the subject's if it is blurred,
    and under everything behind, if anything is in front, the in-focus backdrop blurred as much as the most
    blurred thing in front: it fills in what a blurred near object's translucent edge lets through."""
    behind, front = _side_items(backdrop, focus, scale, radii[0]), _side_items(backdrop, focus, -scale, radii[1])
    if subject is not None and not subject.sharp:
        base = (backdrop.nearness.shape[1], backdrop.nearness.shape[0])
        layer = _subject_layer(subject.fore, subject.alpha, subject.soft, base)
        # on top of the backdrop's layer of the same radius on either side
        if subject.coc > 0:
            behind.append(_Item(subject.coc, layer, None, -subject.coc + 0.5))
        else:
            front.append(_Item(-subject.coc, layer, None, subject.coc - 0.5))
    if front:
        fill = _focus_weight(backdrop.nearness, focus, scale, *radii)
        behind.append(_Item(max(item.radius for item in front), backdrop.premultiplied, fill, -math.inf))
    return behind, front


def bokeh(rgb: np.ndarray, nearness: np.ndarray, focus: float, aperture: float,
          matte: np.ndarray | None = None) -> np.ndarray:
    """The photo ``rgb`` (uint8 (H, W, 3)) with the depth of field of a lens focused at nearness ``focus``.

    ``nearness``: float32 (H, W) in [0, 1], 1 = nearest (the depth PNG / 65535). ``aperture`` in [0, 10]:
    the CoC radius is ``MAX_COC * aperture / 10 * max(H, W) * |nearness - focus|`` px (3 % of the longest side
    at aperture 10 and defocus 1; 0 returns a copy of the photo). ``matte``: float32 (H, W) in [0, 1], the
    subject's alpha: the subject is one layer, sharp when ``focus`` is within its depth range
    (``subject_depth``) and blurred as a whole otherwise, composited with its soft edge from the matte.

    Returns uint8 (H, W, 3); pixels entirely in focus keep their value exactly. ValueError for wrong dtypes,
    shapes or ranges.
    """
    _check(rgb, nearness, focus, aperture, matte)
    scale = coc_scale(rgb.shape, aperture)
    if scale == 0.0:
        return rgb.copy()
    height, width = rgb.shape[:2]
    near = _plane(nearness)
    subject = None
    if matte is None:
        backdrop = _make_backdrop(rgb, near, None, None)
    else:
        alpha = _plane(matte)
        fore = estimate_foreground(rgb, alpha, max(1.0, max(height, width) / 512))
        soft = _soft(alpha)
        colour, cover = _backdrop_srgb(rgb, fore, alpha, soft), 1.0 - alpha
        backdrop = _make_backdrop(rgb, near, cover, _premultiplied_linear(colour, cover, soft))
        subject = _Subject(fore, alpha, soft, colour, _subject_coc(subject_depth(near, alpha), focus, scale))
    radii = _radii(backdrop, focus, scale)
    behind_items, front_items = _items(backdrop, subject, focus, scale, radii)
    behind = _stack(behind_items, backdrop.longest, behind=True)
    if behind is None:  # nothing behind the focal plane: a backdrop that is never seen
        behind = np.zeros((*backdrop.nearness.shape, 4), np.float32)
    front = _stack(front_items, backdrop.longest, behind=False)
    in_focus = _linear(_focus_weight(backdrop.nearness, focus, scale, *radii), (width, height))
    layer, cover = _in_focus_layer(rgb, subject, in_focus)
    size = (width, height)
    return _composite(layer, cover, _unpremultiply(behind, size, SUPPORT),
                      None if front is None else _unpremultiply(front, size, 1.0))
