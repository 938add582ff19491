"""OpenAPI documentation of the image routes, derived from the product declaration and the error classes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from contract.product import FORMAT, PRODUCT
from contract.schema import Operation, Product
from gateway.errors import ErrorBody, ServiceUnavailable, TooManyRequests, error_classes
from gateway.image_check import MEDIA_TYPES

IDEMPOTENCY_KEY_MAX = 255


def _header(description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry of the same request within 24 hours return the first request's charge "
                   "instead of billing again (1-255 printable ASCII characters, e.g. a UUID).",
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
}


def image_body(operation: Operation) -> dict[str, Any]:
    """The request body: the photo raw, or a multipart form with ``image`` and the operation's image parts."""
    binary = {"type": "string", "format": "binary"}
    parts = {part.name: {**binary, "description": part.description} for part in operation.image_parts}
    described = "".join(f", and the optional field `{part.name}` ({part.description})"
                        for part in operation.image_parts)
    return {
        "requestBody": {
            "required": True,
            "description": f"The photo as the raw body, or as the field `image` of a multipart form{described}.",
            "content": {
                **{media: {"schema": binary} for media in MEDIA_TYPES.values()},
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["image"], "properties": {"image": binary, **parts}},
                },
            },
        },
        "parameters": [IDEMPOTENCY_HEADER],
    }


RETRY_AFTER = {"Retry-After": _header("Seconds to wait before retrying", "integer")}
RATE_HEADERS = {name: _header(text, "integer") for name, text in {
    "RateLimit-Limit": "Token bucket size of this key",
    "RateLimit-Remaining": "Requests left in the bucket",
    "RateLimit-Reset": "Seconds until the bucket is full again",
}.items()}
BILLING_HEADERS = {
    "X-Request-Id": _header("Id of this request (the client's X-Request-Id when valid); in the access log and in "
                            "error bodies"),
    "X-Charge-Id": _header("Id of the ledger row that billed this answer (the first request's for an idempotent "
                           "replay)"),
    "X-Credits-Charged": _header("Credits billed for this request", "integer"),
    "X-Credits-Remaining": _header("The tenant's balance after this request", "integer"),
    "Idempotent-Replayed": _header("'true' when this answers a retry that was not billed again"),
}


def _error_headers(status: int) -> dict[str, Any]:
    if status == TooManyRequests.status_code:
        return {**RETRY_AFTER, **RATE_HEADERS}
    return RETRY_AFTER if status == ServiceUnavailable.status_code else {}


ERRORS = {
    cls.status_code: {"model": ErrorBody, "description": cls.description,
                      **({"headers": headers} if (headers := _error_headers(cls.status_code)) else {})}
    for cls in error_classes() if cls.documented
}


def responses(operation: Operation) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of ``operation`` (media type, headers) and every documented error."""
    headers = {**BILLING_HEADERS, **RATE_HEADERS}
    for output in operation.header_outputs:
        for name, text in output.headers:
            if output.labels:  # a word for each value, e.g. X-Subject: person
                headers[name] = {"description": text, "schema": {"type": "string", "enum": list(output.labels)}}
            else:  # a joined header holds several numbers: "x,y,w,h"; "{:.0f}" writes whole numbers
                kind = "string" if output.join else "integer" if output.format == "{:.0f}" else "number"
                headers[name] = _header(text, kind)
    if operation.parameter(FORMAT.name) is None:
        media_types = [operation.output.media_type]
    else:
        media_types = [media for fmt, media in PRODUCT.formats.items()
                       if not (operation.output.transparent and fmt == "jpeg")]
    schema = {"type": "object"} if operation.output.media_type == "application/json" else \
        {"type": "string", "format": "binary"}
    ok = {
        "content": {media: {"schema": schema} for media in media_types},
        "description": operation.output.description,
        "headers": headers,
    }
    return {200: ok, **ERRORS}


def document_alternative_defaults(app: FastAPI, product: Product) -> None:
    """A one_of alternative with a default (style's built-in style) is a query parameter without one, so that
    "not sent" can be told apart (``routes.images``): the document still states the declared default."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operation in product.operations:
            defaults = {name: operation.parameter(name).default for group in operation.one_of for name in group
                        if operation.parameter(name) is not None and operation.parameter(name).default is not None}
            for parameter in schema["paths"][product.path(operation)]["post"]["parameters"]:
                if parameter["name"] in defaults:
                    parameter["schema"]["default"] = defaults[parameter["name"]]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
