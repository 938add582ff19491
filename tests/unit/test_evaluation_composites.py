"""The evaluation set: deterministic, alpha in range, and the JPEG is alpha * F + (1 - alpha) * B."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.composites import (
    BACKGROUNDS,
    CANVAS,
    Composite,
    background,
    compose,
    composites,
    place,
    render,
    specs,
)
from evaluation.refinement import TUNING_BACKGROUNDS


@pytest.fixture(scope="module")
def small() -> list[Composite]:
    return composites("small")


def test_sizes_and_unique_names() -> None:
    full = specs()
    assert 32 <= len(full) <= 48
    assert len({s.name for s in full}) == len(full)
    assert len(composites("small")) == 4
    assert {c.name for c in composites("small")} <= {s.name for s in full}
    assert len({s.background for s in full}) >= 8 and {s.person for s in full} == {"astronaut", "camera"}
    assert len({s.quality for s in full}) >= 2 and all(0.6 <= s.scale <= 1.0 for s in full)
    with pytest.raises(ValueError, match="size"):
        composites("medium")


def test_deterministic(small: list[Composite]) -> None:
    assert [s.name for s in specs()] == [s.name for s in specs()]
    fresh = render.__wrapped__(specs()[0])  # bypass the cache: rendered again from scratch
    again = render.__wrapped__(specs()[0])
    assert fresh.jpeg == again.jpeg and fresh.name == small[0].name and fresh.jpeg == small[0].jpeg


def test_arrays(small: list[Composite]) -> None:
    pixels = CANVAS[0] * CANVAS[1]
    assert pixels >= 400_000
    for c in small:
        assert c.image.shape == c.foreground.shape == (*CANVAS, 3) and c.alpha.shape == CANVAS
        assert c.image.dtype == c.foreground.dtype == np.uint8 and c.alpha.dtype == np.float32
        assert c.alpha.min() >= 0.0 and c.alpha.max() <= 1.0
        opaque, clear = (c.alpha >= 0.99).mean(), (c.alpha <= 0.01).mean()
        assert 0.05 < opaque < 0.6 and 0.3 < clear < 0.95, c.name
        assert c.jpeg[:2] == b"\xff\xd8"
        assert not c.image.flags.writeable  # cached and shared: nobody may change it


def test_jpeg_is_the_composite(small: list[Composite]) -> None:
    spec = specs()[0]
    c = small[0]
    foreground, alpha = place(spec)
    back = background(spec.background)
    exact = compose(foreground, alpha, back).astype(np.float64)
    assert np.array_equal(alpha, c.alpha) and np.array_equal(foreground, c.foreground)
    assert np.abs(c.image - exact).mean() < 4.0  # JPEG noise only (quality 75, 4:2:0)
    assert np.abs(c.image - back.astype(np.float64)).mean() > 10.0  # while the person alone changes it more
    a = alpha[..., None].astype(np.float64)
    assert np.abs(exact - (a * foreground + (1 - a) * back)).max() <= 0.5
    opaque, clear = alpha >= 0.99, alpha <= 0.01
    assert np.abs(c.image[opaque].astype(float) - foreground[opaque]).mean() < 6.0
    assert np.abs(c.image[clear].astype(float) - back[clear]).mean() < 6.0


def test_compose() -> None:
    f = np.full((2, 3, 3), 200, np.uint8)
    b = np.full((2, 3, 3), 100, np.uint8)
    alpha = np.array([[0.0, 0.5, 1.0], [0.25, 0.75, 0.1]], np.float32)
    out = compose(f, alpha, b)
    assert out.dtype == np.uint8
    assert out[..., 0].tolist() == [[100, 150, 200], [125, 175, 110]]


def test_the_tuning_photos_are_none_of_the_evaluation_photos() -> None:
    """By pixels, not names: scikit-image's ``cat`` is its ``chelsea``, and once sat in both sets."""
    evaluated = [background(name).astype(np.int16) for name in BACKGROUNDS]
    for name in TUNING_BACKGROUNDS:
        tuned = background(name).astype(np.int16)
        assert min(float(np.abs(tuned - other).mean()) for other in evaluated) > 10, name
    assert float(np.abs(background("cat").astype(np.int16) - background("chelsea")).mean()) == 0.0  # the check works
