"""Reading the uploaded photo: a raw body or a multipart field ``image``, in memory only.

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
from dataclasses import dataclass

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
GENERIC_TYPES = ("", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    data: bytes
    declared_type: str | None  # a media type the client named, if it named an image type


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _declared(media: str) -> str | None:
    """The image media type the client named, ``None`` for a generic one; 415 for any other type."""
    if media in MEDIA_TYPES.values():
        return media
    if media in GENERIC_TYPES:
        return None
    raise UnsupportedMediaType(
        f"Content-Type {media!r} is not accepted; send image/jpeg, image/png or image/webp "
        "as the body, or multipart/form-data with a field named 'image'",
        code="unsupported_media_type",
    )


def _too_large(limit: int, declared_length: str | None = None) -> PayloadTooLarge:
    size = f"{declared_length} bytes, " if declared_length is not None else ""
    return PayloadTooLarge(f"the body is {size}over the limit of {limit} bytes; send a smaller photo "
                           "(downscale or recompress it)")


async def _read_body(request: Request, limit: int, timeout_s: float | None) -> bytes:
    declared_length = request.headers.get("content-length")
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise _too_large(limit, declared_length)
    body = bytearray()
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {timeout_s:g} s ({len(body)} bytes received); "
            "check the connection, or send a smaller photo",
        ) from None
    except ClientDisconnect:
        raise ClientClosedRequest("the client closed the connection before sending the whole body") from None
    return bytes(body)


def _multipart_image(body: bytes, content_type: str) -> Upload:  # noqa: C901 (one check per multipart rule)
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary; let your HTTP library build the form",
                         code="malformed_multipart")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        parts.append(({}, bytearray()))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1][0][bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end, "on_part_data": on_part_data,
    })
    try:
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, IndexError) as exc:
        raise BadRequest(f"malformed multipart body ({exc}); let your HTTP library build the form",
                         code="malformed_multipart") from None
    if parser.state != MultipartState.END:
        raise BadRequest("the multipart body ends before its closing boundary (truncated upload?); "
                         "send the complete form", code="malformed_multipart")
    images = [(headers, data) for headers, data in parts if _field_name(headers) == b"image"]
    if not images:
        raise BadRequest("the multipart form has no field named 'image'; put the photo in a field called 'image'",
                         code="missing_image_field")
    if len(images) > 1:
        raise BadRequest(f"the multipart form has {len(images)} fields named 'image'; send exactly one photo",
                         code="multiple_image_fields")
    headers, data = images[0]
    media = _media_type(headers.get(b"content-type", b"").decode("latin-1"))
    return Upload(bytes(data), _declared(media))


def _field_name(headers: dict[bytes, bytes]) -> bytes | None:
    _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
    return disposition.get(b"name")


async def read_upload(request: Request, max_bytes: int, timeout_s: float | None = None) -> Upload:
    """The photo's bytes and the media type the client declared for them.

    ``timeout_s`` bounds the time to receive the whole body (``None``: no bound).
    """
    content_type = request.headers.get("content-type", "")
    media = _media_type(content_type)
    if media == "multipart/form-data":
        body = await _read_body(request, max_bytes + MULTIPART_OVERHEAD_BYTES, timeout_s)
        upload = _multipart_image(body, content_type)
        if len(upload.data) > max_bytes:
            raise PayloadTooLarge(f"the image is over the limit of {max_bytes} bytes; send a smaller photo")
        return upload
    declared = _declared(media)
    return Upload(await _read_body(request, max_bytes, timeout_s), declared)
