"""imaging.tiles: tiled upscaling equals the whole-image result, for any size, within the batch limit."""

import cv2
import numpy as np
import pytest
import skimage.data

from imaging.errors import ParameterError
from imaging.tiles import downscale, tile_spans, upscale_tiled

PHOTO = skimage.data.astronaut()  # a real photo, 512 x 512


class CubicNetwork:
    """A real, deterministic stand-in for a super-resolution network: bicubic upscaling of each tile (its
    receptive field reaches 2 input pixels), recording how many tiles each call gets."""

    def __init__(self, scale: int) -> None:
        self.scale, self.calls = scale, []

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        assert tiles.dtype == np.float32 and tiles.min() >= 0.0 and tiles.max() <= 1.0
        self.calls.append(len(tiles))
        return np.stack([
            cv2.resize(t.transpose(1, 2, 0), None, fx=self.scale, fy=self.scale,
                       interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1) for t in tiles
        ])


def whole_image(rgb: np.ndarray, scale: int, margin: int) -> np.ndarray:
    """The reference: the same network on the whole photo at once, reflect-padded by the same margin."""
    padded = np.pad(rgb, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")
    up = CubicNetwork(scale)(padded.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)[0].transpose(1, 2, 0)
    crop = up[margin * scale:(margin + rgb.shape[0]) * scale, margin * scale:(margin + rgb.shape[1]) * scale]
    return np.rint(np.clip(crop, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("height, width", [(37, 53), (48, 48), (5, 7), (1, 40), (40, 1), (17, 16)])
def test_tiled_equals_whole_image_for_any_size(height: int, width: int) -> None:
    rgb = np.ascontiguousarray(PHOTO[200:200 + height, 180:180 + width])
    network = CubicNetwork(scale=4)
    out = upscale_tiled(rgb, network, scale=4, tile=16, overlap=6, batch=3)
    assert out.shape == (height * 4, width * 4, 3) and out.dtype == np.uint8
    difference = np.abs(out.astype(int) - whole_image(rgb, 4, margin=3))
    assert difference.max() <= 1, f"seams: {np.argwhere(difference > 1)[:5]}"
    assert max(network.calls) <= 3


def test_without_overlap_the_seams_show() -> None:
    """The check above can fail: with no overlap the tiles' borders differ from the whole-image result."""
    rgb = np.ascontiguousarray(PHOTO[200:248, 180:228])
    out = upscale_tiled(rgb, CubicNetwork(scale=2), scale=2, tile=16, overlap=0, batch=4)
    assert np.abs(out.astype(int) - whole_image(rgb, 2, margin=0)).max() > 1  # beyond the tolerance above


def test_batch_limit_and_tile_count() -> None:
    rgb = np.ascontiguousarray(PHOTO[:100, :70])
    network = CubicNetwork(scale=2)
    upscale_tiled(rgb, network, scale=2, tile=32, overlap=8, batch=2)
    rows, cols = tile_spans(100, 32, 8), tile_spans(70, 32, 8)
    assert sum(network.calls) == len(rows) * len(cols) and max(network.calls) <= 2
    assert len(rows) == 5 and len(cols) == 3  # ceil((100 + 8 - 32) / 24) + 1, ceil((70 + 8 - 32) / 24) + 1


@pytest.mark.parametrize("length, tile, overlap", [(1, 8, 2), (7, 8, 2), (100, 32, 8), (97, 24, 23), (64, 16, 0)])
def test_kept_spans_cover_the_axis_once_with_context(length: int, tile: int, overlap: int) -> None:
    spans = tile_spans(length, tile, overlap)
    assert spans[0][1] == 0 and spans[-1][2] == length
    assert all(a[2] == b[1] for a, b in zip(spans, spans[1:], strict=False))  # contiguous, no gap or double
    margin = overlap // 2
    for start, keep_from, keep_to in spans:
        assert start + margin <= keep_from <= keep_to <= start + tile - margin


def test_bad_arguments_say_what_is_wrong() -> None:
    rgb = PHOTO[:20, :20]
    with pytest.raises(ParameterError, match="overlap must be in"):
        upscale_tiled(rgb, CubicNetwork(2), scale=2, tile=16, overlap=16, batch=1)
    with pytest.raises(ParameterError, match="uint8"):
        upscale_tiled(rgb.astype(np.float32), CubicNetwork(2), scale=2, tile=16, overlap=4, batch=1)
    with pytest.raises(ValueError, match=r"returned \(1, 3, 32, 32\), expected \(1, 3, 64, 64\)"):
        upscale_tiled(rgb, CubicNetwork(2), scale=4, tile=16, overlap=4, batch=1)


def test_downscale_halves_with_area_averaging() -> None:
    up = np.ascontiguousarray(PHOTO[:64, :48])
    half = downscale(up, 2)
    assert half.shape == (32, 24, 3)
    assert np.array_equal(half, cv2.resize(up, (24, 32), interpolation=cv2.INTER_AREA))
    assert downscale(up, 1) is up
    with pytest.raises(ParameterError, match="positive integer"):
        downscale(up, 0)
