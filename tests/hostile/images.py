"""Every file of the hostile-input corpus, generated in code (Pillow and byte surgery).

Nothing here is committed as a binary: each function builds its bytes from
the same small portrait, so the valid-but-unusual files can be checked
against the plain photo.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from functools import cache

import numpy as np
import skimage.data
from PIL import ExifTags, Image

ORIENTATION_TAG = 0x0112


@cache
def photo() -> np.ndarray:
    """A 192x256 (w x h) portrait: the astronaut, asymmetric left/right and top/bottom."""
    full = skimage.data.astronaut()[:, 64:448]  # 512 x 384, the person left of centre
    return np.asarray(Image.fromarray(full).resize((192, 256), Image.Resampling.LANCZOS))


def encode(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@cache
def jpeg() -> bytes:
    return encode(photo(), "JPEG", quality=92)


@cache
def png() -> bytes:
    return encode(photo(), "PNG")


@cache
def webp() -> bytes:
    return encode(photo(), "WEBP", quality=90)


# ---------------------------------------------------------------- JPEG surgery

def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the first scan."""
    segments, position = [], 2
    while position < len(data):
        marker = data[position + 1]
        (length,) = struct.unpack_from(">H", data, position + 2)
        segments.append((marker, position, position + 2 + length))
        if marker == 0xDA:
            break
        position += 2 + length
    return segments


def _segment(data: bytes, marker: int) -> tuple[int, int]:
    return next((start, end) for m, start, end in jpeg_segments(data) if m == marker)


def jpeg_with_sof(width: int | None = None, height: int | None = None, precision: int | None = None) -> bytes:
    data = bytearray(jpeg())
    start, _ = _segment(bytes(data), 0xC0)
    if precision is not None:
        data[start + 4] = precision
    if height is not None:
        data[start + 5:start + 7] = height.to_bytes(2, "big")
    if width is not None:
        data[start + 7:start + 9] = width.to_bytes(2, "big")
    return bytes(data)


def jpeg_without(marker: int) -> bytes:
    data = jpeg()
    start, end = _segment(data, marker)
    return data[:start] + data[end:]


def jpeg_bad_huffman() -> bytes:
    data = bytearray(jpeg())
    start, _ = _segment(bytes(data), 0xC4)
    data[start + 5:start + 21] = b"\xff" * 16  # code counts summing far past 256
    return bytes(data)


def jpeg_corrupt_scan() -> bytes:
    """Garbage in the middle of the entropy-coded data; SOI..EOI structure intact."""
    data = bytearray(jpeg())
    _, scan = _segment(bytes(data), 0xDA)
    middle = (scan + len(data)) // 2
    garbage = np.random.default_rng(1).integers(0, 255, 400, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    data[middle:middle + 400] = garbage
    return bytes(data)


@cache
def jpeg_scan_bomb(copies: int = 1000) -> bytes:
    """A 36 MP flat progressive JPEG whose 46-byte AC scan is repeated: ~290 KB, and each copy is
    another pass over all 560,000 blocks (4.3 s of decoding on one core without the scan limit)."""
    data = encode(Image.new("RGB", (6000, 6000), (120, 130, 140)), "JPEG", quality=90, progressive=True)
    starts = [match.start() for match in re.finditer(rb"\xff\xda", data)]
    for start, end in zip(starts, [*starts[1:], len(data) - 2], strict=True):
        components = data[start + 4]
        spectral_start, approximation = data[start + 5 + 2 * components], data[start + 7 + 2 * components]
        if components == 1 and spectral_start > 0 and approximation >> 4 == 0:  # a first AC scan: EOB runs
            return data[:-2] + data[start:end] * copies + b"\xff\xd9"
    raise AssertionError("no AC scan found in Pillow's progressive JPEG")


def jpeg_segment_flood(count: int = 5000) -> bytes:
    return jpeg()[:2] + b"\xff\xfe\x00\x02" * count + jpeg()[2:]


def jpeg_fill_flood(size: int = 5_000_000) -> bytes:
    return b"\xff\xd8" + b"\xff" * size


def jpeg_with_app_segments(count: int, payload: int = 65533) -> bytes:
    """``count`` APP15 segments of ``payload`` bytes each, between SOI and the rest."""
    segment = b"\xff\xef" + (payload + 2).to_bytes(2, "big") + b"\x00" * payload
    return jpeg()[:2] + segment * count + jpeg()[2:]


def jpeg_with_raw_exif(tiff: bytes) -> bytes:
    """An APP1 Exif segment with exactly these TIFF bytes."""
    body = b"Exif\x00\x00" + tiff
    return jpeg()[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + jpeg()[2:]


def exif_ifd_loop() -> bytes:
    """TIFF header, IFD0 with orientation 6, whose next-IFD offset points back at itself."""
    entry = struct.pack("<HHIHH", ORIENTATION_TAG, 3, 1, 6, 0)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 8)


def exif_out_of_bounds() -> bytes:
    """IFD0 claiming 65535 entries, and an entry whose value lies far past the end."""
    entry = struct.pack("<HHII", 0x010E, 2, 0x7FFFFFFF, 0x7FFFFFF0)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + entry * 4 + struct.pack("<I", 0)


def jpeg_oriented(orientation: int) -> bytes:
    """The photo stored so that viewers applying ``orientation`` show it upright."""
    stored = stored_for_orientation(photo(), orientation)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif)


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The inverse of what a viewer does for each EXIF orientation (EXIF 2.32, tag 0x0112)."""
    inverse = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, k=1),  # viewer turns it 90 degrees clockwise
        7: lambda a: np.rot90(a, k=2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, k=-1),
    }[orientation]
    return np.ascontiguousarray(inverse(upright))


def jpeg_big_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 64_000  # ImageDescription: the whole APP1 segment is nearly its 64 KB maximum
    exif[ORIENTATION_TAG] = 1
    return encode(photo(), "JPEG", quality=90, exif=exif)


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    exif[0x010F] = "HostileCam"
    return encode(photo(), "JPEG", quality=90, exif=exif, comment=b"a JPEG comment")


# ----------------------------------------------------------------- PNG surgery

def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_from(ihdr: bytes, *chunks: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(chunks) + png_chunk(b"IEND", b"")


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    return struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)


def png_insert(data: bytes, chunk: bytes) -> bytes:
    """``chunk`` right after IHDR."""
    return data[:33] + chunk + data[33:]


def png_bomb(side: int = 50_000) -> bytes:
    """A valid little PNG declaring ``side`` x ``side`` pixels."""
    return png_from(ihdr(side, side), png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024)))


@cache
def png_flat_36mp() -> bytes:
    """6000 x 6000 black RGB pixels (108 MB decoded) in a few dozen KB: under the 40 MP limit."""
    width, height = 6000, 6000
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_from(ihdr(width, height), png_chunk(b"IDAT", idat))


def png_ztxt_bomb(size: int = 20_000_000) -> bytes:
    """A zTXt chunk that inflates to ``size`` bytes of text."""
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * size, 9)
    return png_insert(png(), png_chunk(b"zTXt", payload))


def png_corrupt_idat() -> bytes:
    data = png()
    start = data.index(b"IDAT") + 100
    return data[:start] + bytes(500) + data[start + 500:]


def png_bad_ihdr_crc() -> bytes:
    data = bytearray(png())
    data[29] ^= 0xFF
    return bytes(data)


def png_colour_type(colour: int) -> bytes:
    data = bytearray(png())
    data[25] = colour
    return bytes(data)


def png_without_idat() -> bytes:
    return png_from(ihdr(192, 256))


def png_16bit(pixels: np.ndarray, colour: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only): ``pixels`` uint16, HxW or HxWxC."""
    height, width = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    return png_from(ihdr(width, height, 16, colour), png_chunk(b"IDAT", zlib.compress(raw)))


def png_with_exif(orientation: int, description_bytes: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    exif[0x010E] = "d" * description_bytes
    tiff = exif.tobytes()[6:]  # eXIf holds the TIFF structure without the "Exif\0\0" prefix
    return png_insert(png(), png_chunk(b"eXIf", tiff))


def png_palette_transparent() -> tuple[bytes, np.ndarray]:
    """A 256-colour palette PNG whose index 0 is transparent, and its RGB pixels."""
    quantized = Image.fromarray(photo()).quantize(colors=256)
    encoded = encode(quantized, "PNG", transparency=0)
    return encoded, np.asarray(quantized.convert("RGB"))


def png_rgba() -> bytes:
    alpha = np.tile(np.linspace(0, 255, photo().shape[1], dtype=np.uint8), (photo().shape[0], 1))
    return encode(np.dstack([photo(), alpha]), "PNG")


def grey() -> np.ndarray:
    return np.asarray(Image.fromarray(photo()).convert("L"))


def png_zip_polyglot() -> bytes:
    """A PNG followed by a ZIP archive: a valid PNG and a valid ZIP at once."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert('polyglot')</script>")
    return png() + buffer.getvalue()


def jpeg_html_comment() -> bytes:
    return encode(photo(), "JPEG", quality=90, comment=b"<html><script>alert('polyglot')</script></html>")


def apng() -> bytes:
    frames = [Image.fromarray(photo()), Image.fromarray(np.ascontiguousarray(photo()[::-1]))]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


# ---------------------------------------------------------------- WebP surgery

def webp_animated() -> bytes:
    frames = [Image.fromarray(photo()), Image.fromarray(np.ascontiguousarray(photo()[::-1]))]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)


def webp_corrupt() -> bytes:
    """A lossy WebP whose VP8 frame tag claims a first partition far larger than the file."""
    data = webp()
    return data[:20] + b"\xff\xff\xff" + data[23:]


def webp_riff_size(size: int) -> bytes:
    return webp()[:4] + struct.pack("<I", size) + webp()[8:]


def webp_bomb() -> bytes:
    """An extended WebP whose canvas is 16384 x 16384 (268 MP) around a small picture."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + webp()[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ------------------------------------------------------------ other formats

def gif(animated: bool = False) -> bytes:
    frames = [Image.fromarray(photo()).convert("P"), Image.fromarray(photo()[::-1]).convert("P")]
    if animated:
        return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return encode(frames[0], "GIF")


def heif_like(brand: bytes) -> bytes:
    """The start of an ISO-BMFF (HEIC/AVIF) file: an ftyp box, then a meta box stub."""
    ftyp = b"ftyp" + brand + b"\x00\x00\x00\x00" + b"mif1" + brand
    return struct.pack(">I", len(ftyp) + 4) + ftyp + struct.pack(">I", 16) + b"meta" + bytes(8) + bytes(200)


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
       b'<script>alert(1)</script><rect width="100" height="100"/></svg>')
GIF_JS_POLYGLOT = b"GIF89a/*\x0a\x00\x0a\x00\x00\x00\x00*/=1;alert(document.domain);//" + bytes(64)


def html_with_png() -> bytes:
    return b"<!DOCTYPE html><html><body><img src='data:image/png;base64,'>" + png() + b"</body></html>"


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"hostileboundary", close: bool = True) -> bytes:
    """A multipart/form-data body from (part headers, part data)."""
    body = b"".join(b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n" for headers, data in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def image_part(data: bytes, media_type: bytes = b"image/jpeg", name: bytes = b"image") -> tuple[bytes, bytes]:
    headers = (b'Content-Disposition: form-data; name="' + name + b'"; filename="photo"\r\n'
               b"Content-Type: " + media_type)
    return headers, data
