"""Object removal (``imaging.erase``) on a real photo with a planted object."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from imaging.erase import WORK_SIDE, fill, read_mask
from imaging.errors import ParameterError

OBJECT = (slice(200, 280), slice(470, 570))  # on the coffee photo's wooden table, right of the saucer


def planted(scale: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coffee photo, the same with a red square planted on the table, and the square's mask."""
    photo = skimage.data.coffee()
    if scale != 1:
        photo = cv2.resize(photo, (photo.shape[1] * scale, photo.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[OBJECT[0].start * scale:OBJECT[0].stop * scale, OBJECT[1].start * scale:OBJECT[1].stop * scale] = 255
    with_object = photo.copy()
    with_object[mask > 0] = (30, 60, 230)
    return photo, with_object, mask


@pytest.mark.parametrize("scale", [1, 4])  # 4: the region is inpainted at reduced size, then blended back
def test_the_planted_object_is_gone_and_nothing_else_changes(scale: int) -> None:
    photo, with_object, mask = planted(scale)
    marked = read_mask(mask, (mask.shape[1], mask.shape[0]))
    if scale == 4:
        assert max(mask.shape) * 1.0 > WORK_SIDE  # the reduced-size path runs
    out = fill(with_object, marked)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert (out[~marked] == with_object[~marked]).all()
    filled = out[marked].astype(float)
    to_table = np.abs(filled - photo[marked].astype(float)).mean()
    to_object = np.abs(filled - np.array([30, 60, 230])).mean()
    assert to_table < 25 and to_table < to_object / 3, (to_table, to_object)


def test_a_mask_of_another_size_with_the_photos_aspect_is_scaled() -> None:
    _, _, mask = planted()
    half = cv2.resize(mask, (mask.shape[1] // 2, mask.shape[0] // 2), interpolation=cv2.INTER_NEAREST)
    marked = read_mask(np.dstack([half] * 3), (mask.shape[1], mask.shape[0]))  # colour masks are read by luminance
    assert marked.shape == mask.shape and abs(marked.mean() - (mask > 0).mean()) < 0.002


@pytest.mark.parametrize(("mask", "problem"), [
    (np.zeros((40, 60), np.uint8), "marks nothing"),
    (np.full((40, 60), 127, np.uint8), "marks nothing"),
    (np.full((40, 60), 255, np.uint8), "whole photo"),
    (np.full((60, 60), 255, np.uint8), "cannot be scaled to the photo's 60x40"),
])
def test_unusable_masks_are_refused_with_what_to_do(mask: np.ndarray, problem: str) -> None:
    with pytest.raises(ParameterError, match=problem):
        read_mask(mask, (60, 40))


def test_a_hole_with_nothing_known_around_it_ends() -> None:
    """A hole that is its whole image never shrinks by erosion (OpenCV pads with the maximum): the ring loop must
    still end (it looped forever on a 1x1 photo tapped for erase before the fix)."""
    from imaging.erase import _onion_fill

    photo = np.full((3, 4, 3), 90, np.uint8)
    assert _onion_fill(photo, np.ones((3, 4), bool)).shape == photo.shape
