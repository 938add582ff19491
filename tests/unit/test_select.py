"""Select at a tap (imaging/select.py): the classical region, layer and subject rules, negative points, bad input."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from imaging.errors import ParameterError
from imaging.select import MAX_POINTS, select

ASTRONAUT_ALPHA = Path(__file__).resolve().parents[2] / "evaluation" / "data" / "astronaut_alpha_ref.png"
OVERLAYS = Path("/tmp/select")
Photo = tuple[np.ndarray, np.ndarray]  # an RGB photo and its ground-truth mask or matte


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


def save_overlay(rgb: np.ndarray, mask: np.ndarray, points: list[tuple[int, int]], name: str) -> None:
    """The selection in green over the photo, taps in yellow, at /tmp/select/<name>.png (for a look by eye)."""
    alpha = mask.astype(np.float32)[..., None] / 255 * 0.6
    out = (rgb * (1 - alpha) + np.array([0, 255, 0]) * alpha).astype(np.uint8)
    for point in points:
        cv2.circle(out, point, 5, (255, 255, 0), -1)
    OVERLAYS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(out).save(OVERLAYS / f"{name}.png")


@pytest.fixture(scope="module")
def disc_photo() -> Photo:
    """A red disc (radius 70) on a textured grey-green background, 320x400, and the disc's mask."""
    rng = np.random.default_rng(7)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (320, 400)).astype(np.float32), (0, 0), 3)
    noise = noise / noise.std()
    stripes = 20 * np.sin(np.arange(400) / 9.0)[None, :]
    base = np.clip(np.stack([110 + 25 * noise + stripes, 140 + 25 * noise, 100 + 25 * noise - stripes], -1), 0, 255)
    yy, xx = np.mgrid[:320, :400]
    inside = (xx - 230) ** 2 + (yy - 150) ** 2 <= 70 ** 2
    rgb = base.astype(np.uint8)
    rgb[inside] = np.clip(np.array([200, 30, 35]) + 12 * noise[inside, None], 0, 255).astype(np.uint8)
    return rgb, inside


@pytest.fixture(scope="module")
def astronaut() -> Photo:
    """skimage's astronaut and its reference person matte (float32 0-1)."""
    matte = np.asarray(Image.open(ASTRONAUT_ALPHA).convert("L"), dtype=np.float32) / 255
    return skimage.data.astronaut(), matte


def test_a_tap_in_the_disc_returns_the_disc(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    empty = np.zeros(inside.shape, np.float32)
    result = select(rgb, [(250, 170)], [], empty, False, {})
    save_overlay(rgb, result.mask, [(250, 170)], "disc_tap")
    assert result.source == "region"
    assert result.mask.dtype == np.uint8 and result.mask.shape == inside.shape
    assert iou(result.mask >= 128, inside) >= 0.85


def test_a_tap_on_the_background_leaves_the_disc_out(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    empty = np.zeros(inside.shape, np.float32)
    result = select(rgb, [(40, 280)], [], empty, False, {})
    save_overlay(rgb, result.mask, [(40, 280)], "disc_background")
    selected = result.mask >= 128
    assert result.source == "region"
    assert selected[280, 40]
    assert np.count_nonzero(selected & inside) <= 0.01 * np.count_nonzero(inside)


def test_the_region_is_found_at_twelve_megapixels_with_smooth_edges(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    big = cv2.resize(rgb, (4000, 3200), interpolation=cv2.INTER_CUBIC)
    big_inside = cv2.resize(inside.astype(np.uint8), (4000, 3200), interpolation=cv2.INTER_NEAREST) > 0
    result = select(big, [(2500, 1700)], [], np.zeros(big_inside.shape, np.float32), False, {})
    assert result.mask.shape == (3200, 4000)
    assert iou(result.mask >= 128, big_inside) >= 0.85
    edge = np.count_nonzero((result.mask > 0) & (result.mask < 255))
    perimeter = 2 * np.pi * 700
    assert 0.5 * perimeter <= edge <= 6 * perimeter  # anti-aliased: a ramp of a few pixels, not a blur nor a step


def test_a_tap_on_a_layer_returns_the_finest_layer_holding_it(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    eyes = np.zeros(inside.shape, np.uint8)
    eyes[140:160, 200:260] = 255
    face = np.zeros(inside.shape, np.uint8)
    face[100:220, 170:290] = 255
    subject = inside.astype(np.float32)
    result = select(rgb, [(220, 150)], [], subject, True, {"eyes": eyes, "face": face})
    assert result.source == "eyes"
    assert np.array_equal(result.mask, eyes)
    outside_eyes = select(rgb, [(180, 110)], [], subject, True, {"eyes": eyes, "face": face})
    assert outside_eyes.source == "face"
    assert np.array_equal(outside_eyes.mask, face)


def test_a_tap_on_the_subject_returns_the_matte(astronaut: Photo) -> None:
    rgb, matte = astronaut
    for subject_is_person, source in ((True, "person"), (False, "object")):
        result = select(rgb, [(220, 400)], [], matte, subject_is_person, {})
        assert result.source == source
        assert iou(result.mask >= 128, matte >= 0.5) >= 0.9
        assert np.abs(result.mask.astype(np.float32) - matte * 255).max() <= 1


@pytest.mark.parametrize(("name", "tap"), [("flag", (40, 150)), ("rocket_tank", (410, 60)), ("table", (470, 300)),
                                           ("wall", (300, 60))])
def test_a_background_tap_never_returns_the_astronaut(astronaut: Photo, name: str, tap: tuple[int, int]) -> None:
    rgb, matte = astronaut
    result = select(rgb, [tap], [], matte, True, {})
    save_overlay(rgb, result.mask, [tap], f"astronaut_{name}")
    selected = result.mask >= 128
    assert result.source == "region"
    assert selected[tap[1], tap[0]]
    assert np.count_nonzero(selected & (matte >= 0.5)) < 0.01 * np.count_nonzero(selected)
    assert 0.001 <= selected.mean() <= 0.3  # a thing, not a speck and not the whole background


def test_negative_points_cut_the_classical_region(astronaut: Photo) -> None:
    rgb, matte = astronaut
    tap, cut = (300, 60), (330, 200)
    whole = select(rgb, [tap], [], matte, True, {}).mask >= 128
    assert whole[cut[1], cut[0]]  # the wall right of her head reaches down to the cut point
    result = select(rgb, [tap], [cut], matte, True, {})
    save_overlay(rgb, result.mask, [tap], "astronaut_wall_minus")
    assert result.mask[cut[1], cut[0]] == 0
    assert result.mask[tap[1], tap[0]] >= 128
    assert not np.any((result.mask >= 128) & (matte >= 0.5))


def test_a_negative_point_inside_the_matte_splits_it(astronaut: Photo) -> None:
    rgb, matte = astronaut
    helmet, face = (390, 440), (220, 130)
    result = select(rgb, [face], [helmet], matte, True, {})
    save_overlay(rgb, result.mask, [face], "astronaut_person_minus_helmet")
    selected = result.mask >= 128
    assert result.source == "person"
    assert result.mask[helmet[1], helmet[0]] == 0
    assert selected[face[1], face[0]]
    assert not np.any(selected & (matte < 0.5))  # a part of the matte, never more
    assert 0.05 * np.count_nonzero(matte >= 0.5) <= np.count_nonzero(selected) < np.count_nonzero(matte >= 0.5)


def test_a_negative_point_outside_the_chosen_layer_leaves_it_whole(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    eyes = np.zeros(inside.shape, np.uint8)
    eyes[140:160, 200:260] = 255
    result = select(rgb, [(220, 150)], [(30, 30)], inside.astype(np.float32), True, {"eyes": eyes})
    assert np.array_equal(result.mask, eyes)


@pytest.mark.parametrize(("points", "negative", "message"), [
    ([(400, 10)], [], r"point \(400, 10\) lies outside the photo: x must be 0-399, y 0-319"),
    ([(10, -1)], [], r"point \(10, -1\) lies outside the photo: x must be 0-399, y 0-319"),
    ([(10, 10)], [(5, 320)], r"point \(5, 320\) lies outside the photo"),
    ([], [(10, 10)], "at least one positive point"),
    ([(i, 0) for i in range(MAX_POINTS)], [(0, 5)], f"at most {MAX_POINTS} in all"),
    ([(10, 10)], [(10, 10)], r"\(10, 10\) is given both as positive and as negative"),
    ([(10.5, 10)], [], "pair of whole pixels"),
    ([(10,)], [], "pair of whole pixels"),
])
def test_bad_points_are_refused_with_the_fix(disc_photo: Photo, points: list, negative: list, message: str) -> None:
    rgb, inside = disc_photo
    with pytest.raises(ParameterError, match=message):
        select(rgb, points, negative, np.zeros(inside.shape, np.float32), False, {})


def test_sixteen_points_are_accepted(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    points = [(230 + i, 150) for i in range(MAX_POINTS - 2)]
    result = select(rgb, points, [(20, 20), (380, 300)], np.zeros(inside.shape, np.float32), False, {})
    assert iou(result.mask >= 128, inside) >= 0.85


def test_arrays_that_do_not_fit_are_refused(disc_photo: Photo) -> None:
    rgb, inside = disc_photo
    subject = np.zeros(inside.shape, np.float32)
    with pytest.raises(ValueError, match=r"rgb must be a uint8 HxWx3 array, got float32"):
        select(rgb.astype(np.float32), [(1, 1)], [], subject, False, {})
    with pytest.raises(ValueError, match=r"subject must be a float HxW array of the photo's size 320x400"):
        select(rgb, [(1, 1)], [], subject[:, :-1], False, {})
    with pytest.raises(ValueError, match=r"subject must be a float"):
        select(rgb, [(1, 1)], [], subject.astype(np.uint8), False, {})
    with pytest.raises(ValueError, match=r"subject values must lie in \[0, 1\], got 0 to 255"):
        select(rgb, [(1, 1)], [], subject + inside * 255, False, {})
    with pytest.raises(ValueError, match=r"layer 'eyes' must be a uint8 array of the photo's size"):
        select(rgb, [(1, 1)], [], subject, False, {"eyes": np.zeros((10, 10), np.uint8)})
    with pytest.raises(ValueError, match=r"layer 'eyes' must be a uint8"):
        select(rgb, [(1, 1)], [], subject, False, {"eyes": subject})
