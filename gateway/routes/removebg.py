"""``POST /v1.0/removebg``: remove.bg's public API v1.0 on our models, so an app switches by its base URL.

The request (multipart ``image_file``, or ``image_file_b64`` in a form, a multipart form or a JSON body) is
translated into one of our operations and served by ``routes.images.serve`` with our limits, checks and
billing; the answer is reshaped into remove.bg's (binary, or JSON with ``Accept: application/json``), with
its headers beside ours, and errors are remove.bg's ``{"errors": [{"title", "code"}]}``. docs/removebg.md
has the mapping of every field and what is not supported; nothing is fetched from the network, so
``image_url`` and ``bg_image_url`` are refused with a message to upload the file.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from contract.product import PRODUCT
from contract.schema import Operation
from gateway import errors
from gateway.deps import ImageCallDep
from gateway.errors import BadRequest
from gateway.image_check import inspect_image
from gateway.routes.images import serve
from gateway.settings import GatewaySettings
from gateway.upload import Upload, read_body, read_form

PATH = "/v1.0/removebg"
ROUTE = "removebg"  # its label in the gateway's metrics
TEXT_FIELD_BYTES = 1024
# remove.bg's sizes -> the most megapixels of the result (None: the photo's own size, within our limits).
SIZES = {"preview": 0.25, "small": 0.25, "regular": 0.25, "medium": 1.5, "hd": 4.0, "full": None, "4k": None,
         "auto": None}
# remove.bg's foreground types -> our matte variant; "auto" is ours (portrait with a face, else object).
TYPES = {"auto": "auto", "person": "portrait", "product": "object", "animal": "object", "car": "object",
         "transportation": "object", "graphics": "object", "other": "object"}
FORMATS = ("auto", "png", "jpg", "zip")
CHANNELS = ("rgba", "alpha")
NAMED_COLOURS = {"white": "ffffff", "black": "000000", "red": "ff0000", "green": "008000", "blue": "0000ff",
                 "yellow": "ffff00", "gray": "808080", "grey": "808080", "silver": "c0c0c0", "orange": "ffa500",
                 "purple": "800080", "pink": "ffc0cb", "transparent": "00000000"}
HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
FULL_ROI = {"0% 0% 100% 100%", "0 0 100% 100%"}
ACCEPTED = {"image_file", "image_file_b64", "image_url", "bg_image_file", "bg_image_url", "size", "type",
            "type_level", "format", "roi", "crop", "crop_margin", "scale", "position", "channels", "add_shadow",
            "semitransparency", "bg_color"}
IMAGE_FIELDS = ("image_file", "bg_image_file")
# remove.bg answers 400 for any bad input, 402 for credits, 403 for authentication, 429 for rate limits.
STATUS = {401: 403, 408: 400, 409: 400, 413: 400, 415: 400, 422: 400}

router = APIRouter(tags=["remove.bg compatible"])
log = logging.getLogger(__name__)


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter")


@dataclass(frozen=True)
class Asked:
    """remove.bg's request as it came, before translation."""

    fields: dict[str, str]
    photo: Upload
    background: Upload | None


def _decoded_b64(text: str, max_bytes: int) -> Upload:
    if len(text) > max_bytes * 4 // 3 + 4:
        raise errors.PayloadTooLarge(f"image_file_b64 is over the limit of {max_bytes} bytes once decoded")
    try:
        return Upload(base64.b64decode(text.split(",", 1)[-1], validate=True), None)  # a data URL's prefix is ok
    except (binascii.Error, ValueError):
        raise _refuse("image_file_b64 is not valid base64; send the file's bytes base64-encoded") from None


async def _read(request: Request, settings: GatewaySettings) -> Asked:
    """remove.bg's request from a multipart form, a form-encoded body or a JSON body."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    b64_limit = settings.max_body_bytes * 4 // 3 + 4
    if media == "multipart/form-data":
        limits = dict.fromkeys(IMAGE_FIELDS, settings.max_body_bytes) | {
            name: b64_limit if name == "image_file_b64" else TEXT_FIELD_BYTES for name in ACCEPTED - set(IMAGE_FIELDS)}
        form = await read_form(request, settings.max_body_bytes, settings.upload_timeout_s, limits, IMAGE_FIELDS)
        _check_names(form.names)
        fields = {name: upload.data.decode("utf-8", "replace").strip() for name, upload in form.fields.items()
                  if name not in IMAGE_FIELDS}
        images = {name: form.fields[name] for name in IMAGE_FIELDS if name in form.fields}
    elif media in ("application/json", "application/x-www-form-urlencoded"):
        body = await read_body(request, b64_limit + 64 * 1024, settings.upload_timeout_s)
        fields = _json_fields(body) if media == "application/json" else dict(parse_qsl(body.decode("latin-1")))
        _check_names(tuple(fields))
        images = {}
    else:
        raise errors.UnsupportedMediaType(f"Content-Type {media[:64]!r} is not accepted here; send multipart/form-"
                                          "data with image_file, or image_file_b64 in a form or a JSON body",
                                          code="unsupported_media_type")
    for url in ("image_url", "bg_image_url"):
        if fields.get(url):
            raise _refuse(f"{url} is not supported: this service fetches nothing from the network; upload the file "
                          f"({url.replace('_url', '_file')})")
    if "image_file" in images and fields.get("image_file_b64"):
        raise _refuse("send either image_file or image_file_b64, not both")
    if "image_file" in images:
        photo = images["image_file"]
    elif fields.get("image_file_b64"):
        photo = _decoded_b64(fields["image_file_b64"], settings.max_body_bytes)
    else:
        raise _refuse("no image: send the photo as image_file (multipart) or image_file_b64")
    return Asked(fields, photo, images.get("bg_image_file"))


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _refuse("the JSON body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _refuse("the JSON body must be an object of remove.bg's fields")
    return {str(k): (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in parsed.items() if v is not None}


def _check_names(names: tuple[str, ...]) -> None:
    unknown = sorted(set(names) - ACCEPTED)
    if unknown:
        raise _refuse(f"unknown field(s) {', '.join(map(repr, unknown[:5]))}; remove.bg's fields are "
                      f"{', '.join(sorted(ACCEPTED))}")


def _choice(fields: dict[str, str], name: str, choices: tuple[str, ...] | dict, default: str) -> str:
    value = fields.get(name, default).lower() or default
    if value not in choices:
        raise _refuse(f"{name}={value[:32]!r} is not one of {', '.join(choices)}")
    return value


def _flag(fields: dict[str, str], name: str) -> bool:
    value = fields.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise _refuse(f"{name} must be true or false, not {value[:16]!r}")
    return value in ("true", "1")


def _colour(text: str) -> str:
    named = NAMED_COLOURS.get(text.lower())
    match = HEX.fullmatch(text)
    if named is None and match is None:
        raise _refuse(f"bg_color={text[:32]!r} is not a hex colour (81d4fa, fff, 81d4fa77) or a colour name "
                      f"({', '.join(sorted(NAMED_COLOURS))})")
    digits = named or match.group(1)
    return "".join(c * 2 for c in digits) if len(digits) == 3 else digits


def _unsupported(fields: dict[str, str]) -> None:
    if _flag(fields, "crop"):
        raise _refuse("crop=true is not supported; /v1/crop crops to an aspect, and the X-Foreground-* headers "
                      "give the subject's box to crop to")
    if _flag(fields, "add_shadow"):
        raise _refuse("add_shadow=true is not supported")
    if fields.get("scale", "original").lower() not in ("original", ""):
        raise _refuse("scale is not supported: only scale=original")
    if fields.get("position", "original").lower() not in ("original", "center", ""):
        raise _refuse("position is not supported: only position=original")
    if fields.get("roi", "0% 0% 100% 100%") not in FULL_ROI:
        raise _refuse("roi is not supported: only the whole photo (0% 0% 100% 100%)")
    _choice(fields, "type_level", ("none", "1", "2", "latest", ""), "latest")
    _flag(fields, "semitransparency")  # our mattes always keep soft edges


def _max_side(size: str, photo: Upload, settings: GatewaySettings) -> int:
    limit = SIZES[size]
    info = inspect_image(photo.data, settings.max_pixels, photo.declared_type)
    if limit is None or info.megapixels <= limit:
        return 0
    return max(1, math.floor(max(info.width, info.height) * math.sqrt(limit / info.megapixels)))


def translate(asked: Asked, settings: GatewaySettings) -> tuple[Operation, str, dict[str, Any], Upload]:
    """The operation, variant, query and upload that answer remove.bg's request."""
    fields = asked.fields
    _unsupported(fields)
    variant = TYPES[_choice(fields, "type", TYPES, "auto")]
    fmt = _choice(fields, "format", FORMATS, "auto")
    channels = _choice(fields, "channels", CHANNELS, "rgba")
    if fmt == "zip":
        raise _refuse("format=zip is not supported; ask for png (or channels=alpha for the matte alone)")
    colour = _colour(fields["bg_color"]) if fields.get("bg_color") else None
    if channels == "alpha":
        name, query = "mask", {}
    elif asked.background is not None or colour is not None or fmt == "jpg":
        name, query = "background", {"color": None if asked.background else (colour or "ffffff")}
    else:
        name, query = "cutout", {}
    operation = PRODUCT.operation(name)
    transparent = name in ("cutout", "mask") or (colour is not None and len(colour) == 8 and not colour.endswith("ff"))
    ours = "jpeg" if fmt == "jpg" or (fmt == "auto" and not transparent) else "png"
    values = {p.name: p.default for p in operation.parameters} | query | {
        "format": ours, "max_side": _max_side(_choice(fields, "size", SIZES, "auto"), asked.photo, settings)}
    parts = {"background": asked.background} if name == "background" and asked.background else {}
    return operation, variant, values, Upload(asked.photo.data, asked.photo.declared_type, parts)


def _size_headers(body: bytes) -> dict[str, str]:
    """X-Width and X-Height of the result, read from its header (our own encoder's output)."""
    try:
        info = inspect_image(body, 2**31)
    except errors.ApiError as error:  # never the caller's fault: log it, answer without the two headers
        log.warning("removebg: cannot read the size of a %d-byte result: %s", len(body), error.message)
        return {}
    return {"X-Width": str(info.width), "X-Height": str(info.height)}


def _answer(served: Response, request: Request, foreground_type: str) -> Response:
    body = bytes(served.body)
    box = {side: served.headers.get(f"X-Foreground-{side.capitalize()}", "0") for side in
           ("top", "left", "width", "height")}
    headers = {name: value for name, value in served.headers.items() if name.lower() != "content-length"}
    headers |= {"X-Type": foreground_type, **_size_headers(body)}
    headers |= {f"X-RateLimit-{part}": served.headers[f"RateLimit-{part}"] for part in ("Limit", "Remaining", "Reset")
                if f"RateLimit-{part}" in served.headers}
    if "application/json" in request.headers.get("accept", ""):
        data = {"result_b64": base64.b64encode(body).decode("ascii"),
                **{f"foreground_{side}": int(value) for side, value in box.items()}}
        headers.pop("content-type", None)
        return JSONResponse({"data": data}, headers=headers)
    return Response(body, media_type=served.media_type, headers=headers)


def _openapi() -> tuple[dict, dict]:
    """The request body and the answers, as remove.bg documents them (errors in its shape)."""
    binary = {"type": "string", "format": "binary"}
    text = {name: {"type": "string"} for name in sorted(ACCEPTED - set(IMAGE_FIELDS))}
    fields = {"type": "object", "properties": text}
    body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {**fields, "properties": {**text, **dict.fromkeys(IMAGE_FIELDS, binary)}}},
        "application/json": {"schema": fields},
        "application/x-www-form-urlencoded": {"schema": fields},
    }}}
    error = {"content": {"application/json": {"schema": {"type": "object", "properties": {"errors": {
        "type": "array", "items": {"type": "object", "properties": {"title": {"type": "string"},
                                                                     "code": {"type": "string"}}}}}}}}}
    answers = {200: {"description": "The result: PNG or JPEG, or JSON with Accept: application/json",
                     "content": {"image/png": {"schema": binary}, "image/jpeg": {"schema": binary},
                                 "application/json": {"schema": {"type": "object"}}}},
               **{status: {"description": text, **error} for status, text in (
                   (400, "Bad input: a parameter, an unsupported field or value, or the image"),
                   (402, "Not enough credits"), (403, "Missing or unknown API key, or the operation is not allowed"),
                   (429, "Rate limited"), (503, "Inference unavailable"), (504, "Inference timed out"))}}
    return body, answers


REQUEST_BODY, ANSWERS = _openapi()


@router.post(PATH, summary="remove.bg API v1.0 compatible background removal", response_class=Response,
             description="remove.bg's request and answer, on our models and billing: docs/removebg.md maps "
                         "every field. Authentication with the X-Api-Key header, as remove.bg's.",
             openapi_extra=REQUEST_BODY, responses=ANSWERS)
async def removebg(call: ImageCallDep) -> Response:
    settings = call.settings
    asked: list[Asked] = []

    async def read() -> tuple[Operation, str, dict[str, Any], Upload]:
        asked.append(await _read(call.request, settings))
        return translate(asked[0], settings)

    served = await serve(call, PRODUCT, None, "", {}, {}, read=read)
    type_asked = asked[0].fields.get("type", "auto").lower() or "auto"
    if TYPES[type_asked] == "auto":  # what our choice found; we do not tell products from animals or cars
        found = {"person": "person", "object": "other"}[served.headers["X-Subject"]]
    else:
        found = "person" if TYPES[type_asked] == "portrait" else type_asked
    return _answer(served, call.request, found)


def error_body(status: int, code: str, message: str) -> tuple[int, dict]:
    """remove.bg's error answer for one of ours."""
    return STATUS.get(status, status), {"errors": [{"title": message, "code": code}]}


errors.COMPATIBLE_ERRORS[PATH] = error_body
