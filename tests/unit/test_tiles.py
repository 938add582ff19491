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
    out = upscale_tiled(rgb, network, scale=4, tile=16, overlap=8, batch=3)  # 2 pixels of context: cubic's reach
    assert out.shape == (height * 4, width * 4, 3) and out.dtype == np.uint8
    difference = np.abs(out.astype(int) - whole_image(rgb, 4, margin=4))
    assert difference.max() <= 1, f"seams: {np.argwhere(difference > 1)[:5]}"
    assert max(network.calls) <= 3


def test_without_overlap_the_seams_show() -> None:
    """The check above can fail: with no overlap the tiles' borders differ from the whole-image result."""
    rgb = np.ascontiguousarray(PHOTO[200:248, 180:228])
    out = upscale_tiled(rgb, CubicNetwork(scale=2), scale=2, tile=16, overlap=0, batch=4)
    assert np.abs(out.astype(int) - whole_image(rgb, 2, margin=0)).max() > 1  # beyond the tolerance above


def brightness_by_tile(tiles: np.ndarray) -> np.ndarray:
    """A network whose output depends on the whole tile (like a deep one's far reach): nearest x2, brightened by
    the tile's mean, so neighbouring tiles disagree by a few levels."""
    up = tiles.repeat(2, axis=2).repeat(2, axis=3)
    return np.clip(up + 0.3 * (tiles.mean(axis=(1, 2, 3), keepdims=True) - 0.5), 0.0, 1.0)


@pytest.mark.parametrize("overlap, widest_step", [(16, 4), (2, None)])  # measured 3 and 25
def test_the_ramp_hides_the_seam_where_tiles_disagree(overlap: int, widest_step: int | None) -> None:
    ramp = np.tile(np.linspace(0, 255, 200).astype(np.uint8)[None, :, None], (8, 1, 3))  # a smooth gradient
    row = upscale_tiled(ramp, brightness_by_tile, scale=2, tile=64, overlap=overlap, batch=4)[0, :, 0].astype(int)
    steps = np.abs(np.diff(row))
    if widest_step is None:  # no ramp (overlap // 4 == 0): the tiles' disagreement is a visible step
        assert steps.max() >= 8
    else:
        assert steps.max() <= widest_step


def test_batch_limit_and_tile_count() -> None:
    rgb = np.ascontiguousarray(PHOTO[:100, :70])
    network = CubicNetwork(scale=2)
    upscale_tiled(rgb, network, scale=2, tile=32, overlap=8, batch=2)
    rows, cols = tile_spans(100, 32, 8), tile_spans(70, 32, 8)
    assert sum(network.calls) == len(rows) * len(cols) and max(network.calls) <= 2
    assert len(rows) == 5 and len(cols) == 3  # ceil((100 + 8 - 32) / 24) + 1, ceil((70 + 8 - 32) / 24) + 1


@pytest.mark.parametrize("length, tile, overlap", [(1, 8, 2), (7, 8, 2), (100, 32, 8), (97, 24, 12), (64, 16, 0),
                                                    (75, 32, 16), (41, 16, 8)])
def test_spans_cover_the_axis_with_ramps_only_between_neighbours(length: int, tile: int, overlap: int) -> None:
    spans = tile_spans(length, tile, overlap)
    assert spans[0][1] == 0 and spans[-1][2] == length and spans[0][3] == 0
    for previous, span in zip(spans, spans[1:], strict=False):
        assert span[1] + span[3] == previous[2]  # the ramp is exactly what the two share
        assert span[3] == 2 * (overlap // 4)
    for before, after in zip(spans, spans[2:], strict=False):
        assert before[2] <= after[1]  # no pixel is blended from three tiles
    context = overlap // 4
    for start, used_from, used_to, _ in spans:
        assert start + context <= used_from < used_to <= start + tile - context


def test_bad_arguments_say_what_is_wrong() -> None:
    rgb = PHOTO[:20, :20]
    with pytest.raises(ParameterError, match=r"overlap must be in \[0, tile // 2 = 8\]"):
        upscale_tiled(rgb, CubicNetwork(2), scale=2, tile=16, overlap=9, batch=1)
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


def test_memory_beyond_the_output_is_about_one_row_of_tiles() -> None:
    """No float copy of the output or of a whole row of tiles: measured 3.5 MiB beyond a 14.4 MiB output here
    (a row of tiles is 1.1 MiB as 8-bit); a float32 accumulator for the output would add 58 MiB."""
    import tracemalloc

    rgb = np.ascontiguousarray(np.tile(PHOTO, (2, 3, 1))[:900, :1400])
    tracemalloc.start()
    try:
        out = upscale_tiled(rgb, lambda t: t.repeat(2, axis=2).repeat(2, axis=3), scale=2, tile=64, overlap=16,
                            batch=4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - out.nbytes < 0.35 * out.nbytes
