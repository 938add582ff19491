"""The output format of an image result: the ``format`` parameter, or else the ``Accept`` header.

``format=auto`` (the default) takes the first of the product's formats that the ``Accept`` header names
explicitly, by quality value and then order, and that can carry the result (JPEG has no alpha); wildcards
(``*/*``, ``image/*``) and an absent header give PNG, the lossless default. An explicit ``format=jpeg`` for
a result that always has an alpha channel is refused with the formats that can carry it.
"""

from __future__ import annotations

from typing import Any

from contract.product import FORMAT, PRODUCT
from contract.schema import Operation
from gateway.errors import BadRequest

DEFAULT_FORMAT = "png"
OPAQUE_ONLY = ("jpeg",)


def _accepted(accept: str) -> list[str]:
    """Media types the header names explicitly, best first (quality, then order); q=0 excluded."""
    ranked = []
    for position, item in enumerate(accept.split(",")[:32]):
        media, *params = (piece.strip() for piece in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def output_format(operation: Operation, query: dict[str, Any], accept: str) -> str:
    """The format the result is encoded in ("" for an operation without one, e.g. a JSON result);
    ``query[format]`` is set to it, so the compose step and the idempotency fingerprint see the choice."""
    if operation.parameter(FORMAT.name) is None:
        return ""
    chosen = query[FORMAT.name]
    if chosen == "auto":
        by_media = {media: fmt for fmt, media in PRODUCT.formats.items()}
        fits = [by_media[media] for media in _accepted(accept) if media in by_media]
        fits = [fmt for fmt in fits if not (operation.output.transparent and fmt in OPAQUE_ONLY)]
        chosen = fits[0] if fits else DEFAULT_FORMAT
    elif operation.output.transparent and chosen in OPAQUE_ONLY:
        raise BadRequest(f"format={chosen} cannot carry the alpha channel of /{operation.name}'s result; use "
                         "format=webp (smaller) or format=png (lossless)", code="invalid_parameter")
    query[FORMAT.name] = chosen
    return chosen
