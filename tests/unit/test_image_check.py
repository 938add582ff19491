import io

import numpy as np
import pytest
from PIL import Image

from gateway.errors import BadImage, PayloadTooLarge, UnsupportedMediaType
from gateway.image_check import inspect_image

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 255, (37, 53, 3), dtype=np.uint8)


def encode(fmt: str, **options) -> bytes:
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


@pytest.mark.parametrize("data", [b"hello world", b"GIF89a" + b"\x00" * 20, b"<svg xmlns='x'/>", b"II*\x00" + b"\x00" * 20])
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
