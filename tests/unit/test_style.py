"""Style transfer's pixel work around the network (``imaging.style``), with a real function as the network."""

from __future__ import annotations

import numpy as np
import pytest

from contract.product import STYLE, STYLE_NAMES
from imaging.errors import ParameterError
from imaging.style import (
    MIN_SIDE,
    MULTIPLE,
    mix,
    style_decode_size,
    style_square,
    style_weights,
    stylize,
    working_size,
)


def test_every_declared_style_is_one_of_the_networks_26() -> None:
    assert len(STYLE_NAMES) == len(set(STYLE_NAMES)) == 26
    assert STYLE.default in STYLE_NAMES and STYLE.choices == STYLE_NAMES
    weights = style_weights("mosaic", STYLE_NAMES)
    assert weights.dtype == np.float32 and weights.sum() == 1 and weights[STYLE_NAMES.index("mosaic")] == 1


def test_an_unknown_style_names_the_choices() -> None:
    with pytest.raises(ParameterError, match="unknown style 'picasso'.*starry"):
        style_weights("picasso", STYLE_NAMES)


def test_the_working_size_caps_the_longest_side_and_never_enlarges() -> None:
    assert working_size((4000, 3000), 1024) == (1024, 768)
    assert working_size((300, 5000), 1024) == (61, 1024)
    assert working_size((640, 480), 1024) == (640, 480)


@pytest.mark.parametrize("size", [(640, 480), (333, 257), (7, 1), (2000, 1500)])
def test_stylize_pads_for_the_network_and_crops_back(size: tuple[int, int]) -> None:
    seen = []

    def invert(x: np.ndarray) -> np.ndarray:  # a network that keeps the shape: its input mirrored in value
        seen.append(x.shape)
        return 1 - x

    width, height = size
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    styled = stylize(rgb, invert, 1024)
    expected_w, expected_h = working_size(size, 1024)
    assert styled.shape == (expected_h, expected_w, 3) and styled.dtype == np.uint8
    _, channels, padded_h, padded_w = seen[0]
    assert channels == 3 and padded_h % MULTIPLE == 0 and padded_w % MULTIPLE == 0
    assert min(padded_h, padded_w) >= MIN_SIDE
    if (expected_w, expected_h) == size:  # no resize: the crop is exactly the inverted photo
        assert np.abs(styled.astype(int) - (255 - rgb.astype(int))).max() <= 1


def test_stylize_channels_last_hands_the_network_nhwc() -> None:
    seen = []

    def invert(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return 1 - x

    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    styled = stylize(rgb, invert, 1024, channels_last=True)
    assert seen == [(1, 48, 64, 3)]
    assert np.abs(styled.astype(int) - (255 - rgb.astype(int))).max() <= 1


def test_the_style_square_is_the_centre_at_the_networks_size() -> None:
    rgb = np.zeros((300, 500, 3), np.uint8)
    rgb[:, 100:400] = 255  # the centre square is white; the sides are black
    square = style_square(rgb, 256)
    assert square.shape == (1, 256, 256, 3) and square.dtype == np.float32
    assert square.min() == 1.0  # nothing of the black sides
    small = style_square(np.full((40, 90, 3), 128, np.uint8), 256)  # enlarged when smaller than the network's
    assert small.shape == (1, 256, 256, 3) and np.allclose(small, 128 / 255, atol=1e-3)


def test_a_style_image_is_decoded_just_large_enough_for_its_square() -> None:
    assert style_decode_size((4000, 3000), 256) == (342, 256)
    assert style_decode_size((3000, 4000), 256) == (256, 342)
    assert style_decode_size((200, 100), 256) == (200, 100)  # never enlarged


def test_mix_follows_strength_and_keeps_the_subject() -> None:
    photo = np.full((40, 60, 3), 200, np.uint8)
    styled = np.zeros((20, 30, 3), np.uint8)  # at the working size: scaled up to the photo's
    assert (mix(photo, styled, 1.0) == 0).all()
    assert (mix(photo, styled, 0.0) == 200).all()
    assert (mix(photo, styled, 0.5) == 100).all()
    keep = np.zeros((40, 60), np.float32)
    keep[10:30, 20:40] = 1
    kept = mix(photo, styled, 1.0, keep)
    assert (kept[10:30, 20:40] == 200).all() and (kept[keep == 0] == 0).all()
