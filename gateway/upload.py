"""Reading the uploaded photo: a raw body or a multipart field ``image``, in memory only; an operation may
also take further image parts (``/v1/background``'s ``background``), read from the same form.

The body is read in chunks and refused as soon as it passes the limit (or at
once when ``Content-Length`` already says so); it is never spooled to disk
(Starlette's form parser would spool large files). The whole body must arrive
within ``timeout_s``: a client that trickles bytes would otherwise hold a
request slot and its buffer for as long as it likes.

Refusals that leave part of the body unread get ``Connection: close`` from
``middleware.ImageRouteGuard``, so the server drops the connection instead of
draining the rest of the upload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.errors import BadRequest, ClientClosedRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from gateway.image_check import MEDIA_TYPES

# The parser logs a warning for every malformed form before raising; the caller
# already gets the reason in its 400, and any client could flood the log with them.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)

MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Enough for the documented fields of every endpoint; a form of millions of tiny parts would
# otherwise cost the event loop seconds and the heap an entry per part.
MAX_PARTS = 32
MAX_PART_HEADER_BYTES = 8 * 1024
PHOTO_FIELD = b"image"  # the photo; an operation's image parts are also kept, every other field is dropped
GENERIC_TYPES = ("", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    data: bytes
    declared_type: str | None  # a media type the client named, if it named an image type
    parts: dict[str, Upload] = field(default_factory=dict)  # the operation's further image parts that were sent


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _declared(media: str) -> str | None:
    """The image media type the client named, ``None`` for a generic one; 415 for any other type."""
    if media in MEDIA_TYPES.values():
        return media
    if media in GENERIC_TYPES:
        return None
    raise UnsupportedMediaType(
        f"Content-Type {media[:64]!r} is not accepted; send image/jpeg, image/png or image/webp "
        "as the body, or multipart/form-data with a field named 'image'",
        code="unsupported_media_type",
    )


def _too_large(limit: int, declared_length: str | None = None) -> PayloadTooLarge:
    size = f"{declared_length} bytes, " if declared_length is not None else ""
    return PayloadTooLarge(f"the body is {size}over the limit of {limit} bytes; send a smaller photo "
                           "(downscale or recompress it)")


async def _receive(request: Request, limit: int, timeout_s: float | None, consume: Callable[[bytes], None]) -> int:
    """Hand each chunk of the body to ``consume`` as it arrives; returns the body's size.

    Refused as soon as the body passes ``limit`` (at once when ``Content-Length`` says so), or when
    the whole body has not arrived within ``timeout_s``.
    """
    declared_length = request.headers.get("content-length")
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise _too_large(limit, declared_length)
    received = 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                consume(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {timeout_s:g} s ({received} bytes received); "
            "check the connection, or send a smaller photo",
        ) from None
    except ClientDisconnect:
        raise ClientClosedRequest("the client closed the connection before sending the whole body") from None
    return received


def _malformed(problem: str) -> BadRequest:
    return BadRequest(f"{problem}; let your HTTP library build the form", code="malformed_multipart")


class _Form:
    """A multipart form parsed chunk by chunk as it arrives: the work per chunk is bounded by the
    chunk's size, at most ``MAX_PARTS`` parts are accepted, and only the data of ``fields`` is kept, each
    within its byte limit (``limits``; default: the whole body's)."""

    def __init__(self, content_type: str, fields: tuple[bytes, ...], limits: dict[bytes, int] | None = None) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise BadRequest("multipart/form-data without a boundary; let your HTTP library build the form",
                             code="malformed_multipart")
        self.parts = 0
        self.fields = fields  # the fields whose data is kept
        self.limits = limits or {}
        self.names: list[bytes] = []  # every part's field name, in order (at most MAX_PARTS)
        self.images: list[tuple[bytes, bytes, bytearray]] = []  # (field, declared content type, data)
        self._limit = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._data: bytearray | None = None  # the current part's buffer, if it is an image field
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
        })

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except (MultipartParseError, IndexError) as exc:
            raise _malformed(f"malformed multipart body ({exc})") from None

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except (MultipartParseError, IndexError) as exc:
            raise _malformed(f"malformed multipart body ({exc})") from None
        if self._parser.state != MultipartState.END:
            raise _malformed("the multipart body ends before its closing boundary (truncated upload?)")

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(f"the multipart form has more than {MAX_PARTS} parts; send the photo in a field "
                             f"named 'image' and at most {MAX_PARTS} fields in all",
                             code="too_many_parts")
        self._headers = {}
        self._header_bytes = 0
        self._data = None

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise _malformed(f"a multipart part has over {MAX_PART_HEADER_BYTES} bytes of headers")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._field.extend(data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value.extend(data[start:end])

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        name = _field_name(self._headers)
        self.names.append(name or b"")
        if name in self.fields:
            self._data = bytearray()
            self._limit = self.limits.get(name, 0)
            self.images.append((name, self._headers.get(b"content-type", b""), self._data))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._data is not None:  # other fields are parsed and dropped, never buffered
            self._data.extend(data[start:end])
            if self._limit and len(self._data) > self._limit:
                name = self.images[-1][0].decode("latin-1")
                raise PayloadTooLarge(f"the field {name!r} is over its limit of {self._limit} bytes")


def _one_field(form: _Form, name: bytes, max_bytes: int, image: bool = True) -> Upload | None:
    found = [(declared, data) for field_name, declared, data in form.images if field_name == name]
    if not found:
        return None
    if len(found) > 1:
        raise BadRequest(f"the multipart form has {len(found)} fields named {name.decode()!r}; send exactly one "
                         "image in each", code="multiple_image_fields")
    declared_type, data = found[0]
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the {name.decode()!r} image is over the limit of {max_bytes} bytes; send a smaller one")
    return Upload(bytes(data), _declared(_media_type(declared_type.decode("latin-1"))) if image else None)


async def _multipart_image(request: Request, content_type: str, max_bytes: int, timeout_s: float | None,
                           parts: tuple[str, ...]) -> Upload:
    form = _Form(content_type, (PHOTO_FIELD, *(name.encode() for name in parts)))
    await _receive(request, max_bytes + MULTIPART_OVERHEAD_BYTES, timeout_s, form.write)
    form.finish()
    photo = _one_field(form, PHOTO_FIELD, max_bytes)
    if photo is None:
        raise BadRequest("the multipart form has no field named 'image'; put the photo in a field called 'image'",
                         code="missing_image_field")
    found = {name: upload for name in parts if (upload := _one_field(form, name.encode(), max_bytes)) is not None}
    return Upload(photo.data, photo.declared_type, found)


@dataclass(frozen=True)
class Form:
    """The fields of a multipart form that a route asked for, and the names of all its fields."""

    fields: dict[str, Upload]
    names: tuple[str, ...]


async def read_form(request: Request, max_bytes: int, timeout_s: float | None, limits: dict[str, int],
                    images: tuple[str, ...]) -> Form:
    """A multipart form's fields named in ``limits`` (name -> most bytes it may hold), each at most once; the
    whole form within ``max_bytes`` plus a little overhead, parsed as it arrives (like ``read_upload``).
    The fields in ``images`` must declare an image media type or none; the others are text."""
    content_type = request.headers.get("content-type", "")
    form = _Form(content_type, tuple(name.encode() for name in limits),
                 {name.encode(): limit for name, limit in limits.items()})
    await _receive(request, max_bytes + MULTIPART_OVERHEAD_BYTES, timeout_s, form.write)
    form.finish()
    found = {name: upload for name, limit in limits.items()
             if (upload := _one_field(form, name.encode(), limit, name in images)) is not None}
    return Form(found, tuple(name.decode("latin-1") for name in form.names))


async def read_body(request: Request, max_bytes: int, timeout_s: float | None) -> bytes:
    """The raw body, within ``max_bytes`` and ``timeout_s`` (a JSON or form-encoded request)."""
    body = bytearray()
    await _receive(request, max_bytes, timeout_s, body.extend)
    return bytes(body)


def _field_name(headers: dict[bytes, bytes]) -> bytes | None:
    _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
    return disposition.get(b"name")


async def read_upload(request: Request, max_bytes: int, timeout_s: float | None = None,
                      parts: tuple[str, ...] = ()) -> Upload:
    """The photo's bytes and the media type the client declared for them, and those of the further image
    ``parts`` (multipart field names) that were sent. Every image is within ``max_bytes``, the whole
    form within ``max_bytes`` plus a little overhead.

    ``timeout_s`` bounds the time to receive the whole body (``None``: no bound).
    """
    content_type = request.headers.get("content-type", "")
    media = _media_type(content_type)
    if media == "multipart/form-data":
        return await _multipart_image(request, content_type, max_bytes, timeout_s, parts)
    declared = _declared(media)
    body = bytearray()
    await _receive(request, max_bytes, timeout_s, body.extend)
    return Upload(bytes(body), declared)
