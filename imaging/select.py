"""Select at a tap: the 8-bit mask of what lies under one or more points of the photo.

``select`` picks, for the first positive point, the first of:

1. a face-part layer that holds it (value >= 128), the finest first (the caller's order): that layer, source = its name;
2. the subject matte, when it holds the point (>= 0.5): the matte as 8-bit, source ``"person"`` or ``"object"``;
3. the region around the point, source ``"region"``, found by classical colour segmentation: OpenCV's GrabCut (a
   Gaussian-mixture colour model of foreground and background, cut by graph cut), not a learned model. A learned
   point-prompt segmenter (the SAM family) would replace it once permissively licensed weights ship in a registry
   package. GrabCut runs on a copy at most ``WORK_SIDE`` pixels on its longest side, ``ITERATIONS`` times, seeded by:
   definite foreground, discs at the positive points; definite background, the subject (so a tap on the background
   never returns the person), discs at the negative points and the image border farther than ``FAR`` of the longest
   side from every positive point; probable foreground, the colours within ``TOLERANCE`` of the tap, flood-filled
   from it (on a lightly blurred Lab copy) without crossing an edge (Canny); everything else starts as probable
   background. Only the component that
   touches a positive point is kept; it is upsampled with anti-aliased edges and the subject is taken out again at
   full size (softly, along the matte's own edge). When too few pixels of either kind are left for the colour models
   (a tiny or uniform photo), the flood-filled region is the result.

Negative points always remove. When the layer or matte chosen by rules 1-2 holds a negative point (>= 128 there), it
is split by the same GrabCut, run inside it (its outside is definite background) and seeded by all the points; the
source keeps the layer's name. Whatever the rule, the mask is 0 in a small disc (``SEED_RADIUS`` of the longest side,
shrunk so that discs of opposite sign never meet) around every negative point. Positive points after the first only
seed GrabCut: they do not change the rule, and on rule 3 those on the subject are ignored.

Points are ``(x, y)`` pixels of the output-size arrays. Points outside the photo, more than ``MAX_POINTS`` in all, no
positive point or a point given as both raise ``ParameterError`` (a ``ValueError``) saying what to fix; arrays of the
wrong type or shape raise ``ValueError``.

Measured on 2 CPU cores (median of 5, skimage's astronaut enlarged): the GrabCut path takes 0.4-1.1 s at 1 MP and
0.4-1.2 s at 12 MP (GrabCut's time depends on the region, not the photo's size, since it runs at ``WORK_SIDE``);
rules 1-2 take 2 ms at 1 MP, 35 ms at 12 MP. Being colour-based, the region follows colour and edges, not objects: a
tap on a striped flag gets the stripes near it, one on a textured background may get only the patch around the tap,
and a pale object with a soft edge against a pale wall (the astronaut photo's white rocket) leaks into the wall.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral

import cv2
import numpy as np

from contract.product import MAX_POINTS  # positive and negative points together
from imaging.errors import ParameterError

WORK_SIDE = 512  # longest side of the copy GrabCut runs on
ITERATIONS = 4  # GrabCut iterations
SEED_RADIUS = 0.01  # radius of the definite discs at the points, as a fraction of the longest side
FAR = 0.35  # border pixels farther than this fraction of the longest side from every positive point are background
TOLERANCE = (22, 22, 22)  # flood fill: Lab values (OpenCV 8-bit scale) within this of the tap are probable foreground
EDGE = 2.0  # anti-aliased edge width of the region, output pixels
EDGE_SIGMA = 0.7  # blur of the work-size region before it is enlarged, work pixels
EDGES = (20, 60)  # Canny thresholds of the edges the flood fill does not cross
MATTE_FLOOR = 0.1  # subject values under this are model noise, over 1 - MATTE_FLOOR certain (when taking it out)
MIN_MODEL_PIXELS = 64  # fewer pixels of either kind than this leave GrabCut's colour models without data
_SLACK = 1e-4  # subject values this far outside [0, 1] (float rounding) are clipped, not refused


@dataclass(frozen=True)
class Selection:
    """The selected mask (uint8, the arrays' size, 255 = selected) and which rule chose it."""

    mask: np.ndarray
    source: str


Point = tuple[int, int]


def select(rgb: np.ndarray, points: Sequence[Point], negative: Sequence[Point], subject: np.ndarray,
           subject_is_person: bool, layers: Mapping[str, np.ndarray]) -> Selection:
    """The mask of what lies under ``points`` (and not under ``negative``); see the module docstring for the rules."""
    height, width = _check_arrays(rgb, subject, layers)
    positives = _check_points(points, "points", width, height)
    negatives = _check_points(negative, "negative", width, height)
    _check_counts(positives, negatives)
    subject = np.clip(subject, 0.0, 1.0).astype(np.float32, copy=False)
    radii_pos, radii_neg = _seed_radii(positives, negatives, max(height, width))
    x, y = positives[0]

    chosen = _chosen_mask(x, y, subject, subject_is_person, layers)
    if chosen is None:
        allowed = 1.0 - np.clip((subject - MATTE_FLOOR) / (1.0 - 2.0 * MATTE_FLOOR), 0.0, 1.0)
        region = _grabcut_region(rgb, positives, negatives, radii_pos, radii_neg, subject < 0.5, far_border=True)
        mask = _to_uint8(region * allowed)
        source = "region"
    else:
        mask, source = chosen
        if any(mask[ny, nx] >= 128 for nx, ny in negatives):
            region = _grabcut_region(rgb, positives, negatives, radii_pos, radii_neg, mask >= 128, far_border=False)
            mask = _to_uint8(region * (mask.astype(np.float32) / 255.0))
        else:
            mask = mask.copy()
    for (nx, ny), radius in zip(negatives, radii_neg, strict=True):
        cv2.circle(mask, (nx, ny), radius, 0, thickness=-1)
    return Selection(mask=mask, source=source)


def _chosen_mask(x: int, y: int, subject: np.ndarray, subject_is_person: bool,
                 layers: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str] | None:
    """Rules 1 and 2: the finest layer, else the subject matte (8-bit), holding (x, y); None when neither does."""
    for name, layer in layers.items():
        if layer[y, x] >= 128:
            return layer, name
    if subject[y, x] >= 0.5:
        return _to_uint8(subject), "person" if subject_is_person else "object"
    return None


def _grabcut_region(rgb: np.ndarray, positives: list[Point], negatives: list[Point], radii_pos: list[int],
                    radii_neg: list[int], allowed: np.ndarray, far_border: bool) -> np.ndarray:
    """GrabCut's region (float32 0-1, full size) joined to a positive point, inside ``allowed`` (bool, full size)."""
    height, width = allowed.shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    small_allowed = (cv2.resize(allowed.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
                     if scale < 1 else allowed)
    pos = [_scaled(p, scale, size) for p in positives]
    neg = [_scaled(p, scale, size) for p in negatives]
    rpos = [max(0, math.floor(r * scale)) for r in radii_pos]
    on = [allowed[y, x] for x, y in positives]
    seeds = [p for p, ok in zip(pos, on, strict=True) if ok]
    seed_radii = [r for r, ok in zip(rpos, on, strict=True) if ok]
    rneg = [max(0, math.floor(r * scale)) for r in radii_neg]

    flood = _flood(small_rgb, seeds, seed_radii, neg, rneg, small_allowed)
    labels = np.full(small_allowed.shape, cv2.GC_PR_BGD, np.uint8)
    labels[flood] = cv2.GC_PR_FGD
    for p, r in zip(pos, rpos, strict=True):
        cv2.circle(labels, p, r, cv2.GC_FGD, thickness=-1)
    labels[~small_allowed] = cv2.GC_BGD
    if far_border:
        labels[_far_border(small_allowed.shape, seeds, max(size) * FAR) & ~flood] = cv2.GC_BGD
    for p, r in zip(neg, rneg, strict=True):
        cv2.circle(labels, p, r, cv2.GC_BGD, thickness=-1)
    for px, py in seeds:  # the positive points themselves stay foreground, whatever disc covers them
        labels[py, px] = cv2.GC_FGD

    foreground = flood.copy()
    background = (labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)
    if np.count_nonzero(background) >= MIN_MODEL_PIXELS and np.count_nonzero(~background) >= MIN_MODEL_PIXELS:
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        cv2.grabCut(small_rgb, labels, None, bgd_model, fgd_model, ITERATIONS, cv2.GC_INIT_WITH_MASK)
        foreground = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    foreground = _joined(foreground, seeds)
    return _upsampled(foreground, (width, height), scale)


def _flood(small_rgb: np.ndarray, seeds: list[Point], rpos: list[int], neg: list[Point], rneg: list[int],
           allowed: np.ndarray) -> np.ndarray:
    """Pixels of colour within ``TOLERANCE`` of a seed and joined to it without crossing an edge, inside ``allowed``.

    The edges (Canny, ``EDGES``, thickened to close one-pixel gaps) are cleared under the seeds' discs; the
    negative points' discs are never filled.
    """
    lab = cv2.cvtColor(cv2.GaussianBlur(small_rgb, (5, 5), 0), cv2.COLOR_RGB2LAB)
    grey = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), *EDGES), np.ones((3, 3), np.uint8))
    blocked = ((~allowed) | (edges > 0)).astype(np.uint8)
    for p, r in zip(seeds, rpos, strict=True):  # an edge under the tap (a highlight, texture) must not stop the fill
        cv2.circle(blocked, p, r, 0, thickness=-1)
    blocked[~allowed] = 1
    for p, r in zip(neg, rneg, strict=True):
        cv2.circle(blocked, p, r, 1, thickness=-1)
    fill = cv2.copyMakeBorder(blocked, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    for px, py in seeds:
        if fill[py + 1, px + 1] == 0:
            cv2.floodFill(lab, fill, (px, py), 0, TOLERANCE, TOLERANCE, flags)
    return fill[1:-1, 1:-1] == 255


def _far_border(shape: tuple[int, int], seeds: list[Point], distance: float) -> np.ndarray:
    """The one-pixel frame of ``shape``, where farther than ``distance`` from every seed."""
    frame = np.zeros(shape, bool)
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = True
    ys, xs = np.nonzero(frame)
    far = np.ones(xs.shape, bool)
    for px, py in seeds:
        far &= np.hypot(xs - px, ys - py) > distance
    frame[ys[~far], xs[~far]] = False
    return frame


def _joined(foreground: np.ndarray, seeds: list[Point]) -> np.ndarray:
    """The connected components (8-connected) of ``foreground`` that hold a seed."""
    _, labels = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
    keep = {int(labels[py, px]) for px, py in seeds if foreground[py, px]}
    return np.isin(labels, sorted(keep)) if keep else np.zeros_like(foreground)


def _upsampled(foreground: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """A work-size binary mask at ``size`` (width, height) as float32 0-1 with edges about ``EDGE`` output pixels wide.

    The mask is blurred a little (``EDGE_SIGMA`` work pixels, which rounds the staircase), enlarged bilinearly and
    its 0.5 crossing steepened so that the ramp spans about ``EDGE`` output pixels whatever the enlargement.
    """
    soft = cv2.GaussianBlur(foreground.astype(np.float32), (0, 0), EDGE_SIGMA)
    if scale >= 1:
        return soft
    enlarged = cv2.resize(soft, size, interpolation=cv2.INTER_LINEAR)
    rise = scale / (EDGE_SIGMA * math.sqrt(2 * math.pi))  # slope of the enlarged edge at 0.5, per output pixel
    steep = max(1.0, 1.0 / (EDGE * rise))
    return np.clip((enlarged - 0.5) * steep + 0.5, 0.0, 1.0)


def _scaled(point: Point, scale: float, size: tuple[int, int]) -> Point:
    """``point`` of the full-size arrays on the work copy of ``size`` (width, height)."""
    return min(size[0] - 1, int(point[0] * scale)), min(size[1] - 1, int(point[1] * scale))


def _seed_radii(positives: list[Point], negatives: list[Point], side: int) -> tuple[list[int], list[int]]:
    """Disc radii at the points: ``SEED_RADIUS`` of ``side``, under half the way to the nearest opposite point."""
    base = max(1, round(SEED_RADIUS * side))

    def radii(own: list[Point], other: list[Point]) -> list[int]:
        out = []
        for x, y in own:
            nearest = min((math.hypot(x - ox, y - oy) for ox, oy in other), default=4.0 * base)
            out.append(max(0, min(base, math.ceil(nearest / 2) - 1)))
        return out

    return radii(positives, negatives), radii(negatives, positives)


def _to_uint8(alpha: np.ndarray) -> np.ndarray:
    """A 0-1 float map as uint8 0-255 (rounded)."""
    return (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_arrays(rgb: np.ndarray, subject: np.ndarray, layers: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """The photo's (height, width), after checking the photo, the subject matte and the layers fit together."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a uint8 HxWx3 array, got {_describe(rgb)}")
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"rgb is empty ({width}x{height}); give a photo of at least one pixel")
    if not isinstance(subject, np.ndarray) or subject.shape != (height, width) or subject.dtype.kind != "f":
        raise ValueError(f"subject must be a float HxW array of the photo's size {height}x{width}, "
                         f"got {_describe(subject)}")
    low, high = float(subject.min()), float(subject.max())
    if not (-_SLACK <= low and high <= 1 + _SLACK):
        raise ValueError(f"subject values must lie in [0, 1], got {low:g} to {high:g} (NaN if not finite); "
                         "pass the matte as a 0-1 float map")
    if not isinstance(layers, Mapping):
        raise ValueError(f"layers must be a mapping of name to uint8 HxW array, got {type(layers).__name__}")
    for name, layer in layers.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"layer names must be non-empty strings, got {name!r}")
        if not isinstance(layer, np.ndarray) or layer.dtype != np.uint8 or layer.shape != (height, width):
            raise ValueError(f"layer {name!r} must be a uint8 array of the photo's size {height}x{width}, "
                             f"got {_describe(layer)}")
    return height, width


def _describe(value: object) -> str:
    """``value``'s dtype and shape when it is an array, else its type."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} of shape {value.shape}"
    return type(value).__name__


def _check_points(points: Sequence[Point], what: str, width: int, height: int) -> list[Point]:
    """``points`` as a list of int pairs, each inside the photo."""
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise ParameterError(f"{what} must be a list of (x, y) pixel pairs, got {type(points).__name__}")
    checked = []
    for point in points:
        if (not isinstance(point, Sequence) or len(point) != 2
                or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in point)):
            raise ParameterError(f"each of {what} must be an (x, y) pair of whole pixels, got {point!r}")
        x, y = int(point[0]), int(point[1])
        if not (0 <= x < width and 0 <= y < height):
            raise ParameterError(f"point ({x}, {y}) lies outside the photo: x must be 0-{width - 1}, "
                                 f"y 0-{height - 1}")
        checked.append((x, y))
    return checked


def _check_counts(positives: list[Point], negatives: list[Point]) -> None:
    """At least one positive point, at most ``MAX_POINTS`` in all, none both positive and negative."""
    if not positives:
        raise ParameterError("give at least one positive point (x, y) on what to select; negative points only "
                             "remove from a selection")
    if len(positives) + len(negatives) > MAX_POINTS:
        raise ParameterError(f"{len(positives)} positive and {len(negatives)} negative points are too many: "
                             f"give at most {MAX_POINTS} in all")
    both = sorted(set(positives) & set(negatives))
    if both:
        raise ParameterError(f"point {both[0]} is given both as positive and as negative; give it once")
