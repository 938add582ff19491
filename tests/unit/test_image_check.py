import io
import re
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.errors import ApiError, BadImage, PayloadTooLarge, UnsupportedMediaType
from gateway.image_check import MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS, inspect_image

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 255, (37, 53, 3), dtype=np.uint8)


def encode(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, format=fmt, **options)
    return buffer.getvalue()


CASES = {
    "jpeg": encode("JPEG"),
    "jpeg_progressive": encode("JPEG", progressive=True),
    "png": encode("PNG"),
    "webp_lossy": encode("WEBP"),
    "webp_lossless": encode("WEBP", lossless=True),
    "webp_extended": encode("WEBP", exif=Image.Exif().tobytes() or b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_size_from_headers(name: str) -> None:
    info = inspect_image(CASES[name], max_pixels=10**6)
    assert (info.width, info.height) == (53, 37)
    assert info.format == name.split("_")[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncated_files_are_refused(name: str) -> None:
    data = CASES[name]
    with pytest.raises(BadImage, match="truncated"):
        inspect_image(data[: len(data) // 2], max_pixels=10**6)


def test_empty_body() -> None:
    with pytest.raises(BadImage, match="empty"):
        inspect_image(b"", max_pixels=10**6)


@pytest.mark.parametrize("data", [
    b"hello world", b"GIF89a" + b"\x00" * 20, b"<svg xmlns='x'/>", b"II*\x00" + b"\x00" * 20,
])
def test_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="not a JPEG, PNG or WebP"):
        inspect_image(data, max_pixels=10**6)


def test_declared_type_must_match_data() -> None:
    with pytest.raises(UnsupportedMediaType, match="image/png but the data is image/jpeg"):
        inspect_image(CASES["jpeg"], max_pixels=10**6, declared_type="image/png")


def test_pixel_limit_is_read_from_the_header_of_a_bomb() -> None:
    # A valid PNG header declaring 50000 x 50000 pixels, with almost no data.
    header = encode("PNG")
    bomb = header[:16] + (50000).to_bytes(4, "big") * 2 + header[24:]
    with pytest.raises(PayloadTooLarge, match="2500.0 megapixels"):
        inspect_image(bomb, max_pixels=40_000_000)


def test_zero_sized_header_is_refused() -> None:
    header = encode("PNG")
    with pytest.raises(BadImage, match="empty 0x0"):
        inspect_image(header[:16] + bytes(8) + header[24:], max_pixels=10**6)


# --- hostile headers (tests/hostile has the same cases end to end) ---------------------------------


@pytest.mark.parametrize(("data", "name"), [
    (encode("GIF"), "GIF"),
    (encode("BMP"), "BMP"),
    (encode("TIFF"), "TIFF"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(40), "HEIC"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(40), "AVIF"),
    (b"\xef\xbb\xbf<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
    (b"%PDF-1.7\n" + CASES["jpeg"], "PDF"),
])
def test_refused_formats_are_named(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=f"is {re.escape(name)} data, not a JPEG, PNG or WebP") as error:
        inspect_image(data, max_pixels=10**6)
    assert error.value.code == "unsupported_format"


def test_text_starting_with_bm_is_not_called_bmp() -> None:
    with pytest.raises(UnsupportedMediaType, match="not an image this service can read"):
        inspect_image(b"BMW sells cars" + bytes(20), max_pixels=10**6)


def test_jpeg_scan_bomb_is_refused_but_normal_progressive_passes() -> None:
    progressive = CASES["jpeg_progressive"]
    assert inspect_image(progressive, max_pixels=10**6).width == 53
    last = progressive.rindex(b"\xff\xda")
    bomb = progressive[:-2] + progressive[last:-2] * MAX_JPEG_SCANS + b"\xff\xd9"
    with pytest.raises(BadImage, match=f"over the limit of {MAX_JPEG_SCANS}") as error:
        inspect_image(bomb, max_pixels=10**6)
    assert error.value.code == "too_many_scans"


def test_jpeg_segment_flood_is_refused() -> None:
    jpeg = CASES["jpeg"]
    flood = jpeg[:2] + b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 1) + jpeg[2:]
    with pytest.raises(BadImage, match="header segments") as error:
        inspect_image(flood, max_pixels=10**6)
    assert error.value.code == "corrupt_header"
    few = jpeg[:2] + b"\xff\xfe\x00\x02" * 100 + jpeg[2:]
    assert inspect_image(few, max_pixels=10**6).height == 37


def test_30_mb_of_fill_bytes_is_checked_quickly() -> None:
    """The check runs on the event loop: a body of 0xFF fill bytes must not loop byte by byte in Python."""
    started = time.perf_counter()
    with pytest.raises(BadImage, match="truncated"):
        inspect_image(b"\xff\xd8" + b"\xff" * 30_000_000, max_pixels=10**6)
    assert time.perf_counter() - started < 0.5


def test_fill_bytes_before_a_marker_are_skipped() -> None:
    jpeg = CASES["jpeg"]
    padded = jpeg[:2] + b"\xff" * 1000 + jpeg[2:]
    assert inspect_image(padded, max_pixels=10**6).width == 53


def test_jpeg_without_frame_header() -> None:
    jpeg = CASES["jpeg"]
    start = jpeg.index(b"\xff\xc0")
    (length,) = struct.unpack_from(">H", jpeg, start + 2)
    with pytest.raises(BadImage, match="no frame header") as error:
        inspect_image(jpeg[:start] + jpeg[start + 2 + length:], max_pixels=10**6)
    assert error.value.code == "corrupt_header"


@pytest.mark.parametrize(("offset", "value", "problem"), [(25, 1, "colour type 1"), (24, 3, "bit depth 3"),
                                                          (11, 14, "IHDR length 14")])
def test_invalid_png_header(offset: int, value: int, problem: str) -> None:
    data = bytearray(CASES["png"])
    data[offset] = value
    with pytest.raises(BadImage, match=problem) as error:
        inspect_image(bytes(data), max_pixels=10**6)
    assert error.value.code == "corrupt_header"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(CASES)), edits=st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=8)),
                                                           max_size=6), cut=st.integers(0, 4000))
def test_mutated_headers_only_raise_api_errors(name: str, edits: list[tuple[int, bytes]], cut: int) -> None:
    """In-process complement to the atheris fuzzer: splice bytes into real files, only 4xx errors come out."""
    data = bytearray(CASES[name][:cut or None])
    for position, patch in edits:
        data[position:position + len(patch)] = patch
    try:
        info = inspect_image(bytes(data), max_pixels=10**6)
    except ApiError as error:
        assert 400 <= error.status_code < 500
    else:
        assert info.width > 0 and info.height > 0


def _png_with_chunks(before_idat: int, after_idat: int) -> bytes:
    """A 1x1 PNG with that many empty private chunks before and after its image data."""
    png = _one_pixel_png()
    idat = png.index(b"IDAT") - 4
    empty = struct.pack(">I4sI", 0, b"prIv", zlib.crc32(b"prIv"))
    return png[:idat] + empty * before_idat + png[idat:-12] + empty * after_idat + png[-12:]


def _one_pixel_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("before", "after"), [(2_000_000, 0), (0, 2_000_000)])
def test_a_flood_of_png_chunks_is_refused_from_the_headers(before: int, after: int) -> None:
    data = _png_with_chunks(before, after)
    started = time.perf_counter()
    with pytest.raises(BadImage, match="more than 1024 chunks") as error:
        inspect_image(data, max_pixels=10**6)
    assert error.value.code == "corrupt_header"
    assert time.perf_counter() - started < 0.5


def test_png_metadata_and_many_image_data_chunks_pass() -> None:
    png = _png_with_chunks(20, 20)
    assert inspect_image(png, max_pixels=10**6).width == 1
    with pytest.raises(BadImage) as error:
        inspect_image(png[:-12], max_pixels=10**6)  # no IEND chunk: cut off
    assert error.value.code == "truncated_image"
