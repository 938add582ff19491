"""Depth that follows the photo (imaging/depth.py): guided upsampling, fusion with the matte, nearness."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from evaluation.composites import composites
from evaluation.depth import composite_scores, edge_alignment
from imaging.depth import SERVED, bilinear, follow_photo, nearness
from imaging.outputs import UINT16_MAX

HEIGHT, WIDTH = 240, 320
FACTOR = 4  # output pixels per model pixel (768x576 from a 224 px model: 3.4)
WALL, BEHIND = 2.0, 3.0  # metres: the model puts the subject behind the wall


def low(plane: np.ndarray, blur_model_px: float = 1.0) -> np.ndarray:
    """A model-like map: ``plane`` area-reduced by FACTOR and blurred by ``blur_model_px`` model pixels."""
    small = cv2.resize(plane.astype(np.float32), (plane.shape[1] // FACTOR, plane.shape[0] // FACTOR),
                       interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), blur_model_px, borderType=cv2.BORDER_REPLICATE)


def disc_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, true alpha, model depth): an orange disc with a 3 px soft edge over a grey wall, which the
    model puts *behind* the wall."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    alpha = np.clip((70 - np.hypot(yy - 125.5, xx - 161.5)) / 3 + 0.5, 0.0, 1.0).astype(np.float32)
    a = alpha[..., None]
    photo = np.rint(a * np.array([230.0, 120.0, 40.0]) + (1 - a) * np.array([90.0, 95.0, 100.0])).astype(np.uint8)
    return photo, alpha, low(WALL + (BEHIND - WALL) * alpha)


def ring(alpha: np.ndarray, inner: int = 10, outer: int = 40) -> np.ndarray:
    distance = cv2.distanceTransform(np.where(alpha >= 0.5, 0, 1).astype(np.uint8), cv2.DIST_L2, 3)
    return (distance > inner) & (distance <= outer)


def test_fusion_puts_the_subject_in_front_of_the_wall() -> None:
    photo, alpha, model = disc_scene()
    subject = alpha >= 0.5
    before = follow_photo(model, (WIDTH, HEIGHT), photo, None)
    assert np.median(before.depth[subject]) > np.median(before.depth[ring(alpha)]) + 0.5  # behind, as planted
    after = follow_photo(model, (WIDTH, HEIGHT), photo, alpha)
    assert after.guided and after.fused and after.reason == ""
    ring_median = float(np.median(after.depth[ring(alpha)]))
    assert after.depth[alpha >= 0.95].max() < ring_median  # every opaque subject pixel, not just the median
    # in front by about the margin (0.1 of the map's robust span, 1 m here), measured 0.078 m against this ring
    assert ring_median - np.median(after.depth[subject]) >= 0.5 * SERVED.margin * (BEHIND - WALL)
    # consistent: the planted subject is flat, so is the fused one (the model's blob had it 0.5-1 m deep)
    assert np.std(after.depth[alpha >= 0.95]) < 0.05 * np.std(before.depth[alpha >= 0.95]) + 1e-3


def test_fusion_without_a_photo_still_orders_the_subject() -> None:
    _, alpha, model = disc_scene()
    result = follow_photo(model, (WIDTH, HEIGHT), None, alpha)
    assert result.fused and not result.guided and "no photo" in result.reason
    assert np.median(result.depth[alpha >= 0.5]) < np.median(result.depth[ring(alpha)])


def test_a_subject_already_in_front_keeps_its_depth() -> None:
    photo, alpha, _ = disc_scene()
    model = low(WALL - 1.0 * alpha)  # the model gets it right: the disc 1 m in front of the wall
    result = follow_photo(model, (WIDTH, HEIGHT), photo, alpha)
    assert result.fused
    assert abs(np.median(result.depth[alpha >= 0.95]) - (WALL - 1.0)) < 0.1


def test_the_depth_edge_sits_on_the_matte_edge() -> None:
    photo, alpha, model = disc_scene()
    plain = edge_alignment(follow_photo(model, (WIDTH, HEIGHT), None, None).depth, alpha)
    fused = edge_alignment(follow_photo(model, (WIDTH, HEIGHT), photo, alpha).depth, alpha)
    # (gradient-weighted distance to the true edge px, energy within 2 px): measured (3.4, 0.40) -> (0.82, 0.95)
    assert fused[0] < 0.3 * plain[0] and fused[1] > 0.85 and plain[1] < 0.5


def step_scene(edge_x: int = 123, shift_model_px: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(photo, model depth): a vertical photo edge at ``edge_x``; the model's step is blurred and
    ``shift_model_px`` model pixels to the right of it."""
    photo = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    photo[:, edge_x:] = (200, 190, 170)
    depth = np.full((HEIGHT, WIDTH), 1.0, np.float32)
    depth[:, edge_x + round(shift_model_px * FACTOR):] = 4.0
    return photo, low(depth)


def largest_gradient_x(depth: np.ndarray) -> np.ndarray:
    """Per row, the x between the two pixels with the largest |horizontal difference|."""
    return np.abs(np.diff(depth, axis=1)).argmax(axis=1) + 0.5


def test_guided_upsampling_moves_the_depth_edge_onto_the_photo_edge() -> None:
    photo, model = step_scene()
    plain = largest_gradient_x(bilinear(model, (WIDTH, HEIGHT)))
    result = follow_photo(model, (WIDTH, HEIGHT), photo, None)
    assert result.guided and not result.fused and "no matte" in result.reason
    guided = largest_gradient_x(result.depth)
    true_edge = 122.5  # between x = 122 (dark) and 123 (bright)
    assert np.median(np.abs(plain - true_edge)) >= 6  # the planted 8 px offset: measured 8
    assert np.abs(guided - true_edge).max() <= 1.0  # every row, measured 0

    def share_at_edge(depth: np.ndarray) -> float:  # of the whole change, how much is within 2 px of the edge
        row = depth[HEIGHT // 2]
        return float((row[124] - row[121]) / (row.max() - row.min()))

    # measured 0.07 -> 0.51: the rest is the model's blur on the flat bright side, which stays a ramp
    assert share_at_edge(bilinear(model, (WIDTH, HEIGHT))) < 0.15 and share_at_edge(result.depth) > 0.4


def test_a_real_photo_composite_with_a_planted_backwards_depth() -> None:
    """A person over a sample photo (known alpha); the planted model map puts the person behind."""
    c = composites("small")[0]
    height, width = c.alpha.shape
    factor = max(height, width) / 224
    model = cv2.resize(2.0 + np.asarray(c.alpha, np.float32), (224, round(height / factor)),
                       interpolation=cv2.INTER_AREA)
    model = cv2.GaussianBlur(model, (0, 0), 1.5)
    before = composite_scores(follow_photo(model, (width, height), None, None).depth, c.alpha)
    after = composite_scores(follow_photo(model, (width, height), c.image, c.alpha).depth, c.alpha)
    assert before["in_front"] == 0.0 and after["in_front"] == 1.0
    assert after["edge_band_energy"] > before["edge_band_energy"] + 0.3  # measured 0.34 -> 0.93
    assert after["edge_distance_px"] < 0.5 * before["edge_distance_px"]  # measured 4.2 -> 1.1 px
    assert after["std_over_gap"] < 0.5  # consistent (the planted map is too: no "before" to compare)


def test_nearness_is_the_depth_png_scale() -> None:
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.7, 9.0, (60, 80)).astype(np.float32)
    near, far = float(depth.min()), float(depth.max())
    plane = np.rint((far - depth.astype(np.float64)) / (far - near) * UINT16_MAX)  # README: d = far - p/65535 ...
    unit = nearness(depth, near, far)
    assert unit.dtype == np.float32 and unit.shape == depth.shape
    assert np.abs(np.rint(unit * UINT16_MAX).astype(np.int64) - plane).max() <= 1
    assert unit[np.unravel_index(depth.argmin(), depth.shape)] == 1.0
    assert unit[np.unravel_index(depth.argmax(), depth.shape)] == 0.0
    assert nearness(depth, 2.0, 2.0).min() == 1.0  # a flat map is all near, as the PNG's all 65535
    assert nearness(np.array([[0.0, 20.0]], np.float32), 1.0, 9.0).tolist() == [[1.0, 0.0]]  # clipped
    with pytest.raises(ValueError, match="near <= far"):
        nearness(depth, 3.0, 2.0)


def test_over_the_pixel_bound_it_is_plain_bilinear() -> None:
    photo, alpha, model = disc_scene()
    settings = replace(SERVED, max_pixels=WIDTH * HEIGHT - 1)
    result = follow_photo(model, (WIDTH, HEIGHT), photo, alpha, settings)
    assert not result.guided and not result.fused and "bound" in result.reason
    np.testing.assert_array_equal(result.depth, bilinear(model, (WIDTH, HEIGHT)))
    assert follow_photo(model, (WIDTH, HEIGHT), photo, alpha, replace(settings, max_pixels=WIDTH * HEIGHT)).fused


@pytest.mark.parametrize("size", [(WIDTH, HEIGHT), (1, 1), (3, 2), (17, 11), (41, 300)])
@pytest.mark.parametrize("with_rgb", [True, False])
@pytest.mark.parametrize("with_matte", [True, False])
def test_shapes_dtypes_and_flags(size: tuple[int, int], with_rgb: bool, with_matte: bool) -> None:
    photo, alpha, model = disc_scene()
    rgb = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if with_rgb else None
    matte = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA) if with_matte else None
    result = follow_photo(model, size, rgb, matte)
    assert result.depth.shape == (size[1], size[0]) and result.depth.dtype == np.float32
    assert np.isfinite(result.depth).all()
    assert result.near == float(result.depth.min()) and result.far == float(result.depth.max())
    assert result.guided == with_rgb
    assert not result.fused or with_matte
    assert result.fused or result.reason
    if with_matte and size == (WIDTH, HEIGHT):
        assert result.fused


def test_mattes_without_a_subject_or_without_a_backdrop_are_not_fused() -> None:
    photo, _, model = disc_scene()
    empty = follow_photo(model, (WIDTH, HEIGHT), photo, np.zeros((HEIGHT, WIDTH), np.float32))
    full = follow_photo(model, (WIDTH, HEIGHT), photo, np.ones((HEIGHT, WIDTH), np.float32))
    assert empty.guided and not empty.fused and "no subject" in empty.reason
    assert full.guided and not full.fused and "no backdrop" in full.reason
    np.testing.assert_array_equal(empty.depth, full.depth)  # the guided map, untouched


def test_non_finite_values_and_a_flat_map_do_not_fail() -> None:
    photo, alpha, model = disc_scene()
    model = model.copy()
    model[0, :5] = np.nan
    model[1, 0] = np.inf
    matte = alpha.copy()
    matte[0, 0] = np.nan
    result = follow_photo(model, (WIDTH, HEIGHT), photo, matte)
    assert result.fused and np.isfinite(result.depth).all()
    flat = follow_photo(np.full((30, 40), 2.5, np.float32), (WIDTH, HEIGHT), photo, alpha)
    assert np.isfinite(flat.depth).all() and flat.near < flat.far <= 2.5 + 1e-6  # the disc in front of 2.5
    assert np.median(flat.depth[alpha >= 0.5]) < 2.5


def test_invalid_inputs_raise_value_error() -> None:
    photo, alpha, model = disc_scene()
    with pytest.raises(ValueError, match="2-D"):
        follow_photo(model[None], (WIDTH, HEIGHT), photo, alpha)
    with pytest.raises(ValueError, match="photo"):
        follow_photo(model, (WIDTH, HEIGHT), photo[:-1], alpha)
    with pytest.raises(ValueError, match="matte"):
        follow_photo(model, (WIDTH, HEIGHT), photo, alpha[:, :-1])
    with pytest.raises(ValueError, match="positive"):
        follow_photo(model, (0, HEIGHT), None, None)
