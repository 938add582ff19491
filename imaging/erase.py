"""Object removal, classical: the masked region filled from its surroundings.

The fill (``fill``) is the one step a learned inpainting model would replace. It works as IMG.LY's
high-resolution inpainting does: the region and its surroundings are inpainted at a reduced size, where
OpenCV's Telea method (fast marching from the boundary) sees enough context; a large region is filled in
onion rings from its boundary inwards, each ring from what is known around it; the fill is scaled back up and
blended into the full-resolution photo, with a thin band along the boundary inpainted again at full resolution
so the edge matches the sharp surroundings. Pixels outside the mask are never changed.
"""

from __future__ import annotations

import cv2
import numpy as np

from imaging.errors import ParameterError

MARKED = 128  # mask value (by luminance) at and above which a pixel is erased
WORK_SIDE = 512  # longest side of the region's surroundings when inpainted
CONTEXT = 0.5  # the surroundings: the region's box grown by this fraction of its size on each side
RING_PX = 6  # width of one onion ring at the working size
RADIUS_PX = 5  # Telea's neighbourhood at the working size, in the outermost ring
MAX_RADIUS_PX = 15  # ... growing by one pixel per ring inwards, up to this
EDGE_BAND_PX = 3  # the boundary band inpainted again at full resolution
MAX_ASPECT_CHANGE = 0.02  # a mask may be scaled to the photo only if its aspect ratio is within 2 % of the photo's


def read_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool (H, W) mask at ``size`` (width, height) from an uploaded uint8 (h, w) or (h, w, 3) image."""
    grey = cv2.cvtColor(mask, cv2.COLOR_RGB2GRAY) if mask.ndim == 3 else mask
    height, width = grey.shape
    photo_w, photo_h = size
    if abs((width / height) / (photo_w / photo_h) - 1) > MAX_ASPECT_CHANGE:
        raise ParameterError(f"the mask is {width}x{height}, which cannot be scaled to the photo's "
                             f"{photo_w}x{photo_h}: send a mask with the photo's aspect ratio (ideally its size)")
    if (width, height) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    marked = grey >= MARKED
    if not marked.any():
        raise ParameterError(f"the mask marks nothing: paint what to erase white (values {MARKED} and above)")
    if marked.all():
        raise ParameterError("the mask marks the whole photo: there is nothing left to fill it from")
    return marked


def _onion_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Telea inpainting ring by ring from the boundary inwards, each ring from what is known around it (the
    photo and the rings before it), with a neighbourhood that grows inwards: deep inside a large region the
    fill is smooth rather than streaked."""
    filled, left = image.copy(), hole.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_PX + 1, 2 * RING_PX + 1))
    ring_index = 0
    while left.any():
        inner = cv2.erode(left.astype(np.uint8), kernel).astype(bool)
        if np.array_equal(inner, left):  # nothing known borders what is left (it reaches every side): fill it all
            inner = np.zeros_like(left)
        ring = left & ~inner
        radius = min(MAX_RADIUS_PX, RADIUS_PX + ring_index)
        step = cv2.inpaint(filled, left.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        filled[ring] = step[ring]
        left, ring_index = inner, ring_index + 1
    return filled


def fill(photo: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """The photo with the ``marked`` pixels inpainted; every other pixel is the photo's own."""
    ys, xs = np.nonzero(marked)
    height, width = marked.shape
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    grow_y, grow_x = int((bottom - top) * CONTEXT) + 8, int((right - left) * CONTEXT) + 8
    y0, y1 = max(0, top - grow_y), min(height, bottom + grow_y)
    x0, x1 = max(0, left - grow_x), min(width, right + grow_x)
    region, hole = photo[y0:y1, x0:x1], marked[y0:y1, x0:x1]
    shrink = min(1.0, WORK_SIDE / max(region.shape[:2]))
    if shrink < 1:
        small_size = (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink)))
        small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.uint8) * 255, small_size, interpolation=cv2.INTER_AREA) > 0
        coarse = cv2.resize(_onion_fill(small, small_hole), (region.shape[1], region.shape[0]),
                            interpolation=cv2.INTER_CUBIC)
        # The edge again at full resolution, from the photo's sharp surroundings and the coarse interior.
        band = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((2 * EDGE_BAND_PX + 1,) * 2, np.uint8)).astype(bool)
        seeded = np.where(hole[..., np.newaxis], coarse, region)
        edge = cv2.inpaint(seeded, band.astype(np.uint8), EDGE_BAND_PX, cv2.INPAINT_TELEA)
        filled_region = np.where(band[..., np.newaxis], edge, coarse)
    else:
        filled_region = _onion_fill(region, hole)
    result = photo.copy()
    result[y0:y1, x0:x1][hole] = filled_region[hole]
    return result
