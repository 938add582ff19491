"""The shape of the operation tables in ``operations.py``: what the client sends and what it reads back.

``operations.py`` is generated from the gateway's OpenAPI document (``python -m imageserve_client.codegen``);
these classes are the vocabulary it is written in, and the part of the document the client relies on:
each operation's path and method, its query parameters (JSON-schema type, default, enum, bounds, pattern),
its further image parts beside the photo, its own response headers and the media types it answers with.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

PHOTO_FIELD = "image"  # the multipart field of the photo, when the request is a form
# Response headers every billed image answer carries; an operation's ``headers`` are the others it declares.
COMMON_HEADERS = ("X-Request-Id", "X-Charge-Id", "X-Credits-Charged", "X-Credits-Remaining", "Idempotent-Replayed",
                  "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
TAGS = ("images", "account")  # the document's tags of the routes the tables cover (not health, readiness, metrics)


@dataclass(frozen=True)
class Param:
    """One query parameter as the OpenAPI document declares it.

    ``type`` is the JSON-schema type (``integer``, ``number`` or ``string``); ``default`` is the server's
    default, ``None`` when leaving it out means "not given" (e.g. bokeh's focus point: the subject).
    The client sends only the parameters a caller gives, so the server's defaults always apply.
    """

    name: str
    type: str
    default: Any = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str = ""

    def encode(self, value: object) -> str:
        """The query-string form of ``value``; a ``TypeError`` for a value of the wrong kind."""
        if isinstance(value, bool):
            raise TypeError(f"{self.name} must be {self.type}, not a bool")
        if self.type == "integer":
            if not hasattr(value, "__index__"):  # int, numpy integers; not 2.5 or "3"
                raise TypeError(f"{self.name} must be an integer, not {type(value).__name__}")
            return str(operator.index(value))  # type: ignore[arg-type]
        if self.type == "number":
            if isinstance(value, str | bytes) or not hasattr(value, "__float__"):
                raise TypeError(f"{self.name} must be a number, not {type(value).__name__}")
            number = float(value)  # type: ignore[arg-type]
            return str(int(number)) if number.is_integer() else repr(number)
        if not isinstance(value, str):
            raise TypeError(f"{self.name} must be a string, not {type(value).__name__}")
        return value


@dataclass(frozen=True)
class Operation:
    """One route: ``method`` ``path`` with its query ``params``.

    ``parts`` are the image fields a multipart request may carry beside the photo (``background``);
    ``headers`` the response headers particular to the operation (``X-Depth-Near``, ``X-Crop-Box``...);
    ``media_types`` what a 200 answer may be (``application/json`` for ``layers``).
    """

    name: str
    method: str
    path: str
    params: tuple[Param, ...]
    parts: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()

    @property
    def takes_photo(self) -> bool:
        return self.method == "POST"

    @property
    def json_result(self) -> bool:
        return self.media_types == ("application/json",)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"{self.name} has no parameter {name!r}; it has {[p.name for p in self.params]}")
