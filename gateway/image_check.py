"""Header-only image checks: format, dimensions and completeness, without decoding.

Reads the container structure of JPEG, PNG and WebP files (markers, chunks)
to find the pixel size and to detect truncation cheaply; the pixels are
decoded only inside Triton. Runs on the gateway's event loop, so every step
is bounded: at most ``MAX_JPEG_SEGMENTS`` Python-level iterations, the rest
is done by C-speed ``bytes`` searches.

Formats: JPEG, PNG (APNG: its default image) and WebP (animated: the first
frame) are read. Everything else is refused with 415, naming the format when
it is recognised (GIF, BMP, TIFF, HEIC/HEIF, AVIF, SVG, ...) so the caller
knows what to convert from.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from gateway.errors import BadImage, PayloadTooLarge, UnsupportedMediaType

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
SUPPORTED = "JPEG, PNG or WebP"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"
# Real photos have 5-40 segments before the first scan (APPn, DQT, DHT, SOF, ...);
# the limit bounds the Python loop below on a hostile 30 MB body of tiny segments.
MAX_JPEG_SEGMENTS = 1024
# A progressive JPEG normally has about 10 scans. Each scan is a pass over every
# block of the image, so thousands of near-empty scans make a small file that
# costs minutes to decode (a "scan bomb").
MAX_JPEG_SCANS = 100
FILL_BYTES = re.compile(rb"\xff+")
# Encoders split the image data into chunks of 8-64 KiB (about 4,000 for a 30 MB file); metadata,
# palette and animation control take a few dozen chunks (an animated PNG one per frame).
MAX_PNG_CHUNKS = 100_000
PNG_IMAGE_DATA_CHUNKS = frozenset({b"IDAT", b"fdAT"})
MAX_PNG_OTHER_CHUNKS = 1024
MAX_PNG_OTHER_BYTES = 8 * 1024 * 1024
# PNG colour type -> allowed bit depths (PNG specification, table 11.1).
PNG_BIT_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
HEIF_BRANDS = {
    b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"hevx": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
    b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF",
}
OTHER_SIGNATURES = (  # leading bytes of formats we recognise but do not read
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"%PDF-", "PDF"), (b"8BPS", "Photoshop (PSD)"), (b"\x00\x00\x01\x00", "ICO"), (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"), (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"qoif", "QOI"), (b"PK\x03\x04", "ZIP archive"),
)
BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}  # "BM" alone is too common to name a BMP
TEXT_SIGNATURES = ((b"<svg", "SVG"), (b"<?xml", "XML"), (b"<!doctype html", "HTML"), (b"<html", "HTML"))


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg", "png" or "webp"
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def sniff_format(data: bytes) -> str | None:
    """"jpeg", "png" or "webp" from the leading bytes; ``None`` for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def name_other_format(data: bytes) -> str | None:
    """The name of a format we do not read, when the leading bytes show it (for the error message)."""
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return HEIF_BRANDS[data[8:12]]
    for signature, name in OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    if data.startswith(b"BM") and int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES:
        return "BMP"
    head = data[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for signature, name in TEXT_SIGNATURES:
        if head.startswith(signature):
            return "SVG" if name == "XML" and b"<svg" in head else name
    return None


def _unsupported(data: bytes) -> UnsupportedMediaType:
    other = name_other_format(data)
    what = f"{other} data" if other else "not an image this service can read"
    return UnsupportedMediaType(
        f"the body is {what}, not a {SUPPORTED} image; convert it to one of these formats and send it again",
        code="unsupported_format",
    )


def _truncated(kind: str) -> BadImage:
    return BadImage(f"the {kind} file is truncated or corrupt; send the complete file", code="truncated_image")


def _corrupt(message: str) -> BadImage:
    return BadImage(message, code="corrupt_header")


def _jpeg_size(data: bytes) -> tuple[int, int]:  # noqa: C901 (one branch per JPEG marker kind)
    """Walk the segments up to the first scan; size from the SOF, completeness from EOI and the scan count."""
    position, size = 2, None
    for _ in range(MAX_JPEG_SEGMENTS):
        if position + 4 > len(data):
            break
        if data[position] != 0xFF:
            raise _truncated("JPEG")
        marker = data[position + 1]
        if marker == 0xFF:  # fill bytes: skip the whole run at C speed
            position = FILL_BYTES.match(data, position).end() - 1
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
        elif marker == JPEG_SOS[1]:  # start of scan: entropy-coded data follows
            if size is None:
                raise _corrupt("the JPEG has no frame header (SOF) before its image data; send a standard JPEG file")
            scan_data = position + 2 + length
            if data.rfind(JPEG_EOI, scan_data) < 0:
                raise _truncated("JPEG")
            # 0xFF is byte-stuffed in entropy-coded data, so FF DA only occurs as a scan marker.
            scans = 1 + data.count(JPEG_SOS, scan_data)
            if scans > MAX_JPEG_SCANS:
                raise BadImage(f"the JPEG has {scans} scans, over the limit of {MAX_JPEG_SCANS} (photos have about "
                               "10); re-save it as a baseline or standard progressive JPEG", code="too_many_scans")
            return size
        position += 2 + length
    else:
        raise _corrupt(f"the JPEG has more than {MAX_JPEG_SEGMENTS} header segments before its image data; "
                       "re-save it with a standard encoder")
    raise _truncated("JPEG")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _truncated("PNG")
    (length,) = struct.unpack_from(">I", data, 8)
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    if length != 13 or depth not in PNG_BIT_DEPTHS.get(colour, ()):
        raise _corrupt(f"the PNG header is invalid (IHDR length {length}, colour type {colour}, bit depth {depth}); "
                       "re-save the image with a standard encoder")
    _walk_png_chunks(data)
    return width, height


def _walk_png_chunks(data: bytes) -> None:
    """Every chunk header up to IEND: image data may come in any number of chunks (up to
    ``MAX_PNG_CHUNKS``), the rest is bounded in count and bytes. A 1x1 PNG of millions of empty
    private chunks otherwise passes and costs the decoder seconds and hundreds of MB."""
    offset, other_chunks, other_bytes = 8, 0, 0
    for _ in range(MAX_PNG_CHUNKS):
        if offset + 12 > len(data):
            raise _truncated("PNG")
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind == b"IEND":
            return
        if kind not in PNG_IMAGE_DATA_CHUNKS:
            other_chunks += 1
            other_bytes += length
            if other_chunks > MAX_PNG_OTHER_CHUNKS or other_bytes > MAX_PNG_OTHER_BYTES:
                raise _corrupt(f"the PNG has more than {MAX_PNG_OTHER_CHUNKS} chunks or "
                               f"{MAX_PNG_OTHER_BYTES // 2**20} MiB besides its image data; re-save it with a "
                               "standard encoder (or strip its metadata)")
        offset += 12 + length
    raise _corrupt(f"the PNG has more than {MAX_PNG_CHUNKS} chunks; re-save it with a standard encoder")


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
    if chunk == b"VP8X":  # extended: canvas size (animated files are read as their first frame)
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _truncated("WebP")


def inspect_image(data: bytes, max_pixels: int, declared_type: str | None = None) -> ImageInfo:
    """Check ``data`` from its headers only; raise a 4xx ``ApiError`` naming the problem.

    Never raises anything but ``ApiError`` subclasses, whatever the bytes
    (fuzzed by ``tests/fuzz/fuzz_image_check.py``).
    """
    if not data:
        raise BadImage("the request body is empty: send the photo's bytes", code="empty_body")
    kind = sniff_format(data)
    if kind is None:
        raise _unsupported(data)
    if declared_type is not None and declared_type != MEDIA_TYPES[kind]:
        raise UnsupportedMediaType(
            f"Content-Type says {declared_type} but the data is {MEDIA_TYPES[kind]}; send the matching type",
            code="content_type_mismatch",
        )
    width, height = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}[kind](data)
    if width == 0 or height == 0:
        raise _corrupt(f"the {kind.upper()} header declares an empty {width}x{height} image")
    info = ImageInfo(kind, width, height)
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image has {width}x{height} = {info.megapixels:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.1f}; downscale it before sending",
            code="too_many_pixels",
        )
    return info
