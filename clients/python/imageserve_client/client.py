"""``Client`` and ``AsyncClient``: one method per operation of the service, over httpx.

Each method takes the photo (bytes, a path, a binary file object or a PIL image) and the operation's query
parameters as keyword arguments, exactly those of the gateway's OpenAPI document (``operations.py``, checked
by the service's test suite). A parameter left as None is not sent, so the service's default applies; only
``select``'s tap (``x``, ``y``) must be given (``erase`` takes a tap or a ``mask``), and ``points`` and
``negative`` may be ``(x, y)`` pairs, joined here. The answer is an ``ImageResult`` (``LayersResult`` for
``layers``, ``UsageReport`` for ``usage``); a failure is raised as an ``ImageserveError`` subclass (``errors.py``).

Retries (``Retry``): 429 and 503 answers with ``Retry-After`` are sent again after that wait, within a bound
on retries and on total waiting, with the same ``Idempotency-Key`` on every attempt (one is made per call
when the caller gives none), so a call is billed at most once however often it is sent.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from ._request import Photo, Prepared, Retry, join_points, prepare
from .errors import from_response, from_transport, retry_after_s
from .results import ImageResult, LayersResult, UsageReport

__version__ = "0.1.0"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 60.0  # the service's request budget is 30 s, plus the upload

Model = Literal["auto", "fast", "portrait", "object", "object-lite"]  # auto: portrait when a face is found
Format = Literal["auto", "png", "webp", "jpeg"]
Fit = Literal["cover", "contain"]
AdjustBy = Literal["matte", "depth"]
Style = Literal["golden-pastel", "bold-lines", "soft-sketch", "shards", "crimson-pastel", "autumn", "night-spots",
                "flames", "watercolour", "mosaic", "sepia-oil", "ink-gold", "lavender", "cubist-green", "frost",
                "stained-glass", "blue-impasto", "bricks", "etching", "starry", "fauve-red", "pastel-blocks",
                "charcoal", "dark-wash", "blue-etching", "patchwork"]
Keep = Literal["none", "person"]
UpscaleModel = Literal["quality", "sharp", "fast"]
Scale = Literal[2, 4]
Layer = Literal["subject", "person", "face", "eyes", "irises", "brows", "lips", "mouth", "hair", "background"]
Points = str | Sequence[tuple[int, int]]  # "x,y;x,y" or [(x, y), ...] in pixels of the upright photo


class _Base:
    """Configuration and everything that does not wait on the network."""

    def __init__(self, base_url: str | None, api_key: str | None, retry: Retry | None, auto_idempotency_key: bool,
                 headers: Mapping[str, str] | None) -> None:
        self.base_url = (base_url or os.environ.get("IMAGESERVE_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("IMAGESERVE_API_KEY")
        self.retry = retry or Retry()
        self.auto_idempotency_key = auto_idempotency_key
        self._headers = {"User-Agent": f"imageserve-client/{__version__} httpx/{httpx.__version__}",
                         **({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}

    def _prepare(self, name: str, arguments: dict[str, Any]) -> Prepared:
        return prepare(name, arguments, arguments.get("photo"), arguments.get("idempotency_key"),
                       self.auto_idempotency_key)

    def _delay(self, response: httpx.Response, attempts: int, waited_s: float) -> float | None:
        return self.retry.delay(response.status_code, retry_after_s(response.headers.get("retry-after")), attempts,
                                waited_s)

    @staticmethod
    def _result(prepared: Prepared, response: httpx.Response, attempts: int) -> Any:
        operation = prepared.operation
        if operation.name == "usage":
            return UsageReport.from_response(response, attempts)
        if operation.json_result:
            return LayersResult.from_response(response, attempts)
        return ImageResult.from_response(operation.name, operation.headers, response, attempts)


class Client(_Base):
    """The service, synchronously. ``Client(base_url, api_key)``; both default to the environment
    (``IMAGESERVE_URL``, ``IMAGESERVE_API_KEY``), the URL then to ``http://127.0.0.1:8080``.

    ``transport`` (an ``httpx.BaseTransport``, e.g. ``httpx.MockTransport``) and ``sleep`` are for tests.
    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S, retry: Retry | None = None,
                 auto_idempotency_key: bool = True, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(base_url, api_key, retry, auto_idempotency_key, headers)
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, prepared: Prepared) -> tuple[httpx.Response, int]:
        attempts, waited_s = 0, 0.0
        while True:
            attempts += 1
            try:
                response = self._http.request(prepared.operation.method, prepared.operation.path,
                                              **prepared.request_arguments())
            except httpx.TransportError as error:
                raise from_transport(error, attempts) from error
            if response.is_success:
                return response, attempts
            delay = self._delay(response, attempts, waited_s)
            if delay is None:
                raise from_response(response, attempts)
            self._sleep(delay)
            waited_s += delay

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        prepared = self._prepare(name, arguments)
        response, attempts = self._send(prepared)
        return self._result(prepared, response, attempts)

    def depth(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
              format: Format | None = None, quality: int | None = None,
              idempotency_key: str | None = None) -> ImageResult:
        """Depth map, near = bright: 16-bit greyscale PNG (8-bit in WebP/JPEG); ``depth_near``/``depth_far``
        give the scale: ``d = far - pixel / 65535 * (far - near)``."""
        return self._call("depth", locals())

    def mask(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
             format: Format | None = None, quality: int | None = None, layer: Layer | None = None,
             idempotency_key: str | None = None) -> ImageResult:
        """The subject's 8-bit alpha matte; ``matte_refined`` says whether it was refined against the photo,
        ``subject`` whether it shows a ``person`` or an ``object``. ``layer`` asks for another 8-bit mask of the
        photo's size: ``person`` (the matte when it shows a person, else empty), a face part (``face``, ``eyes``,
        ``irises``, ``brows``, ``lips``, ``mouth``, ``hair``: empty when ``faces`` is 0) or ``background``."""
        return self._call("mask", locals())

    def cutout(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
               format: Format | None = None, quality: int | None = None,
               idempotency_key: str | None = None) -> ImageResult:
        """RGBA: the subject with the matte as alpha (PNG or WebP)."""
        return self._call("cutout", locals())

    def background(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                   format: Format | None = None, quality: int | None = None, color: str | None = None,
                   blur: float | None = None, fit: Fit | None = None, background: Photo | None = None,
                   idempotency_key: str | None = None) -> ImageResult:
        """The photo on a new background: exactly one of ``color`` (hex RRGGBB or RRGGBBAA), ``blur`` (radius
        in px) or ``background`` (an image: bytes, path, file or PIL image; ``fit`` cover or contain)."""
        return self._call("background", locals())

    def bokeh(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
              format: Format | None = None, quality: int | None = None, focus_x: int | None = None,
              focus_y: int | None = None, focus_depth: float | None = None, aperture: float | None = None,
              idempotency_key: str | None = None) -> ImageResult:
        """Depth of field: focus on ``focus_x``/``focus_y`` (pixels of the upright photo), on ``focus_depth``
        (0-1, 1 nearest) or by default the subject; ``aperture`` 0-10."""
        return self._call("bokeh", locals())

    def adjust(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
               format: Format | None = None, quality: int | None = None, by: AdjustBy | None = None,
               fg_brightness: float | None = None, fg_contrast: float | None = None,
               fg_saturation: float | None = None, bg_brightness: float | None = None,
               bg_contrast: float | None = None, bg_saturation: float | None = None, ramp_near: float | None = None,
               ramp_far: float | None = None, idempotency_key: str | None = None) -> ImageResult:
        """Foreground and background toned separately (each -1..1), split by the matte or, ``by="depth"``,
        by a ramp from ``ramp_far`` to ``ramp_near``."""
        return self._call("adjust", locals())

    def crop(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
             format: Format | None = None, quality: int | None = None, aspect: str | None = None,
             width: int | None = None, height: int | None = None,
             idempotency_key: str | None = None) -> ImageResult:
        """Smart crop to ``aspect="W:H"`` or to ``width`` and ``height``; ``crop_box`` is (x, y, w, h)."""
        return self._call("crop", locals())

    def style(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
              format: Format | None = None, quality: int | None = None, style: Style | None = None,
              strength: float | None = None, keep: Keep | None = None, style_image: Photo | None = None,
              idempotency_key: str | None = None) -> ImageResult:
        """The photo restyled with one of the built-in ``style`` names (see the service's /docs), or in the style
        of any picture ``style_image`` (bytes, path, file or PIL image; not with ``style``), mixed in by
        ``strength`` (0-1); ``keep="person"`` styles only the background."""
        return self._call("style", locals())

    def upscale(self, photo: Photo, *, model: UpscaleModel | None = None, scale: Scale | None = None,
                format: Format | None = None, quality: int | None = None,
                idempotency_key: str | None = None) -> ImageResult:
        """The photo enlarged ``scale`` (2 or 4) times on each side; priced by the result's megapixels."""
        return self._call("upscale", locals())

    def erase(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
              format: Format | None = None, quality: int | None = None, x: int | None = None, y: int | None = None,
              points: Points | None = None, negative: Points | None = None, mask: Photo | None = None,
              idempotency_key: str | None = None) -> ImageResult:
        """The photo with a region filled from its surroundings; give exactly one of ``mask`` (an image of the
        photo's aspect ratio: bytes, path, file or PIL image; white marks what to remove) or a tap ``x``, ``y``
        (pixels of the upright photo; ``points`` and ``negative`` as in ``select``), which erases what ``select``
        with the matte of ``model`` selects there. ``selected`` says what that was (``region``, ``person``,
        ``object`` or a face part); it is None with a ``mask``, where ``model`` is unused."""
        points, negative = join_points(points, "points"), join_points(negative, "negative")
        return self._call("erase", locals())

    def layers(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
               include: str | None = None, idempotency_key: str | None = None) -> LayersResult:
        """Depth, matte, foreground and background (or those ``include`` names, comma-separated, of these and
        ``person``, ``face``, ``eyes``, ``irises``, ``brows``, ``lips``, ``mouth``, ``hair``) as PNG bytes from
        one call: ``result.layers["matte"]``, ``result.image("foreground")``; ``faces`` in ``include`` adds
        ``result.faces``, every face's box, keypoints, landmarks and irises."""
        return self._call("layers", locals())

    def select(self, photo: Photo, *, x: int, y: int, model: Model | None = None, max_side: int | None = None,
               format: Format | None = None, quality: int | None = None, points: Points | None = None,
               negative: Points | None = None, idempotency_key: str | None = None) -> ImageResult:
        """The 8-bit mask of what is under the tap at ``x``, ``y`` (pixels of the upright photo): a face part,
        the subject's matte, or else the region grown from the tap; ``points`` are more taps on the same thing and
        ``negative`` taps on what must not be selected (``[(x, y), ...]`` or ``"x,y;x,y"``). ``selected`` says
        what was chosen (``region``, ``person``, ``object`` or a face part)."""
        points, negative = join_points(points, "points"), join_points(negative, "negative")
        return self._call("select", locals())

    def usage(self, *, days: int | None = None) -> UsageReport:
        """The tenant's usage per UTC day and operation over the last ``days`` (default 30), and its balance."""
        return self._call("usage", locals())

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: the gateway process is alive."""
        response = self._get("/healthz")
        if not response.is_success:
            raise from_response(response)
        return response.json()

    def ready(self) -> dict[str, Any]:
        """``GET /readyz``: ``{"status": "ready"|"degraded"|"not_ready", "models": {...}, "missing": [...]}``
        (a 503 ``not_ready`` is returned, not raised)."""
        response = self._get("/readyz")
        if not response.is_success and response.status_code != 503:
            raise from_response(response)
        return response.json()

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._http.get(path)
        except httpx.TransportError as error:
            raise from_transport(error) from error


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncClient(_Base):
    """The service, asynchronously (``await client.mask(photo)``): the same methods and arguments as ``Client``.
    Use it as ``async with AsyncClient(...) as client``, or ``await client.aclose()``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S, retry: Retry | None = None,
                 auto_idempotency_key: bool = True, headers: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep) -> None:
        super().__init__(base_url, api_key, retry, auto_idempotency_key, headers)
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, prepared: Prepared) -> tuple[httpx.Response, int]:
        attempts, waited_s = 0, 0.0
        while True:
            attempts += 1
            try:
                response = await self._http.request(prepared.operation.method, prepared.operation.path,
                                                    **prepared.request_arguments())
            except httpx.TransportError as error:
                raise from_transport(error, attempts) from error
            if response.is_success:
                return response, attempts
            delay = self._delay(response, attempts, waited_s)
            if delay is None:
                raise from_response(response, attempts)
            await self._sleep(delay)
            waited_s += delay

    async def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        prepared = self._prepare(name, arguments)
        response, attempts = await self._send(prepared)
        return self._result(prepared, response, attempts)

    async def depth(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                    format: Format | None = None, quality: int | None = None,
                    idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.depth``."""
        return await self._call("depth", locals())

    async def mask(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                   format: Format | None = None, quality: int | None = None, layer: Layer | None = None,
                   idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.mask``."""
        return await self._call("mask", locals())

    async def cutout(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                     format: Format | None = None, quality: int | None = None,
                     idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.cutout``."""
        return await self._call("cutout", locals())

    async def background(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                         format: Format | None = None, quality: int | None = None, color: str | None = None,
                         blur: float | None = None, fit: Fit | None = None, background: Photo | None = None,
                         idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.background``."""
        return await self._call("background", locals())

    async def bokeh(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                    format: Format | None = None, quality: int | None = None, focus_x: int | None = None,
                    focus_y: int | None = None, focus_depth: float | None = None, aperture: float | None = None,
                    idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.bokeh``."""
        return await self._call("bokeh", locals())

    async def adjust(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                     format: Format | None = None, quality: int | None = None, by: AdjustBy | None = None,
                     fg_brightness: float | None = None, fg_contrast: float | None = None,
                     fg_saturation: float | None = None, bg_brightness: float | None = None,
                     bg_contrast: float | None = None, bg_saturation: float | None = None,
                     ramp_near: float | None = None, ramp_far: float | None = None,
                     idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.adjust``."""
        return await self._call("adjust", locals())

    async def crop(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                   format: Format | None = None, quality: int | None = None, aspect: str | None = None,
                   width: int | None = None, height: int | None = None,
                   idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.crop``."""
        return await self._call("crop", locals())

    async def style(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                    format: Format | None = None, quality: int | None = None, style: Style | None = None,
                    strength: float | None = None, keep: Keep | None = None, style_image: Photo | None = None,
                    idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.style``."""
        return await self._call("style", locals())

    async def upscale(self, photo: Photo, *, model: UpscaleModel | None = None, scale: Scale | None = None,
                      format: Format | None = None, quality: int | None = None,
                      idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.upscale``."""
        return await self._call("upscale", locals())

    async def erase(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                    format: Format | None = None, quality: int | None = None, x: int | None = None,
                    y: int | None = None, points: Points | None = None, negative: Points | None = None,
                    mask: Photo | None = None, idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.erase``."""
        points, negative = join_points(points, "points"), join_points(negative, "negative")
        return await self._call("erase", locals())

    async def layers(self, photo: Photo, *, model: Model | None = None, max_side: int | None = None,
                     include: str | None = None, idempotency_key: str | None = None) -> LayersResult:
        """See ``Client.layers``."""
        return await self._call("layers", locals())

    async def select(self, photo: Photo, *, x: int, y: int, model: Model | None = None,
                     max_side: int | None = None, format: Format | None = None, quality: int | None = None,
                     points: Points | None = None, negative: Points | None = None,
                     idempotency_key: str | None = None) -> ImageResult:
        """See ``Client.select``."""
        points, negative = join_points(points, "points"), join_points(negative, "negative")
        return await self._call("select", locals())

    async def usage(self, *, days: int | None = None) -> UsageReport:
        """See ``Client.usage``."""
        return await self._call("usage", locals())

    async def health(self) -> dict[str, Any]:
        """See ``Client.health``."""
        response = await self._get("/healthz")
        if not response.is_success:
            raise from_response(response)
        return response.json()

    async def ready(self) -> dict[str, Any]:
        """See ``Client.ready``."""
        response = await self._get("/readyz")
        if not response.is_success and response.status_code != 503:
            raise from_response(response)
        return response.json()

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self._http.get(path)
        except httpx.TransportError as error:
            raise from_transport(error) from error
