"""Output encoders (imaging/encode.py): exact lossless round trips, lossy tolerances, refusals, no metadata."""

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, PngImagePlugin

from imaging import encode as encoder
from imaging.encode import FORMATS, MEDIA_TYPES, encode, to_uint8
from imaging.errors import ImageError

ASTRONAUT_ALPHA = Path(__file__).resolve().parents[2] / "evaluation" / "data" / "astronaut_alpha_ref.png"
MODES = ("grey", "depth16", "rgb", "rgba")


@pytest.fixture(scope="module")
def results() -> dict[str, np.ndarray]:
    """One small real result per pixel mode: a matte, a 16-bit depth-like map, a photo and a cutout."""
    photo = skimage.data.astronaut()[96:352, 96:352]
    matte = np.asarray(Image.open(ASTRONAUT_ALPHA).convert("L"))[96:352, 96:352]
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    depth = cv2.GaussianBlur(grey, (0, 0), 4) * 200 + matte.astype(np.float32) * 40  # smooth, full 16-bit range
    depth = np.rint((depth - depth.min()) / (depth.max() - depth.min()) * 65535).astype(np.uint16)
    rgba = np.dstack([photo, matte])
    rgba[matte == 0, :3] = 0  # as cutouts are served
    return {"grey": matte, "depth16": depth, "rgb": photo, "rgba": rgba}


@pytest.fixture
def png_writer() -> Iterator[str]:
    """The fast PNG path: fpng for RGB(A), OpenCV for grey and 16-bit."""
    yield "fpng"


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, names = 8, []
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        names.append(data[position + 4:position + 8])
        position += 12 + length
    assert position == len(data)
    return names


def jpeg_segments(data: bytes) -> list[int]:
    """Marker bytes of the JPEG's segments up to the first scan."""
    assert data[:2] == b"\xff\xd8"
    position, markers = 2, []
    while True:
        assert data[position] == 0xFF
        marker = data[position + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    position, names = 12, []
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position + 4)
        names.append(data[position:position + 4])
        position += 8 + length + (length & 1)
    return names


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_png_round_trips_exactly(results: dict, png_writer: str, mode: str, level: int) -> None:
    pixels = results[mode]
    data = encode(pixels, "png", 90, level)
    back = decode(data)
    assert back.shape == pixels.shape and np.array_equal(back, pixels)
    unchanged = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # a second decoder agrees
    if unchanged.ndim == 3:
        unchanged = cv2.cvtColor(unchanged, cv2.COLOR_BGR2RGB if mode == "rgb" else cv2.COLOR_BGRA2RGBA)
    assert unchanged.dtype == pixels.dtype and np.array_equal(unchanged, pixels)
    chunks = png_chunks(data)
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and set(chunks[1:-1]) == {b"IDAT"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_views_of_larger_arrays_encode_as_their_pixels(results: dict, png_writer: str, fmt: str, mode: str) -> None:
    if fmt == "jpeg" and mode == "rgba":
        return
    for view in (results[mode][10:200, 30:170], results[mode][::-1, ::2]):  # a crop, a flipped and strided view
        back = decode(encode(view, fmt, 100, 1))
        expected = to_uint8(view) if fmt != "png" else view
        if back.ndim == 3 and expected.ndim == 2:
            back = back[..., 0]
        assert back.shape == expected.shape
        assert np.abs(back.astype(np.int64) - expected).mean() < (2 if fmt == "jpeg" else 1e-9)


def test_png_bit_depths_and_colour_types(results: dict) -> None:
    for mode, expected in (("grey", (8, 0)), ("depth16", (16, 0)), ("rgb", (8, 2)), ("rgba", (8, 6))):
        data = encode(results[mode], "png", 90, 1)
        depth, colour_type = data[24], data[25]  # IHDR: width, height, bit depth, colour type
        assert (depth, colour_type) == expected, mode


def test_higher_png_levels_are_smaller(results: dict) -> None:
    assert len(encode(results["rgb"], "png", 90, 9)) < len(encode(results["rgb"], "png", 90, 0))


def test_other_png_chunks_are_dropped(results: dict) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "from the input photo")
    buffer = io.BytesIO()
    Image.fromarray(results["rgb"]).save(buffer, format="PNG", pnginfo=info, icc_profile=b"\0" * 128)
    assert b"tEXt" in png_chunks(buffer.getvalue())
    cleaned = encoder._metadata_free(buffer.getvalue())
    assert set(png_chunks(cleaned)) == {b"IHDR", b"IDAT", b"IEND"}
    assert np.array_equal(decode(cleaned), results["rgb"])


@pytest.mark.parametrize("mode", MODES)
def test_lossless_webp_round_trips_exactly(results: dict, mode: str) -> None:
    pixels = results[mode]
    back = decode(encode(pixels, "webp", 100, 1))
    expected = to_uint8(pixels)
    if expected.ndim == 2:  # WebP has no grey: it comes back as R = G = B
        assert back.shape == (*expected.shape, 3) and (back == expected[..., None]).all()
    else:
        assert np.array_equal(back, expected)


def test_lossless_webp_keeps_colour_under_transparent_pixels() -> None:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[:32, :, 3] = 0
    assert np.array_equal(decode(encode(rgba, "webp", 100, 1)), rgba)


@pytest.mark.parametrize(("fmt", "mode", "tolerance"), [
    ("webp", "rgb", 3.0), ("webp", "grey", 1.5), ("webp", "rgba", 3.0), ("webp", "depth16", 1.5),
    ("jpeg", "rgb", 3.0), ("jpeg", "grey", 1.5), ("jpeg", "depth16", 1.5),
])
def test_lossy_round_trips_are_close(results: dict, fmt: str, mode: str, tolerance: float) -> None:
    pixels = to_uint8(results[mode]).astype(np.int64)

    def error(quality: int) -> float:
        back = decode(encode(results[mode], fmt, quality, 1)).astype(np.int64)
        if pixels.ndim == 2:
            assert back.shape[:2] == pixels.shape
            return float(np.abs(back.reshape(*pixels.shape, -1)[..., 0] - pixels).mean())
        assert back.shape == pixels.shape
        if mode != "rgba":
            return float(np.abs(back - pixels).mean())
        assert np.array_equal(back[..., 3], pixels[..., 3])  # the alpha stays exact in lossy WebP
        visible = pixels[..., 3] > 0  # libwebp may change the colour under alpha 0, which nobody sees
        return float(np.abs(back[visible][:, :3] - pixels[visible][:, :3]).mean())

    at_90 = error(90)
    assert 0 < at_90 < tolerance, at_90  # lossy, and close
    assert error(20) > at_90  # quality is used


def test_16_bit_to_8_bit_rounds_to_the_nearest_level() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    assert np.array_equal(to_uint8(values), (values.astype(np.int64) + 128) // 257)
    assert np.array_equal(to_uint8(values), np.rint(values / 257.0))


@pytest.mark.parametrize("opaque", [False, True])
def test_rgba_to_jpeg_is_refused_naming_the_formats_that_can(results: dict, opaque: bool) -> None:
    rgba = results["rgba"].copy()
    if opaque:
        rgba[..., 3] = 255  # refused too: the answer does not depend on the picture
    with pytest.raises(ImageError, match="format=webp") as raised:
        encode(rgba, "jpeg", 90, 1)
    assert "format=png" in str(raised.value)


def test_sides_over_a_format_limit_are_refused() -> None:
    long = np.zeros((1, encoder.WEBP_MAX_SIDE + 1), np.uint8)
    with pytest.raises(ImageError, match="format=png"):
        encode(long, "webp", 90, 1)
    assert decode(encode(long, "png", 90, 1)).shape == long.shape


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("quality", [90, 100])
def test_webp_has_no_metadata_chunks(results: dict, mode: str, quality: int) -> None:
    data = encode(results[mode], "webp", quality, 1)
    chunks = webp_chunks(data)
    assert set(chunks) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}, chunks
    if b"VP8X" in chunks:
        flags = data[20]
        assert flags & 0x2E == 0 and flags & 0x10  # alpha only: no ICC (0x20), EXIF (0x08), XMP (0x04), animation


@pytest.mark.parametrize("mode", ["grey", "depth16", "rgb"])
def test_jpeg_has_no_metadata_segments(results: dict, mode: str) -> None:
    data = encode(results[mode], "jpeg", 90, 1)
    markers = jpeg_segments(data)
    assert 0xE1 not in markers and 0xE2 not in markers  # no APP1 (EXIF, XMP), no APP2 (ICC)
    assert not {m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE}  # nor any other APPn or comment


def test_metadata_of_an_input_photo_cannot_reach_an_output(results: dict) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    buffer = io.BytesIO()
    Image.fromarray(results["rgb"]).save(buffer, format="JPEG", exif=exif, icc_profile=b"\0" * 128)
    pixels = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))  # pixels only
    for fmt in FORMATS:
        data = encode(pixels, fmt, 90, 1)
        assert b"Camera maker" not in data and b"Exif" not in data


def test_media_types() -> None:
    assert set(MEDIA_TYPES) == set(FORMATS)
    for fmt in FORMATS:
        assert Image.open(io.BytesIO(encode(np.zeros((4, 4, 3), np.uint8), fmt, 90, 1))).get_format_mimetype() == \
            MEDIA_TYPES[fmt]


def test_webp_effort_follows_compress_level(results: dict) -> None:
    assert encoder.webp_method(1) == 0 and encoder.webp_method(5) == 4 and encoder.webp_method(9) == 6
    assert len(encode(results["rgb"], "webp", 80, 7)) < len(encode(results["rgb"], "webp", 80, 1))


@pytest.mark.parametrize(("pixels", "fmt", "quality", "level", "message"), [
    (np.zeros((4, 4, 3), np.uint8), "gif", 90, 1, "format must be one of"),
    (np.zeros((4, 4, 3), np.uint8), "PNG", 90, 1, "format must be one of"),
    (np.zeros((4, 4, 3), np.uint8), "jpeg", 0, 1, "quality must be an integer 1-100"),
    (np.zeros((4, 4, 3), np.uint8), "webp", 101, 1, "quality must be an integer 1-100"),
    (np.zeros((4, 4, 3), np.uint8), "jpeg", 90.0, 1, "quality must be an integer"),
    (np.zeros((4, 4, 3), np.uint8), "jpeg", True, 1, "quality must be an integer"),
    (np.zeros((4, 4, 3), np.uint8), "png", 90, 10, "compress_level must be an integer 0-9"),
    (np.zeros((4, 4, 3), np.uint8), "png", 90, -1, "compress_level"),
    (np.zeros((4, 4, 3), np.float32), "png", 90, 1, "pixels must be uint8"),
    (np.zeros((4, 4, 2), np.uint8), "png", 90, 1, "pixels must be uint8"),
    (np.zeros((4, 4, 3), np.uint16), "png", 90, 1, "pixels must be uint8"),
    (np.zeros((0, 4), np.uint8), "png", 90, 1, "pixels must be uint8"),
    (np.zeros(4, np.uint8), "png", 90, 1, "pixels must be uint8"),
    ([[0, 0], [0, 0]], "png", 90, 1, "numpy array"),
])
def test_bad_arguments_raise(pixels: object, fmt: str, quality: object, level: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        encode(pixels, fmt, quality, level)  # type: ignore[arg-type]
    assert not isinstance(raised.value, ImageError)  # a caller's bug, not the request's


def test_png_is_valid_zlib(results: dict, png_writer: str) -> None:
    data = encode(results["rgba"], "png", 90, 1)
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        if data[position + 4:position + 8] == b"IDAT":
            idat += data[position + 8:position + 8 + length]
        assert zlib.crc32(data[position + 4:position + 8 + length]) == struct.unpack_from(">I", data,
                                                                                          position + 8 + length)[0]
        position += 12 + length
    assert len(zlib.decompress(idat)) == 256 * (1 + 256 * 4)  # a filter byte and the pixels per row
