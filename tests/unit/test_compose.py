"""The compose step without Triton (``triton_models.compose``): each result from one scene, as the ensembles
ask for it. The Triton integration and end-to-end tests run the same code on real models and photos."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from contract import product as P
from imaging import encode as encoder
from imaging.errors import ImageError, ParameterError
from tests.conftest import jpeg_bytes
from triton_models.compose import Scene, Values, compose

WIDTH, HEIGHT = 160, 120
SUBJECT = (slice(30, 120), slice(50, 110))  # rows, columns of the subject in the output


def scene(size: tuple[int, int] = (WIDTH, HEIGHT), photo_size: tuple[int, int] | None = None) -> Scene:
    """A green subject rectangle over a textured red-blue backdrop; the models say where it is and that it is
    near (depth 1 inside, 4 outside), at their own low resolution."""
    width, height = size
    rng = np.random.default_rng(3)
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = 180 + rng.integers(0, 40, (height, width))
    rgb[..., 2] = 60 + rng.integers(0, 40, (height, width))
    inside = np.zeros((height, width), bool)
    rows, cols = (slice(round(s.start * n / full), round(s.stop * n / full))
                  for s, n, full in zip(SUBJECT, (height, width), (HEIGHT, WIDTH), strict=True))
    inside[rows, cols] = True
    rgb[inside] = (40, 200, 60)
    small = np.asarray(Image.fromarray(inside.astype(np.uint8) * 255).resize((64, 48), Image.Resampling.BOX)) / 255
    alpha = (small > 0.5).astype(np.float32)
    depth = np.where(alpha > 0.5, 1.0, 4.0).astype(np.float32)
    return Scene(size, photo_size or size, rgb, alpha, depth)


def run(tensor: str, values: dict | None = None, parts: dict | None = None, at: Scene | None = None) -> object:
    return compose({tensor}, at or scene(), Values(values or {}), parts or {}, 1, 40_000_000)[tensor]


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_layers_equal_the_separate_results() -> None:
    body = json.loads(run(P.LAYERS_JSON.tensor))
    layers = {name: base64.b64decode(data) for name, data in body["layers"].items()}
    assert set(layers) == set(P.DEFAULT_LAYERS)
    assert layers["depth"] == run(P.DEPTH_IMAGE.tensor)
    assert layers["matte"] == run(P.MASK_IMAGE.tensor)
    assert layers["foreground"] == run(P.CUTOUT_IMAGE.tensor)
    near, far = run(P.DEPTH_RANGE.tensor)
    assert (body["depth_near"], body["depth_far"]) == (near, far)
    matte, background = decoded(layers["matte"]), decoded(layers["background"])
    assert np.array_equal(background[..., 3], 255 - matte)  # the background layer is the rest of the photo
    only = json.loads(run(P.LAYERS_JSON.tensor, {"INCLUDE": b"matte"}))
    assert list(only["layers"]) == ["matte"] and "depth_near" not in only


def test_without_a_face_the_face_layers_are_empty_and_the_other_masks_follow_the_matte() -> None:
    plain = scene()
    at = Scene(plain.size, plain.photo_size, plain.rgb, plain.model_alpha, plain.model_depth, faces=[])
    body = json.loads(run(P.LAYERS_JSON.tensor, {"INCLUDE": b"matte,person,face,hair,faces"}, at=at))
    assert body["faces"] == []
    layers = {name: decoded(base64.b64decode(data)) for name, data in body["layers"].items()}
    assert not layers["face"].any() and not layers["hair"].any() and not layers["person"].any()
    assert layers["matte"].any()
    assert run(P.FACE_COUNT.tensor, at=at) == [0.0]
    background = decoded(run(P.MASK_IMAGE.tensor, {"LAYER": b"background"}, at=at))
    assert np.array_equal(background, 255 - layers["matte"])
    with pytest.raises(ImageError, match="faces step"):  # an ensemble without the faces step cannot make them
        run(P.MASK_IMAGE.tensor, {"LAYER": b"eyes"})


def test_the_subject_a_by_faces_step_chose_is_the_subject_header() -> None:
    plain = scene()
    at = Scene(plain.size, plain.photo_size, plain.rgb, plain.model_alpha, plain.model_depth, subject_kind=1)
    assert run(P.SUBJECT.tensor, at=at) == [1.0]
    assert run(P.SUBJECT.tensor) == [-1.0]  # a fixed variant's: the gateway fills in the declared one


def test_a_tap_on_the_subject_selects_the_matte_and_taps_outside_the_photo_are_refused() -> None:
    plain = scene(photo_size=(WIDTH * 2, HEIGHT * 2))  # taps are in pixels of the photo, twice the output's
    at = Scene(plain.size, plain.photo_size, plain.rgb, plain.model_alpha, plain.model_depth, faces=[])
    rows, cols = SUBJECT
    tap = {"POINT_X": (cols.start + cols.stop), "POINT_Y": (rows.start + rows.stop)}  # the subject's centre
    out = compose({P.SELECT_IMAGE.tensor, P.SELECTED.tensor}, at, Values(tap), {}, 1, 40_000_000)
    assert P.SELECT_SOURCES[int(out[P.SELECTED.tensor][0])] == "object"
    assert np.array_equal(decoded(out[P.SELECT_IMAGE.tensor]), decoded(run(P.MASK_IMAGE.tensor, at=at)))
    with pytest.raises(ParameterError, match=f"outside the upright photo of {WIDTH * 2}x{HEIGHT * 2}"):
        run(P.SELECT_IMAGE.tensor, {"POINT_X": WIDTH * 2, "POINT_Y": 0}, at=at)
    with pytest.raises(ParameterError, match="at most 16"):
        run(P.SELECT_IMAGE.tensor, {"POINT_X": 0, "POINT_Y": 0, "NEGATIVE": ";".join(["1,1"] * 16).encode()}, at=at)


def test_a_colour_background_shows_where_the_subject_is_not() -> None:
    out = decoded(run(P.BACKGROUND_IMAGE.tensor, {"COLOR": b"1e90ff"}))
    photo = scene().rgb
    assert out.shape == (HEIGHT, WIDTH, 3)
    assert (out[:10, :20] == (0x1E, 0x90, 0xFF)).all()  # far from the subject: the new colour exactly
    rows, cols = SUBJECT
    core = (slice(rows.start + 8, rows.stop - 8), slice(cols.start + 8, cols.stop - 8))
    assert np.array_equal(out[core], photo[core])  # inside the subject: the photo exactly


def test_a_transparent_colour_keeps_alpha_and_jpeg_is_refused_for_it() -> None:
    out = decoded(run(P.BACKGROUND_IMAGE.tensor, {"COLOR": b"00000080"}))
    assert out.shape == (HEIGHT, WIDTH, 4) and out[0, 0, 3] == 0x80
    with pytest.raises(ParameterError, match="format=png"):
        run(P.BACKGROUND_IMAGE.tensor, {"COLOR": b"00000080", "FORMAT": b"jpeg"})


def test_an_uploaded_background_replaces_the_backdrop() -> None:
    new = np.full((60, 80, 3), (250, 250, 10), np.uint8)
    out = decoded(run(P.BACKGROUND_IMAGE.tensor, parts={P.BACKGROUND_PART.tensor: jpeg_bytes(new, quality=95)}))
    assert np.abs(out[:10, :20].astype(int) - (250, 250, 10)).max() <= 6  # JPEG of a flat colour
    assert np.array_equal(out[60, 80], scene().rgb[60, 80])


def test_focus_parameters_are_checked_against_the_photo() -> None:
    with pytest.raises(ParameterError, match=r"outside the upright photo of 160x120"):
        run(P.BOKEH_IMAGE.tensor, {"FOCUS_X": 160, "FOCUS_Y": 5})
    with pytest.raises(ParameterError, match="together"):
        run(P.BOKEH_IMAGE.tensor, {"FOCUS_X": 10})
    with pytest.raises(ParameterError, match="not both"):
        run(P.BOKEH_IMAGE.tensor, {"FOCUS_X": 10, "FOCUS_Y": 10, "FOCUS_DEPTH": 0.5})


def _sharpness(image: np.ndarray, region: tuple[slice, slice]) -> float:
    grey = image[region].astype(np.float32).mean(axis=2)
    return float(np.var(np.diff(grey, axis=1)))


def test_bokeh_keeps_the_focused_plane_sharp() -> None:
    photo = scene().rgb
    backdrop = (slice(0, 25), slice(0, 45))
    default = decoded(run(P.BOKEH_IMAGE.tensor, {"APERTURE": 10.0}))  # focus on the subject
    assert _sharpness(default, backdrop) < 0.5 * _sharpness(photo, backdrop)
    on_backdrop = decoded(run(P.BOKEH_IMAGE.tensor, {"APERTURE": 10.0, "FOCUS_X": 5, "FOCUS_Y": 5}))
    assert _sharpness(on_backdrop, backdrop) > 0.9 * _sharpness(photo, backdrop)


def test_adjust_by_matte_tones_only_the_chosen_side() -> None:
    out = decoded(run(P.ADJUST_IMAGE.tensor, {"BG_SATURATION": -1.0}))
    photo = scene().rgb
    corner = out[:10, :20].astype(int)
    assert (corner.max(axis=2) - corner.min(axis=2)).max() <= 2  # the backdrop is grey
    assert np.abs(out[60, 80].astype(int) - photo[60, 80]).max() <= 2  # the subject is not
    with pytest.raises(ParameterError, match="ramp_near"):
        run(P.ADJUST_IMAGE.tensor, {"ADJUST_BY": b"depth", "RAMP_NEAR": 0.2, "RAMP_FAR": 0.6})


def test_crop_box_is_in_pixels_of_the_upright_photo() -> None:
    shrunk = scene(photo_size=(WIDTH * 4, HEIGHT * 4))  # the output is a quarter of the photo (max_side)
    results = compose({P.CROP_IMAGE.tensor, P.CROP_BOX.tensor}, shrunk, Values({"ASPECT": b"1:1"}), {}, 1, 10**8)
    x, y, w, h = results[P.CROP_BOX.tensor]
    image = decoded(results[P.CROP_IMAGE.tensor])
    assert image.shape[0] == image.shape[1] and w == h == image.shape[0] * 4
    assert x <= 50 * 4 and x + w >= 110 * 4  # the subject's columns are inside
    sized = compose({P.CROP_IMAGE.tensor}, scene(), Values({"CROP_WIDTH": 40, "CROP_HEIGHT": 50}), {}, 1, 10**8)
    assert decoded(sized[P.CROP_IMAGE.tensor]).shape == (50, 40, 3)


def test_formats_follow_the_parameter() -> None:
    webp = run(P.MASK_IMAGE.tensor, {"FORMAT": b"webp", "QUALITY": 100})
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    grey = np.asarray(Image.open(io.BytesIO(webp)).convert("L"))  # WebP has no grey mode: decoded as RGB
    assert np.array_equal(grey, decoded(run(P.MASK_IMAGE.tensor)))  # WebP 100 is lossless
    jpeg = run(P.BOKEH_IMAGE.tensor, {"FORMAT": b"jpeg", "QUALITY": 80})
    assert jpeg[:2] == b"\xff\xd8"


def test_the_encoder_knows_the_declared_formats() -> None:
    assert encoder.MEDIA_TYPES == P.FORMATS


def test_the_foreground_box_bounds_the_matte() -> None:
    x, y, w, h = run(P.FOREGROUND_BOX.tensor)
    rows, cols = SUBJECT
    assert abs(x - cols.start) <= 6 and abs(y - rows.start) <= 6  # the soft edge of a 2.5x upsampled matte
    assert abs(x + w - cols.stop) <= 6 and abs(y + h - rows.stop) <= 6
    empty = scene()
    empty.model_alpha = np.zeros_like(empty.model_alpha)
    assert run(P.FOREGROUND_BOX.tensor, at=empty) == [0.0, 0.0, 0.0, 0.0]


def test_an_aspect_the_photo_cannot_hold_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="nearer the photo's 160:120"):
        compose({P.CROP_IMAGE.tensor}, scene(), Values({"ASPECT": b"9999:1"}), {}, 1, 10**8)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_style_mixes_the_styled_pixels_and_keeps_the_subject() -> None:
    at = scene()
    at.model_rgb = np.zeros((HEIGHT // 2, WIDTH // 2, 3), np.uint8)  # the network's output at its working size
    full = decoded(run(P.STYLE_IMAGE.tensor, at=at))
    assert full.shape == (HEIGHT, WIDTH, 3) and (full == 0).all()
    half = decoded(run(P.STYLE_IMAGE.tensor, {P.STRENGTH.tensor: 0.5}, at=at))
    assert np.abs(half.astype(int) - at.rgb.astype(int) // 2).max() <= 1
    kept = decoded(run(P.STYLE_IMAGE.tensor, {P.KEEP.tensor: b"person"}, at=at))
    inside = np.zeros((HEIGHT, WIDTH), bool)
    inside[SUBJECT[0].start + 6:SUBJECT[0].stop - 6, SUBJECT[1].start + 6:SUBJECT[1].stop - 6] = True
    assert (kept[inside] == at.rgb[inside]).all() and (kept[:10, :10] == 0).all()


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_gives_exactly_scale_times_the_photo(scale: int) -> None:
    at = scene()
    at.model_rgb = np.asarray(Image.fromarray(at.rgb).resize((WIDTH * 4, HEIGHT * 4), Image.Resampling.NEAREST))
    out = decoded(run(P.UPSCALE_IMAGE.tensor, {P.SCALE.tensor: scale}, at=at))
    assert out.shape == (HEIGHT * scale, WIDTH * scale, 3)
    assert (out[::scale, ::scale] == at.rgb).all()  # nearest 4x, then halved by area: the photo's pixels


def test_upscale_refuses_a_result_of_the_wrong_size() -> None:
    at = scene()
    at.model_rgb = np.zeros((HEIGHT * 4 + 1, WIDTH * 4, 3), np.uint8)
    with pytest.raises(ImageError, match="not a multiple"):
        run(P.UPSCALE_IMAGE.tensor, {P.SCALE.tensor: 4}, at=at)


def test_erase_fills_only_the_mask() -> None:
    at = scene()
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[40:70, 60:100] = 255  # inside the green subject: filled with its green
    out = decoded(run(P.ERASE_IMAGE.tensor, parts={P.ERASE_MASK.tensor: png_bytes(mask)}, at=at))
    outside = mask == 0
    assert (out[outside] == at.rgb[outside]).all()
    assert np.abs(out[~outside].astype(int) - (40, 200, 60)).mean() < 10


@pytest.mark.parametrize(("part", "problem"), [
    (b"", "multipart part named mask"),
    (b"not an image", "the mask part"),
    (png_bytes(np.zeros((HEIGHT, WIDTH), np.uint8)), "marks nothing"),
])
def test_erase_refuses_a_missing_or_unusable_mask(part: bytes, problem: str) -> None:
    with pytest.raises(ParameterError, match=problem):
        run(P.ERASE_IMAGE.tensor, parts={P.ERASE_MASK.tensor: part})
