"""Encoders for every image result: PNG (lossless), WebP (lossy, or lossless at quality 100) and JPEG (opaque only).

Pixels are uint8 (H, W) grey, uint16 (H, W) grey (16-bit depth), uint8 (H, W, 3) RGB or (H, W, 4) RGBA.
No output carries metadata: no EXIF, XMP, ICC profile or text; a PNG is IHDR, IDAT..., IEND (anything
else an encoder adds, such as fpng's private ``fdEC`` chunk, is dropped), a JPEG has only its JFIF APP0
segment, a WebP only VP8/VP8L image data (and VP8X/ALPH for alpha).

PNG, chosen by measurement on real 12 MP outputs (an RGBA cutout, ``imaging.matte.layers`` on the
astronaut photo upscaled to 4000x3000; its uint8 matte; a uint16 depth map bilinearly upsampled from
224x224): median ms of 5 (the range over 2-3 runs on the shared 2-core development machine) and MB.
Every candidate is pixel-exact, as PNG must be; all at zlib level 1.

==============================  =====================  ==================  ===================
encoder                         RGBA cutout            uint8 matte         uint16 depth
==============================  =====================  ==================  ===================
Pillow, Z_RLE (the old choice)  1130-1630 ms  5.85 MB  230-345 ms 0.39 MB  690-800 ms  8.35 MB
OpenCV, adaptive filters, RLE   1220-1330 ms  5.87 MB  200-240 ms 0.39 MB  710-730 ms  8.39 MB
OpenCV, adaptive filters, zlib  1350-1470 ms  7.22 MB  220-240 ms 0.59 MB  610-670 ms  5.78 MB
OpenCV, Sub filter, RLE         600-1000 ms   8.03 MB  66-116 ms  0.48 MB  430-650 ms  9.55 MB
OpenCV, Sub filter, zlib        1030 ms       8.58 MB  74 ms      0.67 MB  360-530 ms  4.95 MB
fpng 0.1.0 (RGB and RGBA only)  170-250 ms    7.59 MB  -                   -
==============================  =====================  ==================  ===================

(An opaque RGB composite: fpng 200 ms 6.24 MB, OpenCV Sub filter RLE 500 ms 6.46 MB.) So
``compress_level`` 1, the served value, means the fastest: fpng for RGB and RGBA, OpenCV's Sub filter with Z_RLE for
grey and with zlib's default strategy for 16-bit (the smallest there too). Levels 0 and 2-9 are zlib's
levels with libpng's adaptive filters (OpenCV): smaller, much slower (level 6: 5 s for the cutout). The
Sub filter is what OpenCV sets when it is given no compression level ("tuned for speed"); 4.11 has no
other way to ask for it.

WebP (Pillow, libwebp): ``quality`` 1-99 is lossy with an exact alpha (``alpha_quality`` 100); 100 is
lossless, RGB kept even under alpha 0 (``exact``). libwebp's ``method`` (0 fastest - 6 smallest) is
``webp_method(compress_level)``, 0 at the served level 1: at 12 MP and quality 90 method 4, libwebp's
default, takes 2.5-3.5 s, method 0 0.6-0.8 s for RGB (3% larger) and 1.2-2.5 s for RGBA.
Grey is stored as RGB (WebP has no grey mode). At most 16383 px a side.

JPEG (libjpeg-turbo, 4:2:0 chroma, baseline): RGB or grey. RGBA is refused, even if every alpha is 255,
so that whether a request succeeds does not depend on the picture: ask for PNG or WebP. ``compress_level``
is not used.

16-bit to WebP or JPEG: the 8-bit value is ``round(v / 257)`` (``(v + 128) // 257``: 0 -> 0, 65535 ->
255, the nearest of the 256 levels), so the 8-bit depth reads as the 16-bit one scaled, as a browser shows
a 16-bit PNG.
"""

from __future__ import annotations

import io
import struct

import cv2
import fpng  # the fast PNG writer for RGB(A): 3-6x OpenCV's fastest at 12 MP (module docstring)
import numpy as np
from PIL import Image

from imaging.errors import ImageError

FORMATS = ("png", "webp", "jpeg")
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
FAST_LEVEL = 1  # compress_level for the fastest pixel-exact PNG
WEBP_MAX_SIDE = 16383
JPEG_MAX_SIDE = 65500
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = (b"IHDR", b"IDAT", b"IEND")


def _check(pixels: np.ndarray, fmt: str, quality: int, compress_level: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    for name, value, low, high in (("quality", quality, 1, 100), ("compress_level", compress_level, 0, 9)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer {low}-{high}, got {value!r}")
    if not isinstance(pixels, np.ndarray):
        raise ValueError(f"pixels must be a numpy array, got {type(pixels).__name__}")
    grey = pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16)
    colour = pixels.ndim == 3 and pixels.dtype == np.uint8 and pixels.shape[2] in (3, 4)
    if not (grey or colour) or 0 in pixels.shape:
        raise ValueError("pixels must be uint8 (H, W), uint16 (H, W), uint8 (H, W, 3) or uint8 (H, W, 4), got "
                         f"{pixels.dtype} {pixels.shape}")


def _metadata_free(data: bytes) -> bytes:
    """The PNG with only its IHDR, IDAT and IEND chunks (unchanged if it has no others)."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("the encoder did not write a PNG")
    chunks, position, other = [], len(_PNG_SIGNATURE), False
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 12 + length
        kept = data[position + 4:position + 8] in _PNG_KEPT
        other |= not kept
        if kept:
            chunks.append((position, end))
        position = end
    if not other:
        return data
    return _PNG_SIGNATURE + b"".join(data[start:end] for start, end in chunks)


def _opencv_order(pixels: np.ndarray) -> np.ndarray:
    """RGB(A) -> OpenCV's BGR(A); grey unchanged."""
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if pixels.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)


def _png(pixels: np.ndarray, compress_level: int) -> bytes:
    if compress_level != FAST_LEVEL:
        params = [cv2.IMWRITE_PNG_COMPRESSION, compress_level]
    elif pixels.ndim == 3:
        return _metadata_free(fpng.from_ndarray(np.ascontiguousarray(pixels)))
    elif pixels.dtype == np.uint16:
        params = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_DEFAULT]  # no level: Sub filter, zlib level 1
    else:
        params = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buffer = cv2.imencode(".png", _opencv_order(pixels), params)
    if not ok:  # pragma: no cover - OpenCV returns False only for unsupported arrays, which _check refuses
        raise ValueError(f"OpenCV could not encode {pixels.dtype} {pixels.shape} as PNG")
    return _metadata_free(buffer.tobytes())


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as ``round(v / 257)``; uint8 unchanged."""
    if pixels.dtype == np.uint8:
        return pixels
    return cv2.convertScaleAbs(pixels, alpha=1 / 257).reshape(pixels.shape)


def webp_method(compress_level: int) -> int:
    """libwebp's method (0 fastest - 6 smallest) for a compress_level: 1 (served) -> 0, 5 -> 4 (libwebp's default)."""
    return min(max(compress_level - FAST_LEVEL, 0), 6)


def _webp(pixels: np.ndarray, quality: int, compress_level: int) -> bytes:
    if max(pixels.shape[:2]) > WEBP_MAX_SIDE:
        raise ImageError(f"WebP is at most {WEBP_MAX_SIDE} px a side and this result is "
                         f"{pixels.shape[1]}x{pixels.shape[0]}: ask for format=png")
    image = Image.fromarray(np.ascontiguousarray(to_uint8(pixels)))
    image.info = {}
    buffer = io.BytesIO()
    method = webp_method(compress_level)
    if quality == 100:
        image.save(buffer, format="WEBP", lossless=True, quality=round(100 * method / 6), method=method, exact=True)
    else:
        image.save(buffer, format="WEBP", quality=quality, method=method, alpha_quality=100)
    return buffer.getvalue()


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        raise ImageError("JPEG has no transparency and this result is RGBA (a cutout or a translucent background): "
                         "ask for format=png (lossless) or format=webp (smaller), or for an opaque background")
    if max(pixels.shape[:2]) > JPEG_MAX_SIDE:
        raise ImageError(f"JPEG is at most {JPEG_MAX_SIDE} px a side and this result is "
                         f"{pixels.shape[1]}x{pixels.shape[0]}: ask for format=png")
    ok, buffer = cv2.imencode(".jpg", _opencv_order(to_uint8(pixels)), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - as for PNG
        raise ValueError(f"OpenCV could not encode {pixels.dtype} {pixels.shape} as JPEG")
    return buffer.tobytes()


def encode(pixels: np.ndarray, fmt: str, quality: int, compress_level: int) -> bytes:
    """``pixels`` as a ``fmt`` file ("png", "webp" or "jpeg"), without metadata (module docstring).

    ``quality`` 1-100 is WebP's and JPEG's (100: lossless WebP); ``compress_level`` 0-9 is PNG's zlib level
    (1: the fastest exact encoder) and WebP's effort. Both are checked whatever the format. Raises
    ValueError for arguments no request should produce, and ImageError (with what to ask for instead) for
    a result the format cannot hold: RGBA as JPEG, a side over the format's limit.
    """
    _check(pixels, fmt, quality, compress_level)
    if fmt == "png":
        return _png(pixels, compress_level)
    if fmt == "webp":
        return _webp(pixels, quality, compress_level)
    return _jpeg(pixels, quality)
