"""Portrait depth of field (imaging/bokeh.py) on synthetic scenes whose depth, matte and sharpness are known."""

import cv2
import numpy as np
import pytest

from imaging.bokeh import MAX_COC, bokeh, coc_scale, disc_kernel, levels, subject_depth

SIDE = 384
CENTRE, RADIUS = SIDE // 2, 90  # the subject: a disc
SUBJECT_NEAR, BACKDROP_NEAR = 0.9, 0.1


def disc_matte(side: int = SIDE, centre: int = CENTRE, radius: float = RADIUS) -> np.ndarray:
    """An anti-aliased disc (soft edge ~1 px), float32."""
    y, x = np.mgrid[:side, :side].astype(np.float32)
    return np.clip(radius + 0.5 - np.hypot(x - centre, y - centre), 0.0, 1.0).astype(np.float32)


def textured_scene(soft_depth: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red, finely textured subject (near) over a grey-green textured backdrop (far): photo, nearness, matte.

    ``soft_depth``: the nearness blurred across the subject's edge, as a depth model's upsampled map is.
    """
    rng = np.random.default_rng(7)
    noise = rng.random((SIDE, SIDE, 1), dtype=np.float32)
    backdrop = np.array([80, 110, 85], np.float32) + 70 * noise
    stripes = (np.indices((SIDE, SIDE)).sum(axis=0) // 3 % 2).astype(np.float32)[..., None]
    subject = np.array([170, 30, 35], np.float32) + 60 * stripes + 20 * rng.random((SIDE, SIDE, 1), dtype=np.float32)
    matte = disc_matte()
    photo = np.rint(matte[..., None] * subject + (1 - matte[..., None]) * backdrop).astype(np.uint8)
    nearness = np.where(matte > 0.5, SUBJECT_NEAR, BACKDROP_NEAR).astype(np.float32)
    if soft_depth:
        nearness = cv2.GaussianBlur(nearness, (0, 0), 6.0)
    return photo, nearness, matte


def sharpness(rgb: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image inside ``region``."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[region].var())


def distance_from_subject(matte: np.ndarray) -> np.ndarray:
    """Signed distance (px) from the subject's edge: > 0 outside, < 0 inside."""
    outside = cv2.distanceTransform((matte < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    inside = cv2.distanceTransform((matte >= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    return outside - inside


@pytest.mark.parametrize("soft_depth", [False, True])
def test_the_subject_stays_sharp_and_the_backdrop_is_blurred(soft_depth: bool) -> None:
    photo, nearness, matte = textured_scene(soft_depth)
    out = bokeh(photo, nearness, SUBJECT_NEAR, 10.0, matte)
    distance = distance_from_subject(matte)
    inside, backdrop = distance < -3, distance > 20
    assert sharpness(out, inside) == pytest.approx(sharpness(photo, inside), rel=0.03)
    assert sharpness(out, backdrop) < 0.3 * sharpness(photo, backdrop)
    assert sharpness(out, backdrop) < 0.05 * sharpness(photo, backdrop)  # measured: ~0.01 (9 px discs)
    assert np.array_equal(out[distance < -2], photo[distance < -2])  # in focus: exactly the photo


def test_focusing_on_the_backdrop_blurs_the_subject_instead() -> None:
    photo, nearness, matte = textured_scene()
    out = bokeh(photo, nearness, BACKDROP_NEAR, 10.0, matte)
    blur = coc_scale(photo.shape, 10.0) * (SUBJECT_NEAR - BACKDROP_NEAR)  # the subject's disc, ~9 px
    distance = distance_from_subject(matte)
    inside, backdrop = distance < -2 * blur, distance > 2 * blur
    assert sharpness(out, backdrop) == pytest.approx(sharpness(photo, backdrop), rel=0.03)
    assert sharpness(out, inside) < 0.3 * sharpness(photo, inside)
    edge = np.abs(distance) < blur  # the subject's outline is blurred too, not kept sharp under its blur
    assert sharpness(out, edge) < 0.3 * sharpness(photo, edge)
    # the blurred near subject spreads over the backdrop by about its own disc, not further
    spread = distance > 1.5 * blur
    assert np.abs(out[spread].astype(int) - photo[spread]).max() <= 1


def test_the_subjects_soft_edge_shows_the_blurred_backdrop_not_the_sharp_one() -> None:
    # a flat-coloured subject with an 8 px soft edge over a noisy backdrop, and a depth map whose subject is
    # larger (the backdrop part of the edge pixels has the subject's depth there): in the soft edge the
    # photo's sharp backdrop is replaced by the blurred one, the subject's share keeps its colour
    rng = np.random.default_rng(3)
    backdrop = np.array([60, 140, 70], np.float32) + 90 * rng.random((SIDE, SIDE, 1), dtype=np.float32)
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float32)
    matte = np.clip((RADIUS - np.hypot(x - CENTRE, y - CENTRE)) / 8 + 0.5, 0, 1).astype(np.float32)
    subject = np.array([200, 40, 50], np.float32)
    photo = np.rint(matte[..., None] * subject + (1 - matte[..., None]) * backdrop).astype(np.uint8)
    bled = np.hypot(x - CENTRE, y - CENTRE) < RADIUS + 8  # the depth's subject: 4 px past the matte's edge
    nearness = cv2.GaussianBlur(np.where(bled, SUBJECT_NEAR, BACKDROP_NEAR).astype(np.float32), (0, 0), 1)
    out = bokeh(photo, nearness, SUBJECT_NEAR, 10.0, matte)
    band = (matte > 0.2) & (matte < 0.8)
    assert sharpness(out, band) < 0.3 * sharpness(photo, band)
    beside = (matte == 0) & (np.hypot(x - CENTRE, y - CENTRE) < RADIUS + 7)  # 3 px of backdrop past the edge
    assert sharpness(out, beside) < 0.3 * sharpness(photo, beside)  # no ring of sharp backdrop
    blurred = out[np.hypot(x - CENTRE, y - CENTRE) > RADIUS + 30].mean(axis=0)  # (in linear light: not the mean)
    expected = matte[band, None] * subject + (1 - matte[band, None]) * blurred
    assert np.abs(out[band].mean(axis=0) - expected.mean(axis=0)).max() < 4


def test_a_blurred_near_subject_fades_out_on_both_sides_of_its_outline() -> None:
    # focused on the backdrop, the subject's disc straddles its outline: half a disc inside, half outside sees
    # the backdrop (filled in from around, as the lens sees behind the edge), not a hard-edged blurred cutout
    photo, nearness, matte = textured_scene()
    distance = distance_from_subject(matte)
    subject, backdrop = redness(photo)[distance < -3].mean(), redness(photo)[distance > 3].mean()
    for out in (bokeh(photo, nearness, BACKDROP_NEAR, 10.0, matte), bokeh(photo, nearness, BACKDROP_NEAR, 10.0)):
        def share(near: float, far: float, out: np.ndarray = out) -> float:
            ring = (distance >= near) & (distance < far)
            return (redness(out)[ring].mean() - backdrop) / (subject - backdrop)
        inner, outer = share(-4, -3), share(3, 4)
        assert 0.6 < inner < 0.85 and 0.15 < outer < 0.4
        assert inner + outer == pytest.approx(1.0, abs=0.1)


def test_without_a_matte_the_depth_alone_separates_subject_and_backdrop() -> None:
    photo, nearness, matte = textured_scene()
    out = bokeh(photo, nearness, SUBJECT_NEAR, 10.0)
    distance = distance_from_subject(matte)
    inside, backdrop = distance < -3, distance > 20
    assert sharpness(out, inside) == pytest.approx(sharpness(photo, inside), rel=0.03)
    assert sharpness(out, backdrop) < 0.3 * sharpness(photo, backdrop)


def redness(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0].astype(np.float64) - rgb[..., 1]


@pytest.mark.parametrize("soft_depth", [False, True])
def test_the_blurred_backdrop_takes_no_colour_from_the_sharp_subject(soft_depth: bool) -> None:
    photo, nearness, matte = textured_scene(soft_depth)
    out = bokeh(photo, nearness, SUBJECT_NEAR, 10.0, matte)
    distance = distance_from_subject(matte)
    backdrop_redness = redness(photo)[distance > 3].mean()
    naive = cv2.filter2D(photo, -1, disc_kernel(coc_scale(photo.shape, 10.0) * 0.8), borderType=cv2.BORDER_REFLECT)
    for near, far in ((2, 4), (4, 8), (8, 14)):
        ring = (distance >= near) & (distance < far)
        # a plain disc blur drags the red subject over the backdrop: the test can see a halo ...
        if near < 8:
            assert redness(naive)[ring].mean() - backdrop_redness > 15
        # ... and the layered rendering has none: the ring keeps the backdrop's colour
        assert abs(redness(out)[ring].mean() - backdrop_redness) < 3, (near, far)


def test_a_bright_point_becomes_a_flat_round_disc() -> None:
    side = 256
    photo = np.full((side, side, 3), 20, np.uint8)
    cv2.circle(photo, (side // 2, side // 2), 1, (255, 255, 255), -1)
    nearness = np.zeros((side, side), np.float32)
    out = bokeh(photo, nearness, 1.0, 10.0)
    radius = MAX_COC * side  # the disc at aperture 10 and defocus 1: 7.7 px
    level = out[..., 1].astype(np.float64) - 20
    assert level.max() > 30  # the highlight's energy is kept: a visible disc, not a dim smear
    disc = level > level.max() / 2
    ys, xs = np.nonzero(disc)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert width == pytest.approx(2 * radius, abs=2.5) and height == pytest.approx(2 * radius, abs=2.5)
    assert disc.sum() / (width * height) == pytest.approx(np.pi / 4, abs=0.06)  # round: a square is 1, a diamond 1/2
    profile = level[side // 2, side // 2 - round(0.6 * radius):side // 2 + round(0.6 * radius) + 1]
    assert profile.min() > 0.8 * profile.max()  # flat-topped: a Gaussian of that width falls to ~1/2 there


def test_a_flat_bright_area_keeps_its_value_through_the_highlight_boost() -> None:
    photo = np.full((64, 96, 3), (255, 250, 240), np.uint8)
    nearness = np.tile(np.linspace(0, 1, 96, dtype=np.float32), (64, 1))
    assert np.array_equal(bokeh(photo, nearness, 1.0, 10.0), photo)


def test_aperture_zero_and_a_scene_all_in_focus_return_the_photo_exactly() -> None:
    photo, nearness, matte = textured_scene()
    same = bokeh(photo, nearness, 0.5, 0.0, matte)
    assert np.array_equal(same, photo) and same is not photo
    flat = np.full(nearness.shape, 0.4, np.float32)
    assert np.array_equal(bokeh(photo, flat, 0.4, 10.0), photo)
    assert np.array_equal(bokeh(photo, flat, 0.4, 10.0, matte), photo)


def test_the_mapping_from_aperture_and_defocus_to_the_disc() -> None:
    assert coc_scale((3000, 4000, 3), 10.0) == pytest.approx(120.0)  # 3 % of the longest side
    assert coc_scale((3000, 4000, 3), 5.0) == pytest.approx(60.0)
    assert levels(120.0) == pytest.approx([1.875, 3.75, 7.5, 15.0, 30.0, 60.0, 120.0])
    assert levels(0.3) == []
    kernel = disc_kernel(5.0)
    assert kernel.shape == (11, 11) and kernel.sum() == pytest.approx(1.0)
    assert kernel[5, 0] > 0 and kernel[0, 0] == 0  # round, not square


def test_the_subject_is_sharp_with_the_focus_anywhere_in_its_depth_range() -> None:
    nearness = np.full((40, 40), 0.2, np.float32)
    matte = np.zeros((40, 40), np.float32)
    matte[10:30, 10:30] = 1.0
    nearness[10:30, 10:30] = np.linspace(0.7, 0.9, 20, dtype=np.float32)[:, None]
    nearness[10, 10:30] = 0.3  # a row of wrong depth inside the matte (5 %) does not stretch the range
    far, near = subject_depth(nearness, matte)
    assert far == pytest.approx(0.72, abs=0.01) and near == pytest.approx(0.88, abs=0.01)
    # a subject whose depth map runs over 0.7-0.85 (nose to ears): focused near its far end it is all sharp
    photo, _, matte = textured_scene()
    rows = np.linspace(0.6, 0.95, SIDE, dtype=np.float32)[:, None]
    nearness = np.where(matte > 0.5, rows, BACKDROP_NEAR).astype(np.float32)
    far, near = subject_depth(nearness, matte)
    assert far < 0.73 < near - 0.1
    inside = distance_from_subject(matte) < -2
    assert np.array_equal(bokeh(photo, nearness, 0.73, 10.0, matte)[inside], photo[inside])
    blurred = bokeh(photo, nearness, 0.5, 10.0, matte)
    assert sharpness(blurred, inside) < 0.3 * sharpness(photo, inside)


@pytest.mark.parametrize(("change", "message"), [
    ({"rgb": np.zeros((8, 8, 3), np.float32)}, "rgb must be uint8"),
    ({"rgb": np.zeros((8, 8), np.uint8)}, "rgb must be uint8"),
    ({"nearness": np.zeros((8, 9), np.float32)}, "same size"),
    ({"nearness": np.zeros((8, 8), np.uint16)}, "float32"),
    ({"nearness": np.full((8, 8), 1.5, np.float32)}, r"in \[0, 1\]"),
    ({"nearness": np.full((8, 8), np.nan, np.float32)}, r"in \[0, 1\]"),
    ({"matte": np.zeros((8, 8), np.uint8)}, "float32"),
    ({"matte": np.zeros((9, 8), np.float32)}, "same size"),
    ({"focus": 1.2}, "focus"),
    ({"focus": float("nan")}, "focus"),
    ({"aperture": 10.5}, "aperture"),
    ({"aperture": -1.0}, "aperture"),
])
def test_bad_arguments_are_refused_with_a_clear_message(change: dict, message: str) -> None:
    arguments = {"rgb": np.zeros((8, 8, 3), np.uint8), "nearness": np.zeros((8, 8), np.float32),
                 "focus": 0.5, "aperture": 5.0, "matte": None} | change
    with pytest.raises(ValueError, match=message):
        bokeh(**arguments)
