"""What the sync and async clients share: photos to bytes, tap points to text, requests from the operation tables,
the retry rule."""

from __future__ import annotations

import io
import operator
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from .operations import OPERATIONS
from .spec import PHOTO_FIELD, Operation

if TYPE_CHECKING:
    from PIL import Image

Photo = Union[bytes, bytearray, memoryview, str, os.PathLike[str], IO[bytes], "Image.Image"]

SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def media_type(data: bytes) -> str:
    """The image type the bytes start with; ``application/octet-stream`` lets the service tell (and refuse)."""
    for magic, media in SIGNATURES:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def encode_image(image: Image.Image) -> bytes:
    """A Pillow image as an upload: RGB and greyscale as JPEG quality 95 without chroma subsampling (45 ms and
    1.4 MB at 12 MP, where even the fastest PNG takes a second and a real photo's PNG nears the 30 MiB body
    limit), anything with alpha or more than 8 bits as PNG at compression level 1 (lossless)."""
    buffer = io.BytesIO()
    if image.mode in ("RGB", "L"):
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def photo_bytes(photo: Photo, what: str = "photo") -> bytes:
    """The encoded image of ``photo``: bytes as they are, a path's file, a binary file object's rest, or a
    Pillow image encoded by ``encode_image``. Bytes, paths and files go as they are: no re-encoding, and the
    service applies their EXIF orientation (a Pillow image has none: ``ImageOps.exif_transpose`` it first)."""
    if isinstance(photo, bytes | bytearray | memoryview):
        return bytes(photo)
    if isinstance(photo, str | os.PathLike):
        return Path(photo).read_bytes()
    if hasattr(photo, "read"):
        data = photo.read()
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"the {what} file object must be opened in binary mode ('rb')")
        return bytes(data)
    if hasattr(photo, "save") and hasattr(photo, "mode"):  # a PIL image, without importing Pillow to check
        return encode_image(photo)
    raise TypeError(f"the {what} must be bytes, a path, a binary file object or a PIL image, "
                    f"not {type(photo).__name__}")


def _point(point: object, what: str) -> str:
    """One ``(x, y)`` pair of whole non-negative pixels as ``"x,y"``."""
    pair = () if isinstance(point, str | bytes) else tuple(point) if hasattr(point, "__iter__") else ()
    if len(pair) != 2 or not all(hasattr(v, "__index__") and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{what} must be (x, y) pairs of whole pixels, like [(120, 80), (130, 90)], not {point!r}")
    x, y = (operator.index(v) for v in pair)
    if x < 0 or y < 0:
        raise ValueError(f"{what}: {point!r} is off the photo; x and y are pixels of the upright photo, 0 or more")
    return f"{x},{y}"


def join_points(points: str | Sequence[Sequence[int]] | None, what: str) -> str | None:
    """``points`` as the query's ``"x,y;x,y"``: a string goes as it is (the service checks it), a sequence of
    ``(x, y)`` pairs of whole pixels of the upright photo is joined; None stays None (not sent)."""
    if points is None or isinstance(points, str):
        return points
    return ";".join(_point(point, what) for point in points)


@dataclass(frozen=True)
class Retry:
    """When a call is sent again: on 429 and 503 that carry ``Retry-After``, after waiting what it says, at most
    ``max_retries`` times and at most ``max_wait_s`` seconds of waiting in all (an answer asking for more than
    is left is raised at once). Every attempt carries the same ``Idempotency-Key``, so a retry of a request the
    service did finish is answered again without billing it twice. ``Retry(max_retries=0)`` never retries."""

    max_retries: int = 3
    max_wait_s: float = 30.0
    statuses: tuple[int, ...] = (429, 503)

    def delay(self, status: int, retry_after: float | None, attempts: int, waited_s: float) -> float | None:
        """Seconds to wait before attempt ``attempts + 1``, or None to give up and raise this answer."""
        if status not in self.statuses or retry_after is None or attempts > self.max_retries:
            return None
        if waited_s + retry_after > self.max_wait_s:
            return None
        return retry_after


@dataclass(frozen=True)
class Prepared:
    """One logical call, ready to be sent once per attempt."""

    operation: Operation
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)

    def request_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.files:
            arguments["files"] = self.files
        elif self.content is not None:
            arguments["content"] = self.content
        return arguments


def _file(name: str, data: bytes) -> tuple[str, bytes, str]:
    media = media_type(data)
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(media, "bin")
    return f"{name}.{extension}", data, media


def prepare(name: str, arguments: dict[str, Any], photo: Photo | None = None, idempotency_key: str | None = None,
            auto_key: bool = True) -> Prepared:
    """The request for ``OPERATIONS[name]`` from a method's arguments: each table parameter that is not None
    in the query, the photo as the raw body, or a multipart form when an image part (``background``) is given.
    An image call gets ``idempotency_key``, or one made here (once per logical call) when ``auto_key``."""
    operation = OPERATIONS[name]
    params = {p.name: p.encode(arguments[p.name]) for p in operation.params if arguments.get(p.name) is not None}
    if not operation.takes_photo:
        return Prepared(operation, params, {})
    if photo is None:
        raise TypeError(f"{name} needs a photo")
    key = idempotency_key or (uuid.uuid4().hex if auto_key else None)
    headers = {"Idempotency-Key": key} if key else {}
    data = photo_bytes(photo)
    parts = {part: photo_bytes(arguments[part], f"{part} image") for part in operation.parts
             if arguments.get(part) is not None}
    if parts:
        files = {PHOTO_FIELD: _file("photo", data), **{part: _file(part, value) for part, value in parts.items()}}
        return Prepared(operation, params, headers, files=files)
    return Prepared(operation, params, {**headers, "Content-Type": media_type(data)}, content=data)
