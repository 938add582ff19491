"""The decoder and encoder on hostile input, in process (no Triton): what the corpus relies on.

Whatever Pillow raises on the caller's bytes must become an ``ImageError``
(a 4xx), never an internal error (a 5xx); broken EXIF must not fail a
viewable photo; outputs must carry pixels only.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from imaging import decode
from imaging.decode import Photo
from imaging.encode import encode
from imaging.errors import ImageError
from tests.hostile import images as img
from tests.hostile.cases import PNG_ALLOWED_CHUNKS, png_chunks

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_upright_photo(orientation: int) -> None:
    stored = img.stored_for_orientation(img.photo(), orientation)
    exif = Image.Exif()
    exif[img.ORIENTATION_TAG] = orientation
    photo = Photo(img.encode(stored, "PNG", exif=exif), MAX_PIXELS)  # lossless: compare exactly
    assert photo.full_size == (192, 256)
    np.testing.assert_array_equal(np.asarray(photo.decode()), img.photo())


@pytest.mark.parametrize("tiff", [img.exif_ifd_loop(), img.exif_out_of_bounds(), bytes(range(256)) * 4, b"II*\x00"],
                         ids=["ifd_loop", "out_of_bounds", "garbage", "header_only"])
def test_broken_exif_is_ignored_or_read_but_never_fails(tiff: bytes) -> None:
    photo = Photo(img.jpeg_with_raw_exif(tiff), MAX_PIXELS)
    assert photo.orientation in range(1, 9)
    assert photo.decode().size == photo.full_size


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_invalid_orientation_values_mean_upright(value: int) -> None:
    exif = Image.Exif()
    exif[img.ORIENTATION_TAG] = value
    photo = Photo(img.encode(img.photo(), "JPEG", exif=exif), MAX_PIXELS)
    assert photo.orientation == 1 and photo.full_size == (192, 256)


@pytest.mark.parametrize("error", [struct.error("unpack requires a buffer"), KeyError(7), IndexError("list index"),
                                   ZeroDivisionError("division by zero"), RuntimeError("decoder bug")])
def test_any_decoder_failure_is_an_image_error(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    photo = Photo(img.png(), MAX_PIXELS)

    def fail(*_: object) -> None:
        raise error

    monkeypatch.setattr(photo._image, "load", fail)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        photo.decode()
    monkeypatch.setattr(decode.Image, "open", fail)
    with pytest.raises(ImageError, match="not a readable JPEG, PNG or WebP"):
        Photo(img.png(), MAX_PIXELS)


def test_memory_errors_are_not_blamed_on_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = Photo(img.png(), MAX_PIXELS)

    def exhausted(*_: object) -> None:
        raise MemoryError

    monkeypatch.setattr(photo._image, "load", exhausted)
    with pytest.raises(MemoryError):
        photo.decode()


def test_error_messages_hold_no_object_addresses_or_raw_bytes() -> None:
    with pytest.raises(ImageError) as unidentified:
        Photo(img.png_bad_ihdr_crc(), MAX_PIXELS)
    assert "0x" not in str(unidentified.value) and "object at" not in str(unidentified.value)
    reason = decode._reason(ValueError("chunk b'\x00\xff\x10' " + "x" * 500))
    assert all(" " <= c <= "~" for c in reason) and len(reason) <= decode.REASON_MAX_CHARS


def test_multi_picture_jpeg_is_decoded_at_reduced_size() -> None:
    frames = [Image.fromarray(np.tile(img.photo(), (8, 8, 1)))] * 2  # 1536 x 2048
    photo = Photo(img.encode(frames[0], "MPO", save_all=True, append_images=frames[1:]), MAX_PIXELS)
    assert photo.format == "MPO"
    assert photo.decode(min_size=(192, 256)).size == (192, 256)  # 1/8 DCT scale, not 1536 x 2048


def test_png_output_carries_pixels_only() -> None:
    """The served encoder writes pixels only, whatever the photo carried (it is handed arrays, never images)."""
    for pixels in (img.photo(), np.dstack([img.photo(), np.full(img.photo().shape[:2], 200, np.uint8)])):
        data = encode(pixels, "png", 90, 1)
        assert set(png_chunks(data)) == PNG_ALLOWED_CHUNKS
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
