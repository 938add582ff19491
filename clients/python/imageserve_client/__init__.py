"""Python client for the imageserve photo API: depth maps, mattes, cutouts, backgrounds, bokeh, tone, crops,
face and part layers, and selection at a tap.

    from imageserve_client import Client

    with Client("http://127.0.0.1:8080", api_key) as client:
        result = client.bokeh("me.jpg", aperture=6, format="jpeg")
        result.save("bokeh.jpg")
        print(result.credits_charged, result.credits_remaining, result.request_id)

``AsyncClient`` has the same methods, awaited. Errors are ``ImageserveError`` subclasses (``errors``);
the operations and their parameters are ``operations.OPERATIONS``, generated from the service's OpenAPI.
"""

from ._request import Photo, Retry
from .client import AsyncClient, Client, __version__
from .errors import (
    BadImage,
    BadRequest,
    Conflict,
    Forbidden,
    ImageserveError,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .operations import OPERATIONS
from .results import Answer, ImageResult, LayersResult, RateLimit, UsageReport, UsageRow

__all__ = [
    "OPERATIONS",
    "Answer",
    "AsyncClient",
    "BadImage",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "ImageResult",
    "ImageserveError",
    "LayersResult",
    "NotFound",
    "PayloadTooLarge",
    "PaymentRequired",
    "Photo",
    "RateLimit",
    "RateLimited",
    "Retry",
    "ServerError",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UsageReport",
    "UsageRow",
    "__version__",
]
