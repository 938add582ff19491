"""The hostile-input corpus: one row per case, with the status and error code it must get.

Valid-but-unusual files also carry a ``check`` of the output's content
against the plain photo (size after EXIF orientation, matte where the person
is, colour passed through), so "2xx" means "right", not just "no error".
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import httpx
import numpy as np
from PIL import Image

from tests.hostile import images as img

PNG_ALLOWED_CHUNKS = {b"IHDR", b"IDAT", b"IEND"}
PHOTO_SIZE = (192, 256)  # (width, height) of images.photo(), upright


@dataclass(frozen=True)
class Reference:
    """What the plain photo gives: the matte of ``/v1/mask?model=fast`` on its PNG."""

    mask: np.ndarray  # bool, H x W


Check = Callable[[np.ndarray, Reference], None]


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    what: str
    body: Callable[[], bytes]
    status: int
    code: str | None = None  # the JSON error code of a 4xx
    path: str = "/v1/mask"
    params: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/octet-stream"  # None: no Content-Type header
    method: str = "POST"
    authenticated: bool = True
    check: Check | None = None
    heavy: bool = False  # left out of the memory rounds: MBs of input or pixels, allocator warm-up by design
    max_s: float = 10.0  # the answer must come within this

    def build(self, client: httpx.Client) -> httpx.Request:
        """The request, body generated (so that timing ``client.send`` measures the server alone)."""
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        if not self.authenticated:
            headers["Authorization"] = ""
        content = self.body() if self.method in ("POST", "PUT", "PATCH") else None
        return client.build_request(self.method, self.path, params=self.params, content=content, headers=headers)

    def request(self, client: httpx.Client) -> httpx.Response:
        return client.send(self.build(client))


# ------------------------------------------------------------------- checks

def png_chunks(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, in order (the output is parsed, not trusted)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    kinds, position = [], 8
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kinds.append(data[position + 4:position + 8])
        position += 12 + length
    return kinds


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _matte(output: np.ndarray) -> np.ndarray:
    return (output[..., 3] if output.ndim == 3 else output) >= 128


def shape(width: int, height: int, channels: int | None = None) -> Check:
    def check(output: np.ndarray, _: Reference) -> None:
        expected = (height, width) if channels is None else (height, width, channels)
        assert output.shape == expected, f"output {output.shape}, expected {expected}"
    return check


def matte_like_photo(min_iou: float) -> Check:
    """The matte covers the person as it does for the plain photo: wrong orientation or colours fail this."""
    def check(output: np.ndarray, reference: Reference) -> None:
        assert output.shape[:2] == reference.mask.shape, f"output {output.shape}, photo {reference.mask.shape}"
        overlap = iou(_matte(output), reference.mask)
        assert overlap >= min_iou, f"matte IoU with the plain photo's {overlap:.3f} < {min_iou}"
    return check


def colours(expected: Callable[[], np.ndarray], max_mean_error: float) -> Check:
    """Cutout colour where the matte is opaque equals ``expected`` (upright): pixels passed through, right way
    up. (In the soft edge the cutout holds estimated foreground colours, not the photo's.)"""
    def check(output: np.ndarray, _: Reference) -> None:
        want = expected()
        want = np.dstack([want] * 3) if want.ndim == 2 else want
        assert output.shape[:2] == want.shape[:2], f"output {output.shape}, expected {want.shape}"
        opaque = output[..., 3] == 255
        assert opaque.mean() > 0.05, "the cutout has no opaque pixels"
        error = np.abs(output[..., :3][opaque].astype(int) - want[opaque].astype(int)).mean()
        assert error <= max_mean_error, f"mean colour error under the matte {error:.1f} > {max_mean_error}"
    return check


def all_of(*checks: Check) -> Check:
    def check(output: np.ndarray, reference: Reference) -> None:
        for one in checks:
            one(output, reference)
    return check


def depth16(width: int, height: int) -> Check:
    def check(output: np.ndarray, _: Reference) -> None:
        assert output.shape == (height, width) and output.dtype == np.uint16, (output.shape, output.dtype)
        assert output.max() > output.min(), "the depth map is flat"
    return check


W, H = PHOTO_SIZE
PHOTO_CUTOUT = all_of(shape(W, H, 4), matte_like_photo(0.9), colours(img.photo, 0))  # lossless input
JPEG_CUTOUT = all_of(shape(W, H, 4), matte_like_photo(0.9), colours(img.photo, 6))  # JPEG quality 95
CUTOUT = {"path": "/v1/cutout", "params": {"model": "fast"}}


@cache
def palette() -> tuple[bytes, np.ndarray]:
    return img.png_palette_transparent()


def _multipart_type(boundary: str = "hostileboundary") -> str:
    return f"multipart/form-data; boundary={boundary}"


# -------------------------------------------------------------------- cases

CASES: list[Case] = [
    # Truncated and corrupt files: refused from the headers, or by the decoder, never a 5xx.
    Case("jpeg_truncated_half", "truncated/corrupt", "JPEG cut in half", lambda: img.jpeg()[:len(img.jpeg()) // 2],
         422, "truncated_image"),
    Case("jpeg_truncated_no_eoi", "truncated/corrupt", "JPEG missing its last 2 bytes (EOI)", lambda: img.jpeg()[:-2],
         422, "truncated_image"),
    Case("jpeg_headers_only", "truncated/corrupt", "JPEG cut right after its headers",
         lambda: img.jpeg()[:img.jpeg().index(b"\xff\xda") + 14], 422, "truncated_image"),
    Case("jpeg_no_sof", "truncated/corrupt", "JPEG without its frame header (SOF)", lambda: img.jpeg_without(0xC0),
         422, "corrupt_header"),
    Case("jpeg_zero_width", "truncated/corrupt", "JPEG SOF declaring width 0", lambda: img.jpeg_with_sof(width=0),
         422, "corrupt_header"),
    Case("jpeg_bad_huffman", "truncated/corrupt", "JPEG with a bogus Huffman table", img.jpeg_bad_huffman,
         422, "undecodable_image"),
    Case("jpeg_12bit", "truncated/corrupt", "JPEG SOF claiming 12-bit samples", lambda: img.jpeg_with_sof(precision=12),
         422, "undecodable_image"),
    Case("jpeg_corrupt_scan", "truncated/corrupt", "JPEG with 400 garbage bytes inside its scan (structure intact)",
         img.jpeg_corrupt_scan, 200, check=all_of(shape(W, H, 4), matte_like_photo(0.6)), **CUTOUT),
    Case("png_truncated_half", "truncated/corrupt", "PNG cut in half", lambda: img.png()[:len(img.png()) // 2],
         422, "truncated_image"),
    Case("png_corrupt_idat", "truncated/corrupt", "PNG with zeroed bytes inside IDAT", img.png_corrupt_idat,
         422, "undecodable_image"),
    Case("png_bad_ihdr_crc", "truncated/corrupt", "PNG whose IHDR CRC is wrong", img.png_bad_ihdr_crc,
         422, "undecodable_image"),
    Case("png_bad_colour_type", "truncated/corrupt", "PNG IHDR with colour type 1 (undefined)",
         lambda: img.png_colour_type(1), 422, "corrupt_header"),
    Case("png_no_idat", "truncated/corrupt", "PNG with IHDR and IEND only", img.png_without_idat,
         422, "undecodable_image"),
    Case("webp_truncated", "truncated/corrupt", "WebP cut in half", lambda: img.webp()[:len(img.webp()) // 2],
         422, "truncated_image"),
    Case("webp_riff_size_lies", "truncated/corrupt", "WebP whose RIFF size exceeds the file",
         lambda: img.webp_riff_size(10**6), 422, "truncated_image"),
    Case("webp_bad_frame_tag", "truncated/corrupt", "WebP VP8 frame tag claiming a huge partition", img.webp_corrupt,
         422, "undecodable_image"),
    Case("empty_body", "truncated/corrupt", "empty body", lambda: b"", 422, "empty_body", content_type="image/jpeg"),

    # Bombs: a little file that would cost a lot to decode.
    Case("png_bomb_50000", "bomb", "74-byte PNG declaring 50000x50000", img.png_bomb, 413, "too_many_pixels"),
    Case("jpeg_bomb_65500", "bomb", "JPEG SOF declaring 65500x65500", lambda: img.jpeg_with_sof(65500, 65500),
         413, "too_many_pixels"),
    Case("webp_bomb_16384", "bomb", "WebP VP8X canvas 16384x16384 around a small picture", img.webp_bomb,
         413, "too_many_pixels"),
    Case("jpeg_scan_bomb", "bomb", "36 MP progressive JPEG of 290 KB with 1010 scans", img.jpeg_scan_bomb,
         422, "too_many_scans"),
    Case("jpeg_segment_flood", "bomb", "JPEG with 5000 empty COM segments before the frame",
         img.jpeg_segment_flood, 422, "corrupt_header"),
    Case("jpeg_fill_flood", "bomb", "SOI then 5 MB of 0xFF fill bytes", img.jpeg_fill_flood, 422, "truncated_image"),
    Case("png_ztxt_bomb", "bomb", "PNG with a zTXt chunk inflating to 20 MB", img.png_ztxt_bomb,
         422, "undecodable_image"),
    Case("png_36mp_flat", "bomb", "6000x6000 PNG in 40 KB (under the 40 MP limit), max_side=256",
         img.png_flat_36mp, 200, params={"model": "fast", "max_side": "256"}, check=shape(256, 256), heavy=True,
         max_s=20.0),

    # Declared type versus data.
    Case("png_declared_jpeg", "content type", "PNG sent as image/jpeg", img.png, 415, "content_type_mismatch",
         content_type="image/jpeg"),
    Case("jpeg_declared_webp", "content type", "JPEG sent as image/webp", img.jpeg, 415, "content_type_mismatch",
         content_type="image/webp"),
    Case("jpeg_declared_gif", "content type", "JPEG sent as image/gif", img.jpeg, 415, "unsupported_media_type",
         content_type="image/gif"),
    Case("jpeg_declared_html", "content type", "JPEG sent as text/html", img.jpeg, 415, "unsupported_media_type",
         content_type="text/html"),
    Case("multipart_part_mismatch", "content type", "multipart part image/png holding a JPEG",
         lambda: img.multipart([img.image_part(img.jpeg(), b"image/png")]), 415, "content_type_mismatch",
         content_type=_multipart_type()),
    Case("jpeg_no_content_type", "content type", "JPEG without a Content-Type header", img.jpeg, 200,
         content_type=None, check=shape(W, H)),
    Case("jpeg_type_with_parameters", "content type", "JPEG as 'IMAGE/JPEG; charset=binary'", img.jpeg, 200,
         content_type="IMAGE/JPEG; charset=binary", check=shape(W, H)),

    # Polyglots: read as the image they start with; trailing data is never echoed (the output is re-encoded).
    Case("png_zip_polyglot", "polyglot", "PNG followed by a ZIP archive", img.png_zip_polyglot, 200,
         check=PHOTO_CUTOUT, **CUTOUT),
    Case("jpeg_html_comment", "polyglot", "JPEG with <script> HTML in a COM segment", img.jpeg_html_comment, 200,
         check=all_of(shape(W, H, 4), matte_like_photo(0.9)), **CUTOUT),
    Case("gif_js_polyglot", "polyglot", "GIF header that is also JavaScript", lambda: img.GIF_JS_POLYGLOT,
         415, "unsupported_format"),
    Case("html_with_png", "polyglot", "HTML page with a PNG inside", img.html_with_png, 415, "unsupported_format"),
    Case("pdf_then_jpeg", "polyglot", "PDF header, then a JPEG", lambda: b"%PDF-1.7\n" + img.jpeg(),
         415, "unsupported_format"),
    Case("bom_then_jpeg", "polyglot", "UTF-8 BOM, then a JPEG", lambda: b"\xef\xbb\xbf" + img.jpeg(),
         415, "unsupported_format"),
    Case("jpeg_soi_then_png", "polyglot", "JPEG SOI marker glued to a PNG", lambda: b"\xff\xd8\xff" + img.png(),
         422, "truncated_image"),

    # Formats: JPEG, PNG, WebP are read; everything else is refused with 415 naming the supported ones.
    Case("gif", "format", "GIF (not read)", img.gif, 415, "unsupported_format"),
    Case("gif_animated", "format", "animated GIF (not read)", lambda: img.gif(animated=True), 415,
         "unsupported_format"),
    Case("bmp", "format", "BMP (not read)", lambda: img.encode(img.photo(), "BMP"), 415, "unsupported_format"),
    Case("tiff", "format", "TIFF (not read)", lambda: img.encode(img.photo(), "TIFF"), 415, "unsupported_format"),
    Case("svg", "format", "SVG with a script (not read)", lambda: img.SVG, 415, "unsupported_format"),
    Case("heic", "format", "HEIC ftyp box (not read)", lambda: img.heif_like(b"heic"), 415, "unsupported_format"),
    Case("avif", "format", "AVIF ftyp box (not read)", lambda: img.heif_like(b"avif"), 415, "unsupported_format"),
    Case("webp_lossy", "format", "WebP lossy", img.webp, 200, check=all_of(shape(W, H, 4), matte_like_photo(0.9)),
         **CUTOUT),
    Case("webp_lossless", "format", "WebP lossless", lambda: img.encode(img.photo(), "WEBP", lossless=True), 200,
         check=PHOTO_CUTOUT, **CUTOUT),
    Case("webp_animated", "format", "animated WebP: frame 1 photo, frame 2 upside down (first frame is used)",
         img.webp_animated, 200, check=PHOTO_CUTOUT, **CUTOUT),
    Case("apng", "format", "animated PNG: frame 1 photo, frame 2 upside down (default image is used)", img.apng,
         200, check=PHOTO_CUTOUT, **CUTOUT),
    Case("jpeg_mpo", "format", "multi-picture JPEG (MPO), second picture blank",
         lambda: img.encode(Image.fromarray(img.photo()), "MPO", save_all=True,
                            append_images=[Image.new("RGB", PHOTO_SIZE)]),
         200, check=all_of(shape(W, H, 4), matte_like_photo(0.9)), **CUTOUT),

    # Valid but unusual pixel formats: must work and be right.
    Case("jpeg_cmyk", "pixel format", "CMYK JPEG", lambda: img.encode(Image.fromarray(img.photo()).convert("CMYK"),
                                                                       "JPEG", quality=95),
         200, check=all_of(shape(W, H, 4), matte_like_photo(0.9), colours(img.photo, 8)), **CUTOUT),
    Case("jpeg_grayscale", "pixel format", "greyscale JPEG", lambda: img.encode(img.grey(), "JPEG", quality=95), 200,
         check=all_of(shape(W, H, 4), matte_like_photo(0.75), colours(img.grey, 3)), **CUTOUT),
    Case("jpeg_progressive", "pixel format", "progressive JPEG",
         lambda: img.encode(img.photo(), "JPEG", quality=95, progressive=True), 200, check=JPEG_CUTOUT, **CUTOUT),
    Case("png_16bit_rgb", "pixel format", "16-bit RGB PNG",
         lambda: img.png_16bit(img.photo().astype(np.uint16) * 257, 2), 200, check=PHOTO_CUTOUT, **CUTOUT),
    Case("png_16bit_grey", "pixel format", "16-bit greyscale PNG",
         lambda: img.png_16bit(img.grey().astype(np.uint16) * 257, 0), 200,
         check=all_of(shape(W, H, 4), matte_like_photo(0.75), colours(img.grey, 0)), **CUTOUT),
    Case("png_16bit_grey_depth", "pixel format", "16-bit greyscale PNG to /v1/depth",
         lambda: img.png_16bit(img.grey().astype(np.uint16) * 257, 0), 200, path="/v1/depth", check=depth16(W, H)),
    Case("png_palette_trns", "pixel format", "palette PNG with a transparent index", lambda: palette()[0], 200,
         check=all_of(shape(W, H, 4), matte_like_photo(0.85), colours(lambda: palette()[1], 0)), **CUTOUT),
    Case("png_rgba", "pixel format", "RGBA PNG, alpha ramp 0..255 (input alpha is ignored)", img.png_rgba, 200,
         check=PHOTO_CUTOUT, **CUTOUT),
    Case("png_grey_alpha", "pixel format", "greyscale + alpha PNG",
         lambda: img.encode(Image.fromarray(img.grey()).convert("LA"), "PNG"), 200,
         check=all_of(shape(W, H, 4), colours(img.grey, 0)), **CUTOUT),
    Case("png_1bit", "pixel format", "1-bit PNG", lambda: img.encode(Image.fromarray(img.grey()).convert("1"), "PNG"),
         200, check=shape(W, H)),
    Case("png_1x1", "pixel format", "1x1 PNG", lambda: img.encode(np.zeros((1, 1, 3), np.uint8), "PNG"), 200,
         check=shape(1, 1, 4), **CUTOUT),
    Case("png_4000x1", "pixel format", "4000x1 PNG", lambda: img.encode(np.zeros((1, 4000, 3), np.uint8), "PNG"), 200,
         check=shape(4000, 1)),
    Case("png_object_lite_model", "pixel format", "PNG, /v1/mask?model=object-lite", img.png, 200,
         params={"model": "object-lite"}, check=matte_like_photo(0.8)),

    # EXIF: every orientation is applied; broken or huge metadata is ignored, never copied to the output.
    *[Case(f"jpeg_orientation_{o}", "EXIF", f"JPEG with EXIF orientation {o}", lambda o=o: img.jpeg_oriented(o), 200,
           check=JPEG_CUTOUT, **CUTOUT)
      for o in range(1, 9)],
    Case("jpeg_orientation_invalid", "EXIF", "JPEG with EXIF orientation 9 (invalid: ignored)",
         lambda: img.jpeg_with_raw_exif(_tiff_orientation(9)),
         200, check=shape(W, H)),
    Case("png_exif_orientation", "EXIF", "PNG with an eXIf chunk, orientation 6",
         lambda: img.png_insert(img.encode(img.stored_for_orientation(img.photo(), 6), "PNG"),
                                img.png_chunk(b"eXIf", _tiff_orientation(6))),
         200, check=PHOTO_CUTOUT, **CUTOUT),
    Case("jpeg_exif_64k", "EXIF", "JPEG with a 64 KB EXIF block", img.jpeg_big_exif, 200, check=shape(W, H)),
    Case("jpeg_40_app_segments", "EXIF", "JPEG with 40 APP15 segments of 64 KB (2.6 MB of metadata)",
         lambda: img.jpeg_with_app_segments(40), 200, check=shape(W, H), heavy=True),
    Case("png_exif_4mb", "EXIF", "PNG with a 4 MB eXIf chunk, orientation 6",
         lambda: img.png_with_exif(6, 4_000_000), 200, check=shape(H, W), heavy=True),
    Case("jpeg_exif_ifd_loop", "EXIF", "EXIF whose IFD chain loops (orientation 6)",
         lambda: _with_photo_stored_for(6, img.exif_ifd_loop()), 200, check=JPEG_CUTOUT, **CUTOUT),
    Case("jpeg_exif_out_of_bounds", "EXIF", "EXIF IFD with 65535 entries and offsets past the end",
         lambda: img.jpeg_with_raw_exif(img.exif_out_of_bounds()), 200, check=shape(W, H)),
    Case("jpeg_exif_garbage", "EXIF", "APP1 'Exif' segment full of garbage",
         lambda: img.jpeg_with_raw_exif(bytes(range(256)) * 10), 200, check=shape(W, H)),
    Case("jpeg_gps_comment", "EXIF", "JPEG with GPS position, camera make and a comment (none may reach the output)",
         img.jpeg_with_gps, 200, check=shape(W, H, 4), **CUTOUT),

    # Multipart forms.
    Case("multipart_ok", "multipart", "well-formed form, field 'image'",
         lambda: img.multipart([(b'Content-Disposition: form-data; name="note"', b"hi"), img.image_part(img.jpeg())]),
         200, content_type=_multipart_type(), check=shape(W, H)),
    Case("multipart_no_boundary", "multipart", "multipart/form-data without a boundary parameter",
         lambda: img.multipart([img.image_part(img.jpeg())]), 400, "malformed_multipart",
         content_type="multipart/form-data"),
    Case("multipart_wrong_boundary", "multipart", "boundary in the header differs from the body's",
         lambda: img.multipart([img.image_part(img.jpeg())]), 400, "malformed_multipart",
         content_type=_multipart_type("otherboundary")),
    Case("multipart_unterminated", "multipart", "form without its closing boundary",
         lambda: img.multipart([img.image_part(img.jpeg())], close=False), 400, "malformed_multipart",
         content_type=_multipart_type()),
    Case("multipart_no_image_field", "multipart", "form whose only field is 'photo'",
         lambda: img.multipart([img.image_part(img.jpeg(), name=b"photo")]), 400, "missing_image_field",
         content_type=_multipart_type()),
    Case("multipart_two_images", "multipart", "form with two 'image' fields",
         lambda: img.multipart([img.image_part(img.jpeg()), img.image_part(img.png(), b"image/png")]),
         400, "multiple_image_fields", content_type=_multipart_type()),
    Case("multipart_bad_part_header", "multipart", "part header line without a colon",
         lambda: img.multipart([(b"this is not a header", img.jpeg())]), 400, "malformed_multipart",
         content_type=_multipart_type()),
    Case("multipart_empty_image", "multipart", "field 'image' with no bytes",
         lambda: img.multipart([img.image_part(b"")]), 422, "empty_body", content_type=_multipart_type()),

    # Methods, paths and parameters.
    Case("get_depth", "method/path", "GET /v1/depth", lambda: b"", 405, "method_not_allowed", method="GET",
         path="/v1/depth"),
    Case("put_mask", "method/path", "PUT /v1/mask", img.jpeg, 405, "method_not_allowed", method="PUT"),
    Case("delete_cutout", "method/path", "DELETE /v1/cutout", lambda: b"", 405, "method_not_allowed",
         method="DELETE", path="/v1/cutout"),
    Case("patch_mask", "method/path", "PATCH /v1/mask", img.jpeg, 405, "method_not_allowed", method="PATCH"),
    Case("post_unknown_path", "method/path", "POST /v1/segment", img.jpeg, 404, "not_found", path="/v1/segment"),
    Case("post_v2_path", "method/path", "POST /v2/depth", img.jpeg, 404, "not_found", path="/v2/depth"),
    Case("post_uppercase_path", "method/path", "POST /V1/DEPTH", img.jpeg, 404, "not_found", path="/V1/DEPTH"),
    Case("max_side_not_a_number", "method/path", "max_side=abc", img.jpeg, 400, "invalid_parameter",
         params={"max_side": "abc"}),
    Case("unknown_model", "method/path", "model=huge", img.jpeg, 400, "invalid_parameter", params={"model": "huge"}),
    Case("no_api_key", "method/path", "no API key", img.jpeg, 401, "missing_api_key", authenticated=False),
]


def _tiff_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[img.ORIENTATION_TAG] = orientation
    return exif.tobytes()[6:]


def _with_photo_stored_for(orientation: int, tiff: bytes) -> bytes:
    """The photo stored sideways for ``orientation``, carrying the raw EXIF ``tiff`` bytes."""
    stored = img.encode(img.stored_for_orientation(img.photo(), orientation), "JPEG", quality=95)
    body = b"Exif\x00\x00" + tiff
    return stored[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + stored[2:]


def case_ids() -> list[str]:
    return [case.id for case in CASES]


assert len(set(case_ids())) == len(CASES), "case ids must be unique"
