"""Decoding: bytes -> upright RGB image, reading no more pixels than needed.

JPEG files are decoded at a reduced size when the caller needs fewer pixels
than the photo has: libjpeg scales by 1/2, 1/4 or 1/8 during the inverse DCT
(Pillow's ``draft``), which skips most of the decoding work.

Hostile input: any failure of the decoder on the caller's bytes is an
``ImageError`` (a 4xx for the caller), never an internal error; only
``MemoryError`` (our capacity, not their fault) passes through. Error messages
carry the decoder's reason, cut short and printable only, never file content.
Metadata is read only for the EXIF orientation, and a broken EXIF block counts
as "no orientation" (as in browsers) rather than failing a viewable photo.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from imaging.errors import ImageError

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP")
DRAFT_FORMATS = ("JPEG", "MPO")  # MPO: multi-picture JPEG (many phone photos), read as its first image
EXIF_ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
# EXIF orientation -> the transposition that makes the stored pixels upright.
ORIENTATION_FIXES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
REASON_MAX_CHARS = 120

# Pixel limits are enforced by our own check before decoding; this only stops
# Pillow from refusing images below that limit with a warning of its own.
Image.MAX_IMAGE_PIXELS = None


def _reason(exc: BaseException) -> str:
    """The decoder's reason, safe to return and log: printable ASCII, short."""
    if isinstance(exc, UnidentifiedImageError):  # its text names a Python object and its address
        return "no decoder recognised the header"
    text = "".join(c if " " <= c <= "~" else "?" for c in str(exc))[:REASON_MAX_CHARS]
    return text or type(exc).__name__


def _corrupt(exc: BaseException) -> ImageError:
    return ImageError(f"the image data is corrupt or truncated ({_reason(exc)}); send the complete file")


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageError("the image is empty: send the file's bytes as the request body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns per malformed tag: noise in the server log
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except MemoryError:
        raise
    except Exception as exc:  # whatever Pillow raises on hostile bytes is the bytes' fault
        raise ImageError(f"the data is not a readable JPEG, PNG or WebP image ({_reason(exc)})") from exc


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation 1-8; 1 when absent, invalid or unreadable.

    Reading a PNG's EXIF may decode the whole file (the chunk can follow the
    pixels); a failure there is corrupt pixel data, and raised as such.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns per malformed tag: noise in the server log
        try:
            exif = image.getexif()
        except MemoryError:
            raise
        except Exception as exc:
            if image.format == "PNG":  # getexif() loaded the pixels to reach trailing chunks
                raise _corrupt(exc) from exc
            return 1
        try:
            value = exif.get(EXIF_ORIENTATION_TAG, 1)
        except Exception:  # noqa: BLE001 - a malformed IFD is the same as no orientation
            return 1
    return value if isinstance(value, int) and value in ORIENTATION_FIXES else 1


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: keep the 8 most significant bits.
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # The input's alpha is dropped: the models read colour only (documented in docs/robustness.md).
        image = image.convert("RGBA").convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


class Photo:
    """An encoded photo whose header has been read and checked; pixels not decoded yet."""

    def __init__(self, data: bytes, max_pixels: int) -> None:
        self._image = _open(data)
        width, height = self._image.size
        if width * height > max_pixels:
            raise ImageError(
                f"the image has {width}x{height} = {width * height / 1e6:.1f} megapixels, over the limit of "
                f"{max_pixels / 1e6:.1f}; downscale it before sending"
            )
        self.format: str = self._image.format or ""
        self.orientation = exif_orientation(self._image)
        transposed = self.orientation in TRANSPOSING_ORIENTATIONS
        self.full_size: tuple[int, int] = (height, width) if transposed else (width, height)  # upright

    def decode(self, min_size: tuple[int, int] | None = None) -> Image.Image:
        """Decode to an upright RGB image, once.

        ``min_size`` (width, height, upright) is the smallest size the caller
        needs; JPEGs are decoded at the smallest DCT scale that still covers it.
        ``None`` decodes at full resolution. Animated files give their first frame.
        """
        image = self._image
        try:
            if min_size is not None and self.format in DRAFT_FORMATS:
                need_w, need_h = min_size
                if self.full_size != image.size:  # stored sideways: the request is in upright terms
                    need_w, need_h = need_h, need_w
                image.draft("RGB", (need_w, need_h))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image.load()
            rgb = _to_rgb(image)
        except MemoryError:
            raise
        except Exception as exc:  # whatever Pillow raises on hostile bytes is the bytes' fault
            raise _corrupt(exc) from exc
        fix = ORIENTATION_FIXES.get(self.orientation)
        return rgb.transpose(fix) if fix is not None else rgb
