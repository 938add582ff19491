"""Decoding: bytes -> upright RGB image, reading no more pixels than needed.

JPEG files are decoded at a reduced size when the caller needs fewer pixels
than the photo has: libjpeg scales by 1/2, 1/4 or 1/8 during the inverse DCT
(Pillow's ``draft``), which skips most of the decoding work.
"""

from __future__ import annotations

import io
import warnings
from PIL import Image, ImageOps, UnidentifiedImageError

from imaging.errors import ImageError

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP")
EXIF_ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}

# Pixel limits are enforced by our own check before decoding; this only stops
# Pillow from refusing images below that limit with a warning of its own.
Image.MAX_IMAGE_PIXELS = None


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageError("the image is empty: send the file's bytes as the request body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError("the data is not a readable JPEG, PNG or WebP image") from exc


def upright_size(image: Image.Image) -> tuple[int, int]:
    """Full-resolution (width, height) after applying EXIF orientation."""
    width, height = image.size
    if image.getexif().get(EXIF_ORIENTATION_TAG, 1) in TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: keep the 8 most significant bits.
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
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
        try:  # a PNG's EXIF may follow its pixels: reading it can decode, and fail
            self.full_size: tuple[int, int] = upright_size(self._image)  # (width, height), upright
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"the image data is corrupt or truncated ({exc}); send the complete file") from exc

    def decode(self, min_size: tuple[int, int] | None = None) -> Image.Image:
        """Decode to an upright RGB image, once.

        ``min_size`` (width, height, upright) is the smallest size the caller
        needs; JPEGs are decoded at the smallest DCT scale that still covers it.
        ``None`` decodes at full resolution.
        """
        image = self._image
        if min_size is not None and self.format == "JPEG":
            need_w, need_h = min_size
            if self.full_size != image.size:  # stored sideways: the request is in upright terms
                need_w, need_h = need_h, need_w
            image.draft("RGB", (need_w, need_h))
        try:
            image.load()
            return _to_rgb(ImageOps.exif_transpose(image))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageError(f"the image data is corrupt or truncated ({exc}); send the complete file") from exc
