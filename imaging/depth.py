"""Depth at the output size that follows the photo: guided upsampling, then fusion with the served matte.

FastDepth (and any small monocular model) sees the photo at 224x224; bilinearly upsampled, its depth
edges are blobs several model pixels wide that ignore the photo's edges, and on a portrait composited
over a real backdrop the person is sometimes placed behind the backdrop. ``follow_photo`` fixes both:

1. **Guided upsampling.** The model's map, rescaled to [0, 1] by its own min and max, goes through the
   fast guided filter (He and Sun, "Fast Guided Filter", 2015; the guided filter of He, Sun and Tang,
   "Guided Image Filtering", TPAMI 2013) with the photo as guide, coefficients at ``work_scale`` x the
   model's side and applied at the output size (``imaging.matte.fast_guided_filter``): inside each
   window the depth becomes a linear function of the photo's colour, so where the photo has an edge the
   depth change sits on it, and where the photo is flat the depth stays smooth. ``eps`` (on guide values
   in [0, 1]) decides how strong a photo edge must be to carry a depth edge; a larger ``eps`` copies
   less of the photo's texture into the depth. The result is brought back to the model's units (it
   stays within the model's min and max).
2. **Fusion with the matte** (``fuse``; a heuristic, not a learned model: portraits put the subject in
   front of what surrounds it). At a reduced size (``fusion_side``), with the subject ``S`` = matte
   >= 0.5 and ``dist`` the distance to it:

   - *zone*: the pixels within ``zone_model_px`` model pixels of ``S``, where the model's blob mixes
     the subject into the backdrop, plus the guided filter's reach (twice its radius, in model pixels),
     which spreads that mixture farther (a halo where the photo is flat).
   - *backdrop*: inside the zone, the model's depth is replaced by the backdrop from outside the zone,
     filled in by a normalised box filter (the median beyond the zone where nothing is near), blending
     back to the guided depth over a second zone width.
   - *ring*: the median of that backdrop around ``S``, from its edge to ``ring_fraction`` of the
     longest side beyond the zone: the backdrop as it will be seen next to the subject.
   - *subject level*: ``min(median depth in S's core, ring - margin)``, ``margin`` = ``margin`` x the
     map's robust span (2nd to 98th percentile): the subject is never behind its backdrop; a subject
     the model already puts in front keeps its depth.
   - *subject relief*: the model's own variation inside the subject (depth - its median), averaged
     from the core (S eroded by the zone, or by half its thickness if that is less, so the backdrop
     mixed into the subject's rim does not leak in) by a normalised box filter, and clipped to
     ``relief`` x ``margin`` either way: the subject keeps its shape (a nearer arm stays nearer) but
     is consistent and stays in front.

   At the output size ``depth = alpha * subject + (1 - alpha) * backdrop`` with the served (soft)
   matte ``alpha``, so the depth edge is the matte's edge. What is heuristic: the ordering itself (a
   portrait's subject is in front of its surroundings; false for a person behind a table, whose table
   the matte does not include), ``margin``, the zone width and the ring width.

The ordering, edge alignment and subject consistency are measured on composites with known alpha by
``python -m evaluation.depth`` (``evaluation/depth_results.md``). Box filters and resizes are OpenCV's.
Above ``DepthSettings.max_pixels`` (or if OpenCV or memory fails) the plain bilinear map is returned and
the result says so (``guided``/``fused`` False, ``reason``): depth must never fail a request.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imaging.matte import fast_guided_filter, fit

MIN_SUBJECT_FRACTION = 1e-3  # a subject smaller than this fraction of the image is not fused
MIN_RING_PIXELS = 16  # at the fusion size: fewer backdrop pixels around the subject and there is no backdrop


@dataclass(frozen=True)
class DepthSettings:
    """How the depth is upsampled and fused; the defaults are what is served (``evaluation/depth_results.md``)."""

    guided: bool = True  # guided upsampling with the photo (False: bilinear)
    work_scale: float = 1.0  # the guided filter's coefficients at this x the model's longest side
    radius: int = 4  # guided-filter window radius at that reduced size
    eps: float = 1e-2  # guided-filter regulariser, guide in [0, 1]
    colour: bool = True  # RGB guide (3x3 covariances) or luma guide
    fuse: bool = True  # fuse with the matte when one is given
    fusion_side: int = 512  # longest side of the fusion's statistics and smooth fields
    zone_model_px: float = 3.0  # width of the model's blur around the subject, in model pixels
    ring_fraction: float = 0.05  # width of the backdrop ring, as a fraction of the longest side
    margin: float = 0.1  # the subject is at least this x the map's robust span in front of the ring
    relief: float = 0.5  # the subject's own depth variation is clipped to +- this x the margin
    max_pixels: int = 24_000_000  # above: plain bilinear

    def __post_init__(self) -> None:
        if self.radius < 1 or self.eps <= 0 or self.work_scale <= 0 or self.max_pixels < 1:
            raise ValueError(f"radius >= 1, eps > 0, work_scale > 0 and max_pixels >= 1, got {self}")
        if self.fusion_side < 8 or self.zone_model_px <= 0 or not 0 < self.ring_fraction < 1 or self.margin <= 0 \
                or self.relief < 0:
            raise ValueError(f"fusion_side >= 8, zone_model_px > 0, 0 < ring_fraction < 1, margin > 0, relief >= 0, "
                             f"got {self}")


SERVED = DepthSettings()


@dataclass(frozen=True)
class DepthResult:
    """The depth map at the output size and what was done to it."""

    depth: np.ndarray  # float32 (H, W), the model's units, larger = farther
    near: float  # min of ``depth``
    far: float  # max of ``depth``
    guided: bool  # edges follow the photo (guided upsampling) rather than bilinear
    fused: bool  # the subject of the matte was fused in front of its backdrop
    reason: str = ""  # why not guided or not fused ("" when both were done)


def _plane(depth: np.ndarray) -> np.ndarray:
    """The model's map as a float32 copy (never the caller's array); NaN and infinities become the median of
    the finite values."""
    if depth.ndim != 2 or depth.size == 0:
        raise ValueError(f"expected a non-empty 2-D depth map, got shape {depth.shape}")
    plane = np.array(depth, dtype=np.float32, order="C", copy=True)
    finite = np.isfinite(plane)
    if not finite.all():
        plane[~finite] = np.float32(np.median(plane[finite])) if finite.any() else np.float32(0.0)
    return plane


def _resize(plane: np.ndarray, size: tuple[int, int], shrink_area: bool = True) -> np.ndarray:
    """``plane`` at ``size`` (width, height): bilinear (pixel centres aligned), area-averaged when shrinking."""
    if (plane.shape[1], plane.shape[0]) == size:
        return plane
    shrink = shrink_area and size[0] <= plane.shape[1] and size[1] <= plane.shape[0]
    return cv2.resize(plane, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def bilinear(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The baseline: the model's map resized to ``size`` (width, height).

    Upsampling, this is ``imaging.outputs.depth_to_uint16``'s Pillow bilinear to within float rounding;
    shrinking averages areas (Pillow's bilinear filter is a wider triangle).
    """
    return _resize(_plane(depth), size)


def guided(depth: np.ndarray, rgb: np.ndarray, settings: DepthSettings = SERVED) -> np.ndarray:
    """The model's map at the size of the photo ``rgb`` (uint8 (H, W, 3)), its edges moved onto the photo's."""
    plane = _plane(depth)
    low, high = float(plane.min()), float(plane.max())
    height, width = rgb.shape[:2]
    if high <= low:
        return np.full((height, width), low, np.float32)
    unit = (plane - np.float32(low)) * np.float32(1 / (high - low))
    work = fit((width, height), settings.work_scale * max(plane.shape))
    q = fast_guided_filter(rgb, unit, work, settings.radius, settings.eps, settings.colour)
    q *= np.float32(high - low)
    q += np.float32(low)
    return q


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Two passes of a (2r+1)^2 box (about a Gaussian of sigma 0.8 r), edges mirrored."""
    side = 2 * max(1, radius) + 1
    once = cv2.blur(x, (side, side), borderType=cv2.BORDER_REFLECT)
    return cv2.blur(once, (side, side), borderType=cv2.BORDER_REFLECT)


def _normalised(values: np.ndarray, weights: np.ndarray, radius: int, default: float) -> np.ndarray:
    """Normalised convolution: box(values * weights) / box(weights); ``default`` where no weight is near."""
    total = _box(weights, radius)
    mean = _box(values * weights, radius) / np.maximum(total, np.float32(1e-6))
    return np.where(total > np.float32(1e-3), mean, np.float32(default)).astype(np.float32)


@dataclass(frozen=True)
class _Fields:
    """The fusion's smooth fields at the fusion size: subject depth, filled backdrop, and the zone weight."""

    subject: np.ndarray
    backdrop: np.ndarray
    zone: np.ndarray


def _distances(subject: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance of each pixel to the subject, distance of each subject pixel to the backdrop), float32 px."""
    outside = cv2.distanceTransform(np.where(subject, 0, 1).astype(np.uint8), cv2.DIST_L2, 3)
    inside = cv2.distanceTransform(subject.astype(np.uint8), cv2.DIST_L2, 3)
    return outside, inside


def _margin(depth: np.ndarray, ring: float, settings: DepthSettings) -> float:
    """How far in front of the ring the subject must be: ``margin`` x the robust span of the map."""
    low, high = np.percentile(depth, [2.0, 98.0])
    span = float(high - low)
    return settings.margin * (span if span > 0 else max(abs(ring), 1e-3))


def _backdrop(depth: np.ndarray, outside: np.ndarray, zone_px: float, default: float) -> tuple[np.ndarray, ...]:
    """(filled backdrop, zone weight, backdrop as fused) at the fusion size: inside the zone the depth is
    replaced by the backdrop from outside it, blending back to the depth over a second zone width."""
    valid = (outside > zone_px).astype(np.float32)
    fill = _normalised(depth, valid, max(1, round(zone_px)), default)
    zone = np.clip((2 * zone_px - outside) / np.float32(max(zone_px, 1e-3)), 0.0, 1.0).astype(np.float32)
    return fill, zone, depth + zone * (fill - depth)


def _fields(depth: np.ndarray, matte: np.ndarray, zone_px: float, settings: DepthSettings) -> _Fields | str:
    """The fusion at the reduced size (``depth`` and ``matte`` there); a reason string when there is none."""
    subject = matte >= 0.5
    if subject.sum() < max(1.0, MIN_SUBJECT_FRACTION * subject.size):
        return "no subject in the matte"
    outside, inside = _distances(subject)
    band = (outside > 0) & (outside <= zone_px + settings.ring_fraction * max(depth.shape))
    beyond = band & (outside > zone_px)
    if beyond.sum() < MIN_RING_PIXELS:
        return "no backdrop around the subject"
    fill, zone, backdrop = _backdrop(depth, outside, zone_px, float(np.median(depth[beyond])))
    ring = float(np.median(backdrop[band]))  # the backdrop as it will be seen around the subject
    core = inside >= min(zone_px, float(inside.max()) / 2)  # a thin subject's core is its middle
    median = float(np.median(depth[core]))
    margin = _margin(depth, ring, settings)
    level = min(median, ring - margin)
    relief = _normalised(depth - np.float32(median), core.astype(np.float32), max(1, round(zone_px)), 0.0)
    bound = settings.relief * margin
    relief = np.clip(relief, -bound, min(bound, ring - margin / 2 - level))
    return _Fields(relief + np.float32(level), fill, zone)


def _alpha(matte: np.ndarray) -> np.ndarray:
    """The matte as float32 in [0, 1] (a copy; NaN becomes 0)."""
    alpha = np.clip(matte, 0.0, 1.0, out=np.empty(matte.shape, np.float32))
    return cv2.patchNaNs(alpha, 0.0).reshape(matte.shape)


def fuse(depth: np.ndarray, matte: np.ndarray, model_side: int, settings: DepthSettings = SERVED,
         reach_model_px: float = 0.0) -> np.ndarray | str:
    """``depth`` (float32 (H, W), at the output size) with the subject of ``matte`` (same size) in front.

    ``model_side`` is the model map's longest side (how wide its blur is at the output size);
    ``reach_model_px`` how much farther the upsampling spread it, in model pixels (the guided filter's
    output depends on its input up to twice its radius away; 0 for bilinear). Returns the
    fused map, or a reason string when there is no subject or no backdrop around it. At the output size
    only in-place operations on two planes (a 12 MP plane is 48 MB; a fresh one costs page faults).
    """
    height, width = depth.shape
    small = fit((width, height), settings.fusion_side)
    zone_px = (settings.zone_model_px + reach_model_px) * max(small) / max(1, model_side)
    alpha = _alpha(matte)
    fields = _fields(_resize(depth, small), _resize(alpha, small), zone_px, settings)
    if isinstance(fields, str):
        return fields
    up = (width, height)
    out = cv2.resize(fields.backdrop, up, interpolation=cv2.INTER_LINEAR)  # the filled backdrop
    weight = cv2.resize(fields.zone, up, interpolation=cv2.INTER_LINEAR)
    out -= depth
    out *= weight
    out += depth  # backdrop = depth + zone (filled - depth)
    lift = cv2.resize(fields.subject, up, dst=weight, interpolation=cv2.INTER_LINEAR)
    lift -= out
    lift *= alpha
    out += lift  # alpha subject + (1 - alpha) backdrop
    return out


def _check(size: tuple[int, int], rgb: np.ndarray | None, matte: np.ndarray | None) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"the output size must be positive, got {size}")
    if rgb is not None and (rgb.shape != (height, width, 3) or rgb.dtype != np.uint8):
        raise ValueError(f"the photo must be uint8 ({height}, {width}, 3), got {rgb.dtype} {rgb.shape}")
    if matte is not None and matte.shape != (height, width):
        raise ValueError(f"the matte must be ({height}, {width}), got {matte.shape}")


def _result(depth: np.ndarray, guided_done: bool, fused_done: bool, reason: str) -> DepthResult:
    near, far, _, _ = cv2.minMaxLoc(depth)
    return DepthResult(depth, float(near), float(far), guided_done, fused_done, reason)


def _follow(plane: np.ndarray, size: tuple[int, int], rgb: np.ndarray | None, matte: np.ndarray | None,
            settings: DepthSettings) -> DepthResult:
    reasons = []
    if rgb is not None and settings.guided:
        depth, guided_done = guided(plane, rgb, settings), True
    else:
        depth, guided_done = _resize(plane, size), False
        reasons.append("no photo to guide the depth" if rgb is None else "guided upsampling is off")
    fused_done = False
    if matte is None or not settings.fuse:
        reasons.append("no matte to fuse" if matte is None else "fusion is off")
    else:
        reach = 2 * settings.radius / settings.work_scale if guided_done else 0.0
        fused = fuse(depth, matte, max(plane.shape), settings, reach)
        if isinstance(fused, str):
            reasons.append(fused)
        else:
            depth, fused_done = fused, True
    return _result(depth, guided_done, fused_done, "; ".join(reasons))


def follow_photo(depth: np.ndarray, size: tuple[int, int], rgb: np.ndarray | None, matte: np.ndarray | None,
                 settings: DepthSettings = SERVED) -> DepthResult:
    """The model's ``depth`` (float (h, w), larger = farther) at ``size`` (width, height), following the photo.

    ``rgb``: the photo at ``size``, uint8 (H, W, 3), or None (no guided upsampling); ``matte``: the served
    matte at ``size``, float in [0, 1], or None (no fusion). Raises ValueError only for inputs of the
    wrong shape or type; over ``settings.max_pixels``, or if OpenCV or memory fails, the plain bilinear
    map is returned with ``guided`` and ``fused`` False and the reason.
    """
    _check(size, rgb, matte)
    plane = _plane(depth)
    width, height = size
    if width * height > settings.max_pixels:
        reason = f"{width}x{height} is over the depth refinement's bound of {settings.max_pixels} pixels"
        return _result(_resize(plane, size), False, False, reason)
    try:
        return _follow(plane, size, rgb, matte, settings)
    except (MemoryError, cv2.error) as exc:
        reason = f"the depth refinement failed ({type(exc).__name__}: {str(exc).strip()[:200]})"
        return _result(_resize(plane, size), False, False, reason)


def nearness(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """float32 in [0, 1], 1 = nearest: ``(far - depth) / (far - near)``, the 16-bit depth PNG / 65535.

    ``near == far`` (a flat map) gives all 1, as the PNG does. Values outside [near, far] are clipped.
    """
    if not (np.isfinite(near) and np.isfinite(far)) or near > far:
        raise ValueError(f"expected finite near <= far, got near={near}, far={far}")
    if far == near:
        return np.ones(depth.shape, np.float32)
    out = np.subtract(np.float32(far), depth, dtype=np.float32)
    out *= np.float32(1.0 / (far - near))
    return np.clip(out, 0.0, 1.0, out=out)
