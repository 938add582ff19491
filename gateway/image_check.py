"""Header-only image checks: format, dimensions and completeness, without decoding.

Reads the container structure of JPEG, PNG and WebP files (markers, chunks)
to find the pixel size and to detect truncation cheaply; the pixels are
decoded only inside Triton.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.errors import BadImage, PayloadTooLarge, UnsupportedMediaType

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg", "png" or "webp"
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def sniff_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _truncated(kind: str) -> BadImage:
    return BadImage(f"the {kind} file is truncated or corrupt; send the complete file", code="truncated_image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    position, size = 2, None
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise _truncated("JPEG")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2:
            raise _truncated("JPEG")
        if marker in JPEG_SOF_MARKERS:
            if position + 9 > len(data):
                raise _truncated("JPEG")
            height, width = struct.unpack_from(">HH", data, position + 5)
            size = (width, height)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise _truncated("JPEG")
            if data.rfind(b"\xff\xd9", position + 2 + length) < 0:
                raise _truncated("JPEG")
            return size
        position += 2 + length
    raise _truncated("JPEG")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _truncated("PNG")
    width, height = struct.unpack_from(">II", data, 16)
    if data.rfind(b"IEND", 33) < 0:
        raise _truncated("PNG")
    return width, height


def _webp_size(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data) or len(data) < 30:
        raise _truncated("WebP")
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _truncated("WebP")


def inspect_image(data: bytes, max_pixels: int, declared_type: str | None = None) -> ImageInfo:
    """Check ``data`` from its headers only; raise a 4xx ``ApiError`` naming the problem."""
    if not data:
        raise BadImage("the request body is empty: send the photo's bytes", code="empty_body")
    kind = sniff_format(data)
    if kind is None:
        raise UnsupportedMediaType(
            "the body is not a JPEG, PNG or WebP image; convert the photo to one of these formats",
            code="unsupported_format",
        )
    if declared_type is not None and declared_type != MEDIA_TYPES[kind]:
        raise UnsupportedMediaType(
            f"Content-Type says {declared_type} but the data is {MEDIA_TYPES[kind]}; send the matching type",
            code="content_type_mismatch",
        )
    width, height = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}[kind](data)
    if width == 0 or height == 0:
        raise BadImage(f"the {kind.upper()} header declares an empty {width}x{height} image", code="corrupt_header")
    info = ImageInfo(kind, width, height)
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image has {width}x{height} = {info.megapixels:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.1f}; downscale it before sending",
            code="too_many_pixels",
        )
    return info
