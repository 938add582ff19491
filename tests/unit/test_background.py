"""Background replacement (imaging/background.py): exact compositing, the hole-aware blur, fit, bad arguments."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from imaging.background import blur_behind, blurred_background, fit, over_colour, over_image
from imaging.matte import estimate_foreground

ASTRONAUT_ALPHA = Path(__file__).resolve().parents[2] / "evaluation" / "data" / "astronaut_alpha_ref.png"


@pytest.fixture(scope="module")
def subject() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, alpha, foreground colour) of a real person: the astronaut and her reference matte."""
    photo = skimage.data.astronaut()
    alpha = np.asarray(Image.open(ASTRONAUT_ALPHA).convert("L"), dtype=np.float32) / 255
    return photo, alpha, estimate_foreground(photo, alpha)


def red_disc_scene(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A red disc with a 4 px soft edge over a textured blue-green backdrop: (photo, alpha)."""
    yy, xx = np.mgrid[:size, :size]
    alpha = np.clip((size * 0.25 - np.hypot(yy - size / 2, xx - size / 2)) / 4 + 0.5, 0, 1).astype(np.float32)
    rng = np.random.default_rng(7)
    backdrop = np.stack([rng.integers(0, 40, (size, size)), rng.integers(100, 200, (size, size)),
                         rng.integers(150, 255, (size, size))], axis=-1).astype(np.float32)
    red = np.array([230.0, 20.0, 30.0])
    photo = np.rint(alpha[..., None] * red + (1 - alpha[..., None]) * backdrop).astype(np.uint8)
    return photo, alpha


def ring(alpha: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels between ``inner`` and ``outer`` px outside the subject (alpha 0 there)."""
    outside = (alpha == 0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    return (distance > inner) & (distance <= outer)


def test_over_image_is_exact_where_alpha_is_0_or_1(subject: tuple) -> None:
    _, alpha, colour = subject
    background = fit(skimage.data.coffee(), (512, 512), "cover")
    out = over_image(colour, alpha, background)
    assert out.dtype == np.uint8 and out.shape == colour.shape
    assert np.array_equal(out[alpha == 0], background[alpha == 0])
    assert np.array_equal(out[alpha == 1], colour[alpha == 1])
    soft = (alpha > 0) & (alpha < 1)
    assert soft.sum() > 1000
    expected = alpha[..., None] * colour + (1 - alpha[..., None]) * background.astype(np.float64)
    assert np.abs(out[soft] - expected[soft]).max() <= 1  # alpha F + (1 - alpha) B, rounded


def test_over_an_opaque_colour(subject: tuple) -> None:
    _, alpha, colour = subject
    out = over_colour(colour, alpha, (12, 200, 99, 255))
    assert out.shape == (512, 512, 3)
    assert (out[alpha == 0] == (12, 200, 99)).all()
    assert np.array_equal(out[alpha == 1], colour[alpha == 1])


def test_over_a_translucent_colour_is_rgba(subject: tuple) -> None:
    _, alpha, colour = subject
    out = over_colour(colour, alpha, (255, 0, 0, 100))
    assert out.shape == (512, 512, 4)
    assert (out[alpha == 0] == (255, 0, 0, 100)).all()
    assert np.array_equal(out[alpha == 1][:, :3], colour[alpha == 1]) and (out[alpha == 1][:, 3] == 255).all()
    soft = (alpha > 0.2) & (alpha < 0.8)
    expected_alpha = alpha + (100 / 255) * (1 - alpha)
    assert np.abs(out[..., 3][soft] - 255 * expected_alpha[soft]).max() <= 0.5 + 1e-3
    # flattened onto white, it is the same as the colour made opaque by hand and the subject put over it
    white = np.full_like(colour, 255)
    flattened = over_image(out[..., :3], out[..., 3].astype(np.float32) / 255, white)
    tinted = np.full_like(colour, 0)
    tinted[...] = np.rint(np.array([255, 0, 0]) * 100 / 255 + 255 * 155 / 255)  # the red at 100/255 over white
    by_hand = over_image(colour, alpha, tinted)
    assert np.abs(flattened.astype(int) - by_hand).max() <= 2


def test_over_a_fully_transparent_colour_is_the_cutout(subject: tuple) -> None:
    _, alpha, colour = subject
    out = over_colour(colour, alpha, (0, 0, 255, 0))
    assert np.array_equal(out[..., 3], cv2.convertScaleAbs(alpha, alpha=255.0))
    assert np.array_equal(out[alpha > 0][:, :3], colour[alpha > 0])


def test_the_blurred_backdrop_does_not_take_the_subjects_colour() -> None:
    photo, alpha = red_disc_scene()
    near = ring(alpha, 1, 12)
    backdrop = blurred_background(photo, alpha, 10.0)
    naive = cv2.GaussianBlur(photo, (0, 0), 10.0)
    behind = photo[ring(alpha, 30, 60)].astype(float).mean(axis=0)  # the backdrop's own colour, mean
    assert naive[near][:, 0].mean() > behind[0] + 25  # a plain blur smears the red disc into the backdrop
    assert abs(backdrop[near][:, 0].mean() - behind[0]) < 6  # the hole-aware one does not
    assert np.abs(backdrop[near].astype(float).mean(axis=0) - behind).max() < 10
    # under the subject the surrounding backdrop is carried in, not black and not red
    centre = backdrop[112:144, 112:144].reshape(-1, 3).astype(float).mean(axis=0)
    assert np.abs(centre - behind).max() < 15
    # and it is blurred: the texture's per-pixel noise is gone
    assert backdrop[ring(alpha, 30, 60)][:, 1].std() < 0.25 * photo[ring(alpha, 30, 60)][:, 1].std()


@pytest.mark.parametrize("radius", [2.0, 40.0, 300.0])
def test_blur_behind_keeps_the_subject_exact(subject: tuple, radius: float) -> None:
    photo, alpha, colour = subject
    out = blur_behind(photo, colour, alpha, radius)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out[alpha == 1], colour[alpha == 1])
    backdrop = blurred_background(photo, alpha, radius)
    assert np.array_equal(out[alpha == 0], backdrop[alpha == 0])
    blurrier = blurred_background(photo, alpha, radius * 2)
    edges = [np.abs(cv2.Laplacian(b.astype(np.float32), cv2.CV_32F))[alpha == 0].mean() for b in (backdrop, blurrier)]
    assert edges[1] < edges[0]  # a larger radius is blurrier


def test_the_blur_at_a_large_size_is_a_reduced_copy_of_the_same_result() -> None:
    photo, alpha = red_disc_scene(256)
    big_photo = cv2.resize(photo, (2048, 2048), interpolation=cv2.INTER_NEAREST)
    big_alpha = cv2.resize(alpha, (2048, 2048), interpolation=cv2.INTER_NEAREST)
    small = blurred_background(photo, alpha, 6.0)
    big = blurred_background(big_photo, big_alpha, 48.0)  # the same blur in the photo's terms
    shrunk = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - small).mean() < 3


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (1000, 1000), (64, 720)])
def test_fit_cover_fills_and_keeps_the_aspect(size: tuple[int, int]) -> None:
    coffee = skimage.data.coffee()  # 600x400
    out = fit(coffee, size, "cover")
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    # the centre of the output is the centre of the photo, not stretched: compare with a uniform scale + crop
    scale = max(size[0] / 600, size[1] / 400)
    scaled = cv2.resize(coffee, (round(600 * scale), round(400 * scale)), interpolation=cv2.INTER_AREA
                        if scale < 1 else cv2.INTER_CUBIC)
    y, x = (scaled.shape[0] - size[1]) // 2, (scaled.shape[1] - size[0]) // 2
    assert np.abs(out.astype(int) - scaled[y:y + size[1], x:x + size[0]]).mean() < 6


@pytest.mark.parametrize("size", [(300, 300), (1200, 400), (500, 1500)])
def test_fit_contain_shows_the_whole_image_with_blurred_bars(size: tuple[int, int]) -> None:
    coffee = skimage.data.coffee()
    out = fit(coffee, size, "contain")
    assert out.shape == (size[1], size[0], 3)
    scale = min(size[0] / 600, size[1] / 400)
    w, h = round(600 * scale), round(400 * scale)
    x, y = (size[0] - w) // 2, (size[1] - h) // 2
    inner = cv2.resize(coffee, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    assert np.array_equal(out[y:y + h, x:x + w], inner)  # all of it, as large as fits, centred
    bars = np.ones(out.shape[:2], bool)
    bars[y:y + h, x:x + w] = False
    if bars.any():
        assert out[bars].mean() > 20  # not black: the blurred image
        assert np.abs(np.diff(out.astype(int), axis=1))[bars[:, 1:] & bars[:, :-1]].mean() < 3  # and smooth


@pytest.mark.parametrize(("call", "message"), [
    (lambda c, a: fit(c, (10, 10), "stretch"), "mode"),
    (lambda c, a: fit(c, (0, 10), "cover"), "size"),
    (lambda c, a: fit(c, (10.5, 10), "cover"), "size"),
    (lambda c, a: fit(c[..., 0], (10, 10), "cover"), "RGB"),
    (lambda c, a: over_colour(c, a, (0, 0, 0)), "four integers"),
    (lambda c, a: over_colour(c, a, (0, 0, 0, 256)), "0-255"),
    (lambda c, a: over_colour(c, a[:8], (0, 0, 0, 255)), "alpha must be"),
    (lambda c, a: over_colour(c, (a * 255).astype(np.uint8), (0, 0, 0, 255)), "alpha must be float"),
    (lambda c, a: over_colour(c.astype(np.float32), a, (0, 0, 0, 255)), "uint8"),
    (lambda c, a: over_colour(c, np.full_like(a, np.nan), (0, 0, 0, 255)), "NaN"),
    (lambda c, a: over_image(c, a, c[:8]), "fit"),
    (lambda c, a: blurred_background(c, a, 0), "radius"),
    (lambda c, a: blurred_background(c, a, 1e6), "radius"),
])
def test_bad_arguments_raise(call: object, message: str) -> None:
    colour = np.zeros((16, 16, 3), np.uint8)
    alpha = np.zeros((16, 16), np.float32)
    with pytest.raises(ValueError, match=message):
        call(colour, alpha)  # type: ignore[operator]
