"""What the calls return: the result's bytes or JSON, and what the answer's headers say about it and its bill.

Every answer carries ``request_id`` (``X-Request-Id``: this request's id, in the service's access log; quote it
when asking the operator), and a billed one ``charge_id`` (``X-Charge-Id``: the ledger row that billed it, the
first request's for an idempotent replay), ``credits_charged`` / ``credits_remaining`` (``X-Credits-*``),
``replayed`` (``Idempotent-Replayed``: a retry that was not billed again) and the key's rate-limit bucket
(``RateLimit-*``). An image result adds the operation's own headers,
parsed: ``depth_near``/``depth_far`` (depth, bokeh), ``matte_refined`` and ``foreground_box`` (mask, cutout,
background: the subject's ``(x, y, width, height)`` in pixels of the result), ``crop_box`` (crop,
``(x, y, width, height)`` in pixels of the upright photo), ``subject`` (every operation on a matte: ``person``
or ``object``, what ``model=auto`` chose), ``faces`` (mask, select: the faces found) and ``selected`` (select,
and erase at a tap: ``region``, ``person``, ``object`` or the face part under the tap).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from PIL import Image


def _decode(content: bytes) -> Image.Image:
    try:
        from PIL import Image
    except ImportError as error:  # the [images] extra
        raise ImportError("decoding results needs Pillow: pip install 'imageserve-client[images]'") from error
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str) -> float:
    return float(value)


def _flag(value: str) -> bool:
    return value.strip() == "1"


def _whole(value: str) -> int:
    return round(float(value))


def _box(value: str) -> tuple[int, int, int, int]:
    x, y, w, h = (_whole(v) for v in value.split(","))
    return x, y, w, h


def _label(value: str) -> str:
    return value.strip()


# Each operation header of operations.py -> the ImageResult field it fills and how it is read. A header the
# tables name and this does not is a test failure (tests/unit/test_python_client.py), not a silent drop.
HEADER_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "X-Depth-Near": ("depth_near", _float),
    "X-Depth-Far": ("depth_far", _float),
    "X-Matte-Refined": ("matte_refined", _flag),
    "X-Crop-Box": ("crop_box", _box),
    "X-Foreground-Left": ("foreground_left", _whole),
    "X-Foreground-Top": ("foreground_top", _whole),
    "X-Foreground-Width": ("foreground_width", _whole),
    "X-Foreground-Height": ("foreground_height", _whole),
    "X-Subject": ("subject", _label),
    "X-Faces": ("faces", _whole),
    "X-Selected": ("selected", _label),
}


@dataclass(frozen=True)
class RateLimit:
    """The key's token bucket after this request (``RateLimit-Limit/Remaining/Reset``)."""

    limit: int | None
    remaining: int | None
    reset_s: int | None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What every answer says beside its body."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    request_id: str | None
    charge_id: str | None = None
    credits_charged: int | None = None
    credits_remaining: int | None = None
    replayed: bool = False
    rate_limit: RateLimit | None = None
    attempts: int = 1  # requests this call made (more than 1 when 429/503 were retried)

    @staticmethod
    def fields_from(response: httpx.Response, attempts: int) -> dict[str, Any]:
        headers = response.headers
        rate = RateLimit(_int(headers.get("ratelimit-limit")), _int(headers.get("ratelimit-remaining")),
                         _int(headers.get("ratelimit-reset")))
        return {
            "status": response.status_code,
            "headers": dict(headers),
            "request_id": headers.get("x-request-id"),
            "charge_id": headers.get("x-charge-id"),
            "credits_charged": _int(headers.get("x-credits-charged")),
            "credits_remaining": _int(headers.get("x-credits-remaining")),
            "replayed": headers.get("idempotent-replayed", "").lower() == "true",
            "rate_limit": rate if rate != RateLimit(None, None, None) else None,
            "attempts": attempts,
        }


@dataclass(frozen=True, kw_only=True)
class ImageResult(Answer):
    """An image operation's result: ``content`` in ``media_type``; ``image()`` decodes it with Pillow."""

    operation: str
    content: bytes = field(repr=False)
    media_type: str
    depth_near: float | None = None
    depth_far: float | None = None
    matte_refined: bool | None = None
    crop_box: tuple[int, int, int, int] | None = None
    foreground_left: int | None = None
    foreground_top: int | None = None
    foreground_width: int | None = None
    foreground_height: int | None = None
    subject: str | None = None  # person | object
    faces: int | None = None  # faces found (at most 8); 0: the face layers are empty
    selected: str | None = None  # region | person | object | face | eyes | irises | brows | lips | mouth | hair

    @classmethod
    def from_response(cls, operation: str, headers: tuple[str, ...], response: httpx.Response,
                      attempts: int) -> ImageResult:
        parsed = {}
        for name in headers:
            value = response.headers.get(name)
            if value is not None:
                attribute, parse = HEADER_FIELDS[name]
                parsed[attribute] = parse(value)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return cls(operation=operation, content=response.content, media_type=media_type, **parsed,
                   **Answer.fields_from(response, attempts))

    @property
    def foreground_box(self) -> tuple[int, int, int, int] | None:
        """The subject's bounding box (x, y, width, height) in pixels of the result (mask, cutout, background);
        width 0 when the matte is empty."""
        box = (self.foreground_left, self.foreground_top, self.foreground_width, self.foreground_height)
        return None if None in box else box  # type: ignore[return-value]

    @property
    def format(self) -> str:
        """``png``, ``webp`` or ``jpeg``."""
        return self.media_type.rsplit("/", 1)[-1]

    def image(self) -> Image.Image:
        """The result decoded (needs Pillow): mode ``I;16`` for a 16-bit depth PNG, ``L`` for a matte or an
        8-bit depth map, ``RGBA`` for a cutout, ``RGB`` (or ``RGBA`` with a transparent colour) for edits."""
        return _decode(self.content)

    def save(self, path: str | Path) -> Path:
        """Write ``content`` to ``path`` as it came (no re-encoding); returns the path."""
        target = Path(path)
        target.write_bytes(self.content)
        return target


@dataclass(frozen=True, kw_only=True)
class LayersResult(Answer):
    """``/v1/layers``: the sizes, the depth range and each requested layer as PNG bytes (byte for byte the
    separate calls' PNGs). ``faces`` (with ``include=faces``) lists every face found in pixels of the upright
    photo: ``box`` [x, y, w, h], ``score``, ``keypoints`` [[x, y] * 6], ``landmarks`` [[x, y] * 468] and
    ``irises`` ([[x, y] * 5] per eye, the centre first), those two None when not found. ``subject`` and
    ``face_count`` are the ``X-Subject`` and ``X-Faces`` headers. ``data`` is the JSON as sent, the layers
    still base64."""

    width: int
    height: int
    photo_width: int | None
    photo_height: int | None
    depth_near: float | None
    depth_far: float | None
    layers: dict[str, bytes] = field(repr=False)
    faces: list[dict[str, Any]] | None = field(default=None, repr=False)
    subject: str | None = None
    face_count: int | None = None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, response: httpx.Response, attempts: int) -> LayersResult:
        data = json.loads(response.content)
        layers = {name: base64.b64decode(text, validate=True) for name, text in data.get("layers", {}).items()}
        subject, faces = response.headers.get("x-subject"), response.headers.get("x-faces")
        return cls(width=int(data["width"]), height=int(data["height"]), photo_width=data.get("photo_width"),
                   photo_height=data.get("photo_height"), depth_near=data.get("depth_near"),
                   depth_far=data.get("depth_far"), layers=layers, faces=data.get("faces"),
                   subject=None if subject is None else _label(subject),
                   face_count=None if faces is None else _whole(faces), data=data,
                   **Answer.fields_from(response, attempts))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.layers)

    def image(self, name: str) -> Image.Image:
        """One layer decoded (needs Pillow): ``depth`` I;16, ``matte`` L, ``foreground`` RGBA, ``background`` RGB,
        ``person`` and the face layers (``face``, ``eyes``, ``irises``, ``brows``, ``lips``, ``mouth``, ``hair``)
        L; ``faces`` is not an image but ``self.faces``."""
        if name not in self.layers:
            hint = " (faces is JSON: read result.faces)" if name == "faces" else " (ask with include=...)"
            raise KeyError(f"no layer {name!r} in this result; it has {list(self.layers)}{hint}")
        return _decode(self.layers[name])

    def images(self) -> dict[str, Image.Image]:
        return {name: self.image(name) for name in self.layers}


@dataclass(frozen=True)
class UsageRow:
    day: str
    operation: str
    requests: int
    credits: int
    input_megapixels: float
    output_bytes: int


@dataclass(frozen=True, kw_only=True)
class UsageReport(Answer):
    """``/v1/usage``: the tenant's committed usage per UTC day and operation, and its balance."""

    tenant: str
    balance: int
    days: int
    usage: tuple[UsageRow, ...]

    @classmethod
    def from_response(cls, response: httpx.Response, attempts: int) -> UsageReport:
        data = json.loads(response.content)
        rows = tuple(UsageRow(**{name: row[name] for name in UsageRow.__dataclass_fields__}) for row in data["usage"])
        return cls(tenant=data["tenant"], balance=int(data["balance"]), days=int(data["days"]), usage=rows,
                   **Answer.fields_from(response, attempts))
