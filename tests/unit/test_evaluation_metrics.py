"""The matte metrics on synthetic arrays with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import alpha_error, colour_error, iou, score, soft_band, to_unit


def test_iou() -> None:
    true = np.zeros((4, 4))
    true[:, :2] = 1.0
    assert iou(true, true) == 1.0
    assert iou(1.0 - true, true) == 0.0
    pred = np.zeros((4, 4))
    pred[:, 1:3] = 1.0  # overlap 4 pixels, union 12
    assert iou(pred, true) == pytest.approx(4 / 12)
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0


def test_iou_threshold_at_one_half() -> None:
    true = np.full((2, 2), 0.5)  # 0.5 counts as inside
    assert iou(to_unit(np.full((2, 2), 128, np.uint8)), true) == 1.0
    assert iou(to_unit(np.full((2, 2), 127, np.uint8)), true) == 0.0


def test_alpha_error() -> None:
    assert alpha_error(np.ones((3, 3)), np.full((3, 3), 0.75, np.float32)) == pytest.approx(0.25)
    assert alpha_error(to_unit(np.array([[0, 255]], np.uint8)), np.array([[0.0, 0.5]])) == pytest.approx(0.25)


def test_to_unit_takes_8_bit_mattes_only() -> None:
    assert to_unit(np.array([[0, 51, 255]], np.uint8)).tolist() == [[0.0, 0.2, 1.0]]
    with pytest.raises(ValueError):
        to_unit(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        to_unit(np.zeros((2, 2, 3), np.uint8))


def test_soft_band() -> None:
    true = np.array([[0.0, 0.05, 0.06, 0.5, 0.94, 0.95, 1.0]])
    pred = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert soft_band(true, pred).tolist() == [[False, False, True, True, True, False, False]]
    pred[0, 3] = 0.05  # the cutout hides that pixel: not counted
    assert soft_band(true, pred).tolist() == [[False, False, True, False, True, False, False]]


def test_colour_error() -> None:
    foreground = np.full((1, 3, 3), 100, np.uint8)
    rgb = np.array([[[110, 100, 100], [100, 70, 100], [0, 0, 0]]], np.uint8)
    band = np.array([[True, True, False]])
    assert colour_error(rgb, foreground, band) == pytest.approx((10 + 30) / 6)
    assert math.isnan(colour_error(rgb, foreground, np.zeros_like(band)))


def test_score() -> None:
    """A cutout that recovers the foreground colour scores 0 in the band; the raw photo scores |F - I|."""
    true = np.array([[0.0, 0.5, 1.0, 0.25]], np.float32)
    f = np.full((1, 4, 3), 200, np.uint8)
    b = np.full((1, 4, 3), 0, np.uint8)
    photo = np.rint(true[..., None] * f + (1 - true[..., None]) * b).astype(np.uint8)  # 0, 100, 200, 50
    matte = np.array([[0, 255, 255, 0]], np.uint8)
    cutout = np.dstack([f, np.array([[0, 128, 255, 64]], np.uint8)])
    s = score(true, f, photo, matte, cutout)
    assert s.iou == pytest.approx(2 / 2)  # pred {1, 2}, true {1, 2}
    assert s.alpha_error == pytest.approx((0 + 0.5 + 0 + 0.25) / 4)
    assert s.band_pixels == 2  # the two partial pixels (0.5 and 0.25), both shown by the cutout
    assert s.band_error == 0.0
    assert s.band_baseline == pytest.approx((100 + 150) / 2)
    photo_cutout = np.dstack([photo, cutout[..., 3]])
    assert score(true, f, photo, matte, photo_cutout).band_error == pytest.approx(s.band_baseline)
    assert score(true, f, photo, matte).band_error is None
    with pytest.raises(ValueError):
        score(true, f, photo, matte[:, :3])
    with pytest.raises(ValueError):
        score(true, f, photo, matte, cutout[..., :3])
