"""The served matte refinement and cutout colours (imaging/matte.py), on mattes and photos with known truth."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from contract.product import FACE_COUNT, FOREGROUND_BOX, MATTE_REFINED, PRODUCT, SUBJECT
from evaluation.composites import composites
from gateway.routes.images import _header_outputs
from imaging import matte
from imaging.encode import encode
from imaging.matte import SERVED, Refinement, estimate_foreground, layers, upsample
from imaging.outputs import cutout_rgba, matte_to_uint8

TWELVE_MP_SIDE = 4000


def edge_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Mean |alpha - truth| where the truth is soft (0.05-0.95), dilated by 3 px."""
    band = cv2.dilate(((truth > 0.05) & (truth < 0.95)).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    return float(np.abs(np.rint(alpha * 255) / 255 - truth)[band].mean())


def low_resolution(alpha: np.ndarray, model_side: int) -> np.ndarray:
    """The true alpha as coarse as a ``model_side`` matte is for a 12 MP photo (1/15 for 256 px)."""
    factor = TWELVE_MP_SIDE / model_side
    size = (round(alpha.shape[1] / factor), round(alpha.shape[0] / factor))
    return cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("model_side", [256, 512])
def test_the_served_refinement_recovers_edges_the_upsampled_matte_blurs(model_side: int) -> None:
    improved = []
    for composite in composites("small"):
        height, width = composite.alpha.shape
        coarse = low_resolution(composite.alpha, model_side)
        plain = edge_error(upsample(coarse, (width, height)), composite.alpha)
        served = layers(coarse, (width, height), composite.image, colours=False)
        assert served.refined and not served.fallback
        improved.append(edge_error(served.alpha, composite.alpha) / plain)
    # Measured 0.27-0.50 of the upsampled matte's edge error; bilinear alone is 1.0.
    assert max(improved) < 0.8, improved


def fringe_scene(size: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey disc with a 16 px soft edge over saturated green: (photo, true alpha, grey foreground)."""
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((size * 0.3 - radius) / 16 + 0.5, 0.0, 1.0).astype(np.float32)
    grey = np.full((size, size, 3), 128.0)
    green = np.zeros((size, size, 3))
    green[..., 1] = 255.0
    photo = np.rint(alpha[..., None] * grey + (1 - alpha[..., None]) * green).astype(np.uint8)
    return photo, alpha, grey.astype(np.uint8)


def green_tint(rgb: np.ndarray, where: np.ndarray) -> float:
    """Mean G - (R + B) / 2 over ``where``: 0 for grey, 255 for pure green."""
    pixels = rgb[where].astype(np.float64)
    return float((pixels[:, 1] - (pixels[:, 0] + pixels[:, 2]) / 2).mean())


def test_the_foreground_estimate_removes_a_green_fringe() -> None:
    photo, alpha, _ = fringe_scene()
    soft = (alpha > 0.05) & (alpha < 0.95)
    assert green_tint(photo, soft) > 120  # the raw cutout's edge is green (131 of 255)
    assert abs(green_tint(estimate_foreground(photo, alpha, band=16), soft)) < 20  # measured 12.5


def test_the_served_cutout_has_no_fringe() -> None:
    photo, alpha, _ = fringe_scene()
    coarse = cv2.resize(alpha, (24, 24), interpolation=cv2.INTER_AREA)  # a 10x coarser model matte
    served = layers(coarse, (240, 240), photo, colours=True)
    assert served.refined
    cutout = np.asarray(Image.open(io.BytesIO(encode(cutout_rgba(served.colour, matte_to_uint8(served.alpha)), "png",
                                                     90, 1))))
    shown = cutout[..., 3] > 12
    edge = shown & (cutout[..., 3] < 243)
    assert edge.sum() > 500
    assert green_tint(photo, edge) > 100  # what the photo's colour would show there
    assert abs(green_tint(cutout[..., :3], edge)) < 20  # measured 13.6
    assert (cutout[..., :3][cutout[..., 3] == 0] == 0).all()  # colour under alpha 0 is still zeroed


def test_over_the_pixel_bound_the_plain_matte_and_the_photo_colours_are_served() -> None:
    photo, alpha, _ = fringe_scene()
    coarse = cv2.resize(alpha, (24, 24), interpolation=cv2.INTER_AREA)
    bounded = Refinement(max_pixels=240 * 240 - 1)
    served = layers(coarse, (240, 240), photo, colours=True, settings=bounded)
    assert not served.refined and not served.failed and "bound" in served.fallback
    np.testing.assert_array_equal(served.alpha, upsample(coarse, (240, 240)))
    assert served.colour is photo
    assert layers(coarse, (240, 240), photo, colours=True, settings=Refinement(max_pixels=240 * 240)).refined
    assert 12_000_000 < SERVED.max_pixels  # a 12 MP photo is refined


def test_a_refinement_that_fails_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    photo, alpha, _ = fringe_scene()

    def out_of_memory(*_: object) -> np.ndarray:
        raise MemoryError("no room")

    monkeypatch.setattr(matte, "fast_guided_filter", out_of_memory)
    served = layers(alpha, (240, 240), photo, colours=True)
    assert not served.refined and served.failed and "MemoryError" in served.fallback
    np.testing.assert_array_equal(served.alpha, upsample(alpha, (240, 240)))


def test_without_a_photo_the_matte_is_plain() -> None:
    alpha = np.zeros((16, 16), np.float32)
    served = layers(alpha, (32, 32), None, colours=False)
    assert not served.refined and served.colour is None and served.alpha.shape == (32, 32)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (64, 48)])
def test_tiny_outputs_are_refined(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    served = layers(rng.random((256, 256), dtype=np.float32), size, photo, colours=True)
    assert served.refined and served.alpha.shape == photo.shape[:2] and served.colour.shape == photo.shape
    assert 0.0 <= served.alpha.min() and served.alpha.max() <= 1.0


def test_the_flag_is_a_header_of_mask_and_cutout() -> None:
    for name in ("mask", "cutout"):
        operation = PRODUCT.operation(name)
        assert MATTE_REFINED in operation.header_outputs and operation.uses_pixels
        box = {FOREGROUND_BOX.tensor: np.array([[3, 4, 50, 60]], np.float32), FACE_COUNT.tensor: np.array([[0]])}
        for value, text in ((1.0, "1"), (0.0, "0")):
            headers = _header_outputs(operation, "portrait", {MATTE_REFINED.tensor: np.array([[value]], np.float32),
                                                              SUBJECT.tensor: np.array([[-1]], np.float32), **box})
            assert headers["X-Matte-Refined"] == text
            assert headers["X-Subject"] == "person"  # the portrait variant's, the ensemble left it undecided
            assert [headers[f"X-Foreground-{side}"] for side in ("Left", "Top", "Width", "Height")] == [
                "3", "4", "50", "60"]


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (5, 1), (2, 2)])
def test_tiny_outputs_make_a_mask_and_a_cutout(size: tuple[int, int]) -> None:
    rgb = np.full((size[1], size[0], 3), 100, np.uint8)
    result = layers(np.random.default_rng(0).random((512, 512), dtype=np.float32), size, rgb, colours=True)
    cutout = Image.open(io.BytesIO(encode(cutout_rgba(result.colour, matte_to_uint8(result.alpha)), "png", 90, 1)))
    mask = Image.open(io.BytesIO(encode(matte_to_uint8(result.alpha), "png", 90, 1)))
    assert cutout.size == mask.size == size and cutout.mode == "RGBA"
