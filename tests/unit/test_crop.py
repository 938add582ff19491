"""Smart crop (imaging/crop.py): exact aspect, the subject kept, headroom, the nearness fallback, bad inputs."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from imaging.crop import HEADROOM, TRIM, crop_box, largest_box

ASTRONAUT_ALPHA = Path(__file__).resolve().parents[2] / "evaluation" / "data" / "astronaut_alpha_ref.png"
ASPECTS = [(1, 1), (4, 5), (5, 4), (3, 2), (2, 3), (16, 9), (9, 16), (21, 9), (1920, 1080), (1080, 1350)]


@pytest.fixture(scope="module")
def person() -> np.ndarray:
    """A real person's matte (the astronaut's reference alpha), float32 512x512."""
    return np.asarray(Image.open(ASTRONAUT_ALPHA).convert("L"), dtype=np.float32) / 255


def placed(matte: np.ndarray, size: tuple[int, int], x: int, y: int) -> np.ndarray:
    """``matte`` pasted at (x, y) on an empty canvas of ``size`` (width, height)."""
    canvas = np.zeros((size[1], size[0]), np.float32)
    canvas[y:y + matte.shape[0], x:x + matte.shape[1]] = matte
    return canvas


def disc(size: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    """A filled disc of alpha 1 on 0, float32 (height, width)."""
    return cv2.circle(np.zeros((size[1], size[0]), np.float32), centre, radius, 1.0, thickness=-1)


def inside(box: tuple[int, int, int, int], matte: np.ndarray) -> float:
    x, y, w, h = box
    return float(matte[y:y + h, x:x + w].sum() / matte.sum())


@pytest.mark.parametrize("size", [(4000, 3000), (3000, 4000), (1023, 767), (640, 640), (333, 1000)])
@pytest.mark.parametrize("aspect", ASPECTS)
def test_the_box_is_the_largest_of_the_exact_aspect(size: tuple[int, int], aspect: tuple[int, int]) -> None:
    width, height = size
    x, y, w, h = crop_box(np.zeros((height, width), np.float32), None, aspect)
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    a, b = aspect
    ideal_w, ideal_h = min(width, height * a / b), min(height, width * b / a)
    assert w >= 0.99 * ideal_w - 1 and h >= 0.99 * ideal_h - 1  # the largest, up to an exact ratio's rounding
    a, b = a // math.gcd(a, b), b // math.gcd(a, b)
    if min(width // a, height // b) >= 100:
        assert w * b == h * a  # common aspects at photo sizes are exact
    elif w * b != h * a:  # not exact: one side is the photo's and the other the nearest integer
        assert (w == width and abs(h - width * b / a) <= 0.5) or (h == height and abs(w - height * a / b) <= 0.5)


def test_an_exact_ratio_is_preferred_over_a_rounded_one() -> None:
    assert largest_box((3000, 4000), (16, 9)) == (2992, 1683)  # 2992 / 1683 == 16 / 9; rounding gives 3000x1688
    assert largest_box((4000, 3000), (16, 9)) == (4000, 2250)
    assert largest_box((4000, 3000), (4001, 3000)) == (4000, 2999)  # no exact box: the nearest integer


@pytest.mark.parametrize("aspect", [(1, 1), (9, 16), (4, 5), (2, 3)])
@pytest.mark.parametrize("x", [0, 300, 700, 1088])
def test_the_box_keeps_the_whole_person_when_she_fits(person: np.ndarray, aspect: tuple[int, int], x: int) -> None:
    matte = placed(person[:, 96:416], (1408, 640), x, 128)  # 320 wide, cut by the bottom edge
    box = crop_box(matte, None, aspect)
    assert box[2] >= 360  # room for her
    assert inside(box, matte) > 0.995


def test_a_subject_at_the_left_edge_gives_a_box_at_the_left(person: np.ndarray) -> None:
    matte = placed(person[:, :300], (1600, 600), 0, 88)
    x, _, w, _ = crop_box(matte, None, (1, 1))
    assert x == 0 and w == 600
    mirrored = matte[:, ::-1].copy()
    x, _, w, _ = crop_box(mirrored, None, (1, 1))
    assert x + w == 1600


def test_a_subject_that_fits_is_centred_horizontally() -> None:
    matte = disc((2000, 500), (900, 250), 100)
    x, _, w, _ = crop_box(matte, None, (1, 1))
    assert abs(x + w / 2 - 900) <= 2


def test_headroom_above_a_subject_taller_than_the_box(person: np.ndarray) -> None:
    matte = placed(person, (512, 1400), 0, 400)  # portrait photo, the person's top at about 400
    top = int(np.searchsorted(np.cumsum(matte.sum(axis=1)), TRIM * matte.sum()))  # the subject's top
    _, y, w, h = crop_box(matte, None, (16, 9))
    assert (w, h) == (512, 288)
    assert y < top  # not at the very top of the box
    assert abs((top - y) - HEADROOM * h) <= 3  # the subject's top a margin below the box top


def test_a_short_subject_is_centred_vertically_with_headroom() -> None:
    matte = disc((400, 2000), (200, 1000), 60)  # 120 tall in a box 400 tall
    _, y, _, h = crop_box(matte, None, (1, 1))
    assert h == 400
    assert abs((y + h / 2) - 1000) <= 2
    assert 940 - y >= HEADROOM * h


def test_a_subject_at_the_photo_top_keeps_the_box_inside() -> None:
    matte = disc((400, 2000), (200, 30), 60)
    _, y, _, _ = crop_box(matte, None, (1, 1))
    assert y == 0


def test_an_empty_matte_falls_back_to_nearness() -> None:
    size = (1600, 900)
    yy, xx = np.mgrid[:size[1], :size[0]]
    nearness = (0.2 + 0.2 * yy / size[1]).astype(np.float32)  # a floor, nearer towards the bottom
    nearness = np.maximum(nearness, 0.9 * disc(size, (1300, 450), 150))  # the near object on the right
    box = crop_box(np.zeros((size[1], size[0]), np.float32), nearness, (1, 1))
    assert inside(box, disc(size, (1300, 450), 150)) > 0.99
    assert box[0] > 400
    # a matte speck below the empty threshold does not count as a subject
    speck = np.zeros((size[1], size[0]), np.float32)
    speck[10:13, 10:13] = 1.0
    assert crop_box(speck, nearness, (1, 1)) == box


def test_a_matte_is_preferred_to_nearness() -> None:
    size = (1600, 900)
    matte = disc(size, (300, 450), 150)
    nearness = disc(size, (1300, 450), 150)
    x, _, w, _ = crop_box(matte, nearness, (1, 1))
    assert x < 300 < x + w


def test_no_subject_at_all_gives_a_centred_box() -> None:
    flat = np.full((900, 1600), 0.5, np.float32)
    assert crop_box(np.zeros((900, 1600), np.float32), flat, (1, 1)) == (350, 0, 900, 900)
    assert crop_box(np.zeros((900, 1600), np.float32), None, (3, 4)) == (462, 0, 675, 900)


def test_a_12_megapixel_matte() -> None:
    matte = disc((4000, 3000), (3500, 1500), 300)
    x, y, w, h = crop_box(matte, None, (4, 5))
    assert (w, h) == (2400, 3000) and x + w == 4000


@pytest.mark.parametrize(("matte", "nearness", "aspect", "message"), [
    (np.zeros((4, 4, 1), np.float32), None, (1, 1), "2-D|float"),
    (np.zeros((0, 4), np.float32), None, (1, 1), "non-empty"),
    (np.zeros((4, 4), np.uint8), None, (1, 1), "float"),
    (np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32), (1, 1), "same size"),
    (np.full((4, 4), np.nan, np.float32), None, (1, 1), "NaN"),
    (np.zeros((4, 4), np.float32), np.full((4, 4), np.inf, np.float32), (1, 1), "NaN or infinite"),
    (np.zeros((4, 4), np.float32), None, (0, 1), "positive"),
    (np.zeros((4, 4), np.float32), None, (-16, 9), "positive"),
    (np.zeros((4, 4), np.float32), None, (1.5, 1), "two integers"),
    (np.zeros((4, 4), np.float32), None, (16, 9, 1), "two integers"),
    (np.zeros((100, 100), np.float32), None, (1000, 1), "less than one pixel"),
])
def test_degenerate_inputs_raise(matte: np.ndarray, nearness: np.ndarray | None, aspect: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        crop_box(matte, nearness, aspect)
