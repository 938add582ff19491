"""Reading the uploaded photo: a raw body or a multipart field ``image``, in memory only.

The body is read in chunks and refused as soon as it passes the limit; it is
never spooled to disk (Starlette's form parser would spool large files).
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.image_check import MEDIA_TYPES

MULTIPART_OVERHEAD_BYTES = 64 * 1024
GENERIC_TYPES = ("", "application/octet-stream")


@dataclass(frozen=True)
class Upload:
    data: bytes
    declared_type: str | None  # a media type the client named, if it named an image type


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _declared(media: str) -> str | None:
    if media in MEDIA_TYPES.values():
        return media
    if media in GENERIC_TYPES:
        return None
    raise UnsupportedMediaType(
        f"Content-Type {media!r} is not accepted; send image/jpeg, image/png or image/webp "
        "as the body, or multipart/form-data with a field named 'image'",
        code="unsupported_media_type",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared_length = request.headers.get("content-length")
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise PayloadTooLarge(f"the body is {declared_length} bytes, over the limit of {limit}; send a smaller photo")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"the body is over the limit of {limit} bytes; send a smaller photo")
    except ClientDisconnect:
        raise BadRequest("the client closed the connection before sending the whole body") from None
    return bytes(body)


def _multipart_image(body: bytes, content_type: str) -> Upload:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary; let your HTTP library build the form")
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
        raise BadRequest(f"malformed multipart body ({exc}); let your HTTP library build the form") from None
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition.get(b"name") == b"image":
            media = _media_type(headers.get(b"content-type", b"").decode("latin-1"))
            return Upload(bytes(data), _declared(media))
    raise BadRequest("the multipart form has no field named 'image'; put the photo in a field called 'image'")


async def read_upload(request: Request, max_bytes: int) -> Upload:
    content_type = request.headers.get("content-type", "")
    media = _media_type(content_type)
    if media == "multipart/form-data":
        body = await _read_body(request, max_bytes + MULTIPART_OVERHEAD_BYTES)
        upload = _multipart_image(body, content_type)
        if len(upload.data) > max_bytes:
            raise PayloadTooLarge(f"the image is over the limit of {max_bytes} bytes; send a smaller photo")
        return upload
    declared = _declared(media)
    return Upload(await _read_body(request, max_bytes), declared)
