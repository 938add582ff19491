"""The Python client (clients/python, ``imageserve_client``) against the gateway's OpenAPI document and HTTP layer.

1. Its operation tables and method signatures equal the document the gateway serves (``app.openapi()``): every
   image route, parameter name, type, enum, default and bound. Adding a parameter, a variant or an operation
   to contract/product.py without regenerating the client fails here (``test_a_new_parameter_...`` shows it).
2. Its HTTP handling, on ``httpx.MockTransport``: retries of 429/503 with ``Retry-After`` within the bounds,
   with one Idempotency-Key for every attempt, and the typed errors.
3. A round trip through the real gateway app in process (FakeTriton, as in app_client.py): every operation,
   the parsed headers and bills, an idempotent replay, a 400 and a 401.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import imageserve_client
import imageserve_client.client as client_module
import numpy as np
import pytest
from fastapi.testclient import TestClient
from imageserve_client import (
    AsyncClient,
    BadImage,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    ImageserveError,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    Retry,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from imageserve_client.codegen import render
from imageserve_client.operations import OPERATIONS
from imageserve_client.results import HEADER_FIELDS, ImageResult
from imageserve_client.spec import COMMON_HEADERS
from PIL import Image
from prometheus_client import CollectorRegistry

from contract.product import PRODUCT
from contract.schema import Parameter, Product
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import Database, free_port, jpeg_bytes
from tests.unit.app_client import ADMIN_KEY, HEADER_VALUES, PHOTO, make_client, tenant_key

OPERATIONS_FILE = Path(imageserve_client.__file__).with_name("operations.py")
CLIENT_TAGS = {"images", "account"}
BASE = "http://imageserve.test"


def openapi(tmp_path: Path, product: Product = PRODUCT) -> dict[str, Any]:
    settings = GatewaySettings(triton_grpc_url=f"127.0.0.1:{free_port()}", bootstrap_api_key=ADMIN_KEY,
                               database_url=f"sqlite:///{tmp_path / 'gateway.db'}")
    return create_app(settings, CollectorRegistry(), product).openapi()


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return openapi(tmp_path_factory.mktemp("openapi"))


# ---- 1. the tables and the methods against the OpenAPI document ------------------------------------------------


def document_routes(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """name -> (method, path, operation) of every route the client covers."""
    return {path.rsplit("/", 1)[-1]: (method.upper(), path, spec) for path, methods in document["paths"].items()
            for method, spec in methods.items() if CLIENT_TAGS & set(spec.get("tags", ()))}


def document_parameter(entry: dict[str, Any]) -> dict[str, Any]:
    """A query parameter as name, type, default, enum, bounds and pattern, whether or not it is optional
    (an optional one is ``anyOf: [{...}, {type: null}]``, FastAPI putting some keywords inside, some beside)."""
    outer = {key: value for key, value in entry["schema"].items() if key != "anyOf"}
    inner = [s for s in entry["schema"].get("anyOf", [{}]) if s.get("type") != "null"]
    assert len(inner) == 1, f"{entry['name']}: one non-null schema expected, got {entry['schema']}"
    schema = {**inner[0], **outer}
    return {"name": entry["name"], "type": schema["type"], "default": schema.get("default"),
            "enum": tuple(schema.get("enum", ())), "minimum": schema.get("minimum"),
            "maximum": schema.get("maximum"), "pattern": schema.get("pattern", "")}


def differences(document: dict[str, Any]) -> list[str]:
    """Every way the client's tables differ from ``document``; empty when they agree."""
    problems = []
    routes = document_routes(document)
    if set(routes) != set(OPERATIONS):
        problems.append(f"operations: the document has {sorted(routes)}, the client {sorted(OPERATIONS)}")
    for name in sorted(set(routes) & set(OPERATIONS)):
        method, path, spec = routes[name]
        ours = OPERATIONS[name]
        if (ours.method, ours.path) != (method, path):
            problems.append(f"{name}: the document has {method} {path}, the client {ours.method} {ours.path}")
        theirs = [document_parameter(p) for p in spec.get("parameters", ()) if p["in"] == "query"]
        mine = [dataclasses.asdict(p) for p in ours.params]
        if mine != theirs:
            problems.append(f"{name} parameters: the document has {theirs}, the client {mine}")
        form = spec.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
        parts = tuple(field for field in form.get("properties", {}) if field != "image")
        if parts != ours.parts:
            problems.append(f"{name}: multipart fields {parts} in the document, {ours.parts} in the client")
        ok = spec["responses"]["200"]
        headers = tuple(h for h in ok.get("headers", {}) if h not in COMMON_HEADERS)
        if headers != ours.headers:
            problems.append(f"{name}: response headers {headers} in the document, {ours.headers} in the client")
        if tuple(ok.get("content", {})) != ours.media_types:
            problems.append(f"{name}: media types {tuple(ok['content'])} in the document, {ours.media_types}")
    return problems


def test_the_client_has_every_operation_parameter_type_enum_default_and_bound_of_the_openapi_document(
        document) -> None:
    assert differences(document) == []
    # The document's image routes are the product's operations, and the checks above saw real content.
    assert set(OPERATIONS) == {*PRODUCT.operation_names, "usage"}
    bokeh = {p.name: p for p in OPERATIONS["bokeh"].params}
    assert (bokeh["aperture"].minimum, bokeh["aperture"].maximum, bokeh["aperture"].default) == (0, 10, 4.0)
    assert bokeh["model"].enum == ("auto", "fast", "portrait", "object", "object-lite") and bokeh["model"].default == (
        "auto")
    assert OPERATIONS["background"].parts == ("background",)
    assert OPERATIONS["crop"].headers == ("X-Crop-Box", "X-Subject")
    assert OPERATIONS["mask"].param("layer").enum == ("subject", "person", "face", "eyes", "irises", "brows", "lips",
                                                      "mouth", "hair", "background")
    select = OPERATIONS["select"]
    assert [p.name for p in select.params] == ["model", "max_side", "format", "quality", "x", "y", "points",
                                               "negative"]
    assert select.headers == ("X-Selected", "X-Faces", "X-Subject") and select.media_types[0] == "image/png"


def test_operations_py_is_what_the_generator_writes_from_the_document(document) -> None:
    assert OPERATIONS_FILE.read_text() == render(document), (
        "clients/python/imageserve_client/operations.py is stale: regenerate it with "
        "`python -m imageserve_client.codegen <openapi.json> --out clients/python/imageserve_client/operations.py`")


def test_a_new_parameter_in_the_product_is_a_difference(tmp_path: Path) -> None:
    """What happens when contract/product.py gains a parameter the client lacks: the parity test above fails."""
    bokeh = PRODUCT.operation("bokeh")
    extra = Parameter("highlight_boost", float, 1.0, "Brighten highlights", tensor="HIGHLIGHT_BOOST", ge=0, le=4)
    changed = dataclasses.replace(bokeh, parameters=(*bokeh.parameters, extra))
    product = dataclasses.replace(PRODUCT, operations=tuple(changed if o is bokeh else o for o in PRODUCT.operations))
    found = differences(openapi(tmp_path, product))
    assert len(found) == 1 and found[0].startswith("bokeh parameters") and "highlight_boost" in found[0]


def _annotation(method: Callable[..., Any], name: str) -> Any:
    return eval(method.__annotations__[name], vars(client_module))  # the module's own names (Model, Format...)


def required_parameters(name: str) -> tuple[str, ...]:
    """The parameters a method must be given: an operation's only ``one_of`` group when the contract requires it
    and it names parameters, not image parts (select's tap ``x``, ``y``; not erase's ``mask`` part)."""
    if name not in PRODUCT.operation_names:
        return ()
    operation = PRODUCT.operation(name)
    parts = {part.name for part in operation.image_parts}
    if operation.one_of_required and len(operation.one_of) == 1 and not set(operation.one_of[0]) & parts:
        return operation.one_of[0]
    return ()


# Parameters that take (x, y) pairs as well as the query's "x,y;x,y" text (the client joins them).
POINT_LISTS = {(name, field) for name in ("select", "erase") for field in ("points", "negative")}


def _allowed(annotation: Any) -> tuple[Any, ...]:
    """The members of ``X | None``, and a Literal's values in place of the Literal."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    assert type(None) in members, f"{annotation} must accept None (not sent)"
    found: list[Any] = []
    for member in members:
        found.extend(typing.get_args(member) if typing.get_origin(member) is typing.Literal else [member])
    return tuple(m for m in found if m is not type(None))


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_method_takes_exactly_the_operations_parameters_typed_as_the_document(cls, name: str) -> None:
    import inspect

    operation = OPERATIONS[name]
    method = getattr(cls, name)
    signature = inspect.signature(method)
    keywords = {n: p for n, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    required = required_parameters(name)
    expected = [*required, *(p.name for p in operation.params if p.name not in required), *operation.parts]
    if operation.takes_photo:
        expected.append("idempotency_key")
        assert list(signature.parameters)[1] == "photo"
    assert list(keywords) == expected  # the required ones first, then the document's order
    # Left out: the service's default applies; a required one has no default.
    assert all((p.default is inspect.Parameter.empty) == (n in required) for n, p in keywords.items())
    assert all(p.default is None for n, p in keywords.items() if n not in required)
    python_types = {"integer": int, "number": float, "string": str}
    for param in operation.params:
        where = f"{cls.__name__}.{name}({param.name})"
        if param.name in required:
            assert _annotation(method, param.name) is python_types[param.type], where
            continue
        allowed = _allowed(_annotation(method, param.name))
        if (name, param.name) in POINT_LISTS:
            assert allowed == (str, Sequence[tuple[int, int]]), where
            continue
        assert allowed == (param.enum or (python_types[param.type],)), where
    assert inspect.iscoroutinefunction(method) == (cls is AsyncClient)


def test_every_operation_header_is_parsed_into_a_result_field() -> None:
    fields = {f.name for f in dataclasses.fields(ImageResult)}
    for operation in OPERATIONS.values():
        for header in operation.headers:
            assert header in HEADER_FIELDS, f"{operation.name}: the client does not read {header}"
            assert HEADER_FIELDS[header][0] in fields


def test_every_image_route_documents_the_headers_and_the_idempotency_key_the_client_relies_on(document) -> None:
    for name, (_, _, spec) in document_routes(document).items():
        if name == "usage":
            continue
        headers = spec["responses"]["200"]["headers"]
        assert {"X-Request-Id", "X-Credits-Charged", "X-Credits-Remaining", "Idempotent-Replayed"} <= set(headers)
        assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in spec["parameters"])
        assert "Retry-After" in spec["responses"]["429"]["headers"] and "Retry-After" in spec["responses"]["503"][
            "headers"]


# ---- 2. HTTP handling on a mock transport --------------------------------------------------------------------


class Script:
    """A MockTransport that answers from a list (the last answer repeats) and records every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.read())  # a fresh copy

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def error(status: int, code: str, message: str = "no", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}},
                          headers={"X-Request-Id": f"req-{status}", **headers})


PNG_OK = httpx.Response(200, content=b"\x89PNG\r\n\x1a\n", headers={"Content-Type": "image/png",
                                                                    "X-Credits-Charged": "3"})


def mock_client(script: Script, retry: Retry | None = None, sleeps: list[float] | None = None) -> Client:
    return Client(BASE, "key", retry=retry, transport=httpx.MockTransport(script),
                  sleep=(sleeps if sleeps is not None else []).append)


def test_503_and_429_with_retry_after_are_retried_with_one_idempotency_key() -> None:
    script = Script(error(503, "overloaded", **{"Retry-After": "1"}),
                    error(429, "too_many_concurrent_requests", **{"Retry-After": "2"}), PNG_OK)
    sleeps: list[float] = []
    result = mock_client(script, sleeps=sleeps).bokeh(PHOTO, aperture=6)
    assert result.content == PNG_OK.content and result.attempts == 3 and result.credits_charged == 3
    assert sleeps == [1.0, 2.0]
    assert len(set(script.keys)) == 1 and script.keys[0] and len(script.keys[0]) <= 255
    assert [r.content for r in script.requests] == [PHOTO] * 3  # the same request every time
    # The next logical call has a key of its own; a caller's key is sent as given, on every attempt.
    again = Script(error(503, "overloaded", **{"Retry-After": "1"}), PNG_OK)
    client = mock_client(again)
    client.mask(PHOTO)  # 503, then 200
    client.mask(PHOTO)
    client.mask(PHOTO, idempotency_key="order-17")
    first, retried, second, given = again.keys
    assert first == retried and second != first and given == "order-17"


def test_the_retry_stops_at_max_retries_and_raises_the_last_answer() -> None:
    script = Script(error(429, "rate_limited", "slow down", **{"Retry-After": "2"}))
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as raised:
        mock_client(script, Retry(max_retries=2), sleeps).depth(PHOTO)
    assert len(script.requests) == 3 and sleeps == [2.0, 2.0] and len(set(script.keys)) == 1
    error_ = raised.value
    assert (error_.status, error_.code, error_.message, error_.request_id) == (429, "rate_limited", "slow down",
                                                                               "req-429")
    assert error_.retry_after == 2.0 and error_.attempts == 3


def test_the_retry_stops_before_waiting_past_max_wait() -> None:
    script = Script(error(503, "inference_unavailable", **{"Retry-After": "10"}))
    sleeps: list[float] = []
    with pytest.raises(Unavailable):
        mock_client(script, Retry(max_retries=5, max_wait_s=25), sleeps).cutout(PHOTO)
    assert sleeps == [10.0, 10.0] and len(script.requests) == 3  # a third wait would make 30 s > 25 s


@pytest.mark.parametrize("answer", [
    error(503, "inference_unavailable"),  # no Retry-After: nothing says when
    error(402, "insufficient_credits", **{"Retry-After": "1"}),  # only 429 and 503 are retried
    error(500, "internal_error"),
])
def test_answers_without_retry_after_or_of_other_statuses_are_not_retried(answer: httpx.Response) -> None:
    script = Script(answer)
    sleeps: list[float] = []
    with pytest.raises(ImageserveError):
        mock_client(script, sleeps=sleeps).mask(PHOTO)
    assert len(script.requests) == 1 and sleeps == []


def test_retry_with_no_retries_sends_once() -> None:
    script = Script(error(429, "rate_limited", **{"Retry-After": "1"}))
    with pytest.raises(RateLimited) as raised:
        mock_client(script, Retry(max_retries=0)).mask(PHOTO)
    assert len(script.requests) == 1 and raised.value.attempts == 1


def test_the_async_client_retries_the_same_way() -> None:
    script = Script(error(503, "overloaded", **{"Retry-After": "1"}), error(503, "overloaded", **{"Retry-After": "1"}),
                    PNG_OK)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> ImageResult:
        async with AsyncClient(BASE, "key", transport=httpx.MockTransport(script), sleep=record) as client:
            return await client.adjust(PHOTO, fg_brightness=0.2, by="depth")

    result = asyncio.run(run())
    assert result.attempts == 3 and sleeps == [1.0, 1.0] and len(set(script.keys)) == 1
    assert dict(script.requests[0].url.params) == {"fg_brightness": "0.2", "by": "depth"}

    bounded = Script(error(429, "rate_limited", **{"Retry-After": "1"}))

    async def refused() -> None:
        async with AsyncClient(BASE, "key", retry=Retry(max_retries=1), transport=httpx.MockTransport(bounded),
                               sleep=record) as client:
            await client.mask(PHOTO)

    with pytest.raises(RateLimited):
        asyncio.run(refused())
    assert len(bounded.requests) == 2


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "invalid_parameter", BadRequest), (401, "invalid_api_key", Unauthorized),
    (402, "insufficient_credits", PaymentRequired), (403, "operation_not_allowed", Forbidden),
    (404, "not_found", NotFound), (408, "request_timeout", Timeout), (409, "idempotency_key_reused", Conflict),
    (413, "too_many_pixels", PayloadTooLarge), (415, "unsupported_media_type", UnsupportedMediaType),
    (422, "truncated_image", BadImage), (429, "too_many_replays", RateLimited), (500, "internal_error", ServerError),
    (503, "model_unavailable", Unavailable), (504, "inference_timeout", Timeout),
])
def test_each_error_status_is_its_own_exception_with_status_code_message_and_request_id(status: int, code: str,
                                                                                         cls: type) -> None:
    script = Script(error(status, code, f"what went wrong ({status})"))
    with pytest.raises(cls) as raised:
        mock_client(script, Retry(max_retries=0)).crop(PHOTO, aspect="1:1")
    assert type(raised.value) is cls and isinstance(raised.value, ImageserveError)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.message == f"what went wrong ({status})" and raised.value.request_id == f"req-{status}"
    assert code in str(raised.value) and f"req-{status}" in str(raised.value)


def test_an_error_without_a_json_body_or_header_id_still_has_status_and_a_message() -> None:
    gateway = Script(httpx.Response(502, content=b"<html>Bad Gateway</html>"))
    with pytest.raises(ServerError) as raised:
        mock_client(gateway).mask(PHOTO)
    assert (raised.value.status, raised.value.code, raised.value.message) == (502, "internal_error", "Bad Gateway")
    in_body = Script(httpx.Response(400, json={"error": {"code": "invalid_parameter", "message": "m",
                                                         "request_id": "from-body"}}))
    with pytest.raises(BadRequest) as raised:
        mock_client(in_body).mask(PHOTO)
    assert raised.value.request_id == "from-body"


@pytest.mark.parametrize(("failure", "cls", "code"), [
    (httpx.ConnectError("refused"), TransportError, "connection_error"),
    (httpx.ReadTimeout("slow"), Timeout, "client_timeout"),
])
def test_no_answer_is_a_transport_error_or_a_timeout(failure: Exception, cls: type, code: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(cls) as raised, Client(BASE, "key", transport=httpx.MockTransport(fail)) as client:
        client.mask(PHOTO)
    assert raised.value.status is None and raised.value.code == code


def test_photo_inputs_and_parameter_encoding(tmp_path: Path) -> None:
    script = Script(PNG_OK)
    client = mock_client(script)
    path = tmp_path / "me.jpg"
    path.write_bytes(PHOTO)
    picture = Image.open(io.BytesIO(PHOTO))
    client.bokeh(path, focus_x=np.int64(10), focus_y=3, focus_depth=0.25, aperture=6)
    client.bokeh(str(path))
    with path.open("rb") as file:
        client.bokeh(file, model="fast", format="jpeg", quality=80)
    client.bokeh(picture)
    raw, by_name, by_file, pil = script.requests[:4]
    assert raw.content == by_name.content == by_file.content == PHOTO
    assert raw.headers["Content-Type"] == "image/jpeg" and raw.headers["Authorization"] == "Bearer key"
    assert dict(raw.url.params) == {"focus_x": "10", "focus_y": "3", "focus_depth": "0.25", "aperture": "6"}
    assert dict(by_name.url.params) == {}  # nothing given, nothing sent: the service's defaults
    assert dict(by_file.url.params) == {"model": "fast", "format": "jpeg", "quality": "80"}
    assert pil.headers["Content-Type"] == "image/jpeg"  # an RGB PIL image goes as JPEG 95, 4:4:4
    sent = np.asarray(Image.open(io.BytesIO(pil.content))).astype(int)
    assert np.abs(sent - np.asarray(picture)).mean() < 2
    with_alpha = Image.new("RGBA", (20, 10), (10, 200, 30, 128))
    client.cutout(with_alpha)  # alpha (or 16 bits): PNG, exact
    assert script.requests[-1].headers["Content-Type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(script.requests[-1].content))), np.asarray(with_alpha))
    with pytest.raises(TypeError, match="focus_x must be an integer"):
        client.bokeh(PHOTO, focus_x=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="photo must be"):
        client.mask(12)  # type: ignore[arg-type]
    assert len(script.requests) == 5  # neither was sent


def test_a_background_image_makes_a_multipart_form_and_a_colour_does_not() -> None:
    script = Script(PNG_OK)
    client = mock_client(script)
    beach = Image.new("RGB", (40, 30), (200, 180, 120))
    client.background(PHOTO, background=beach, fit="contain", format="jpeg")
    client.background(PHOTO, color="1e90ff")
    form, colour = script.requests
    assert form.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="image"' in form.content and b'name="background"' in form.content and PHOTO in form.content
    assert dict(form.url.params) == {"fit": "contain", "format": "jpeg"}
    assert colour.content == PHOTO and dict(colour.url.params) == {"color": "1e90ff"}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_results_parse_headers_layers_and_usage() -> None:
    depth = _png(Image.fromarray(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000))
    matte = _png(Image.new("L", (8, 6), 200))
    layers = {"width": 8, "height": 6, "photo_width": 16, "photo_height": 12, "depth_near": 0.5, "depth_far": 3.0,
              "layers": {"depth": base64.b64encode(depth).decode(), "matte": base64.b64encode(matte).decode()}}
    usage = {"tenant": "acme", "balance": 90, "days": 7, "usage": [
        {"day": "2025-01-02", "operation": "mask", "requests": 5, "credits": 10, "input_megapixels": 1.5,
         "output_bytes": 1234}]}
    billing = {"X-Request-Id": "r1", "X-Charge-Id": "c1", "X-Credits-Charged": "4", "X-Credits-Remaining": "96",
               "Idempotent-Replayed": "true", "RateLimit-Limit": "20", "RateLimit-Remaining": "19",
               "RateLimit-Reset": "1"}
    script = Script(
        httpx.Response(200, content=depth, headers={"Content-Type": "image/png", "X-Depth-Near": "0.5000",
                                                    "X-Depth-Far": "3.2500", **billing}),
        httpx.Response(200, content=matte, headers={"Content-Type": "image/png", "X-Matte-Refined": "0",
                                                    "X-Foreground-Left": "1", "X-Foreground-Top": "2",
                                                    "X-Foreground-Width": "5", "X-Foreground-Height": "3"}),
        httpx.Response(200, content=matte, headers={"Content-Type": "image/png", "X-Crop-Box": "4,0,48,60"}),
        httpx.Response(200, json=layers, headers=billing),
        httpx.Response(200, json=usage),
    )
    client = mock_client(script)
    first = client.depth(PHOTO)
    assert (first.depth_near, first.depth_far, first.matte_refined, first.crop_box) == (0.5, 3.25, None, None)
    assert (first.request_id, first.charge_id, first.credits_charged, first.credits_remaining) == ("r1", "c1", 4, 96)
    assert first.replayed and first.rate_limit is not None and first.rate_limit.remaining == 19
    assert first.image().mode == "I;16" and first.image().getpixel((7, 5)) == 47000 and first.format == "png"
    mask = client.mask(PHOTO)
    assert mask.matte_refined is False and mask.foreground_box == (1, 2, 5, 3) and first.foreground_box is None
    crop = client.crop(PHOTO, width=48, height=60)
    assert crop.crop_box == (4, 0, 48, 60) and crop.credits_charged is None and crop.rate_limit is None
    result = client.layers(PHOTO, include="depth,matte")
    assert result.layers == {"depth": depth, "matte": matte} and (result.width, result.height) == (8, 6)
    assert (result.depth_near, result.depth_far, result.photo_width) == (0.5, 3.0, 16)
    assert result.image("matte").mode == "L" and result.credits_charged == 4
    with pytest.raises(KeyError, match="include"):
        result.image("foreground")
    report = client.usage(days=7)
    assert report.balance == 90 and report.usage[0].credits == 10 and report.usage[0].input_megapixels == 1.5
    assert script.requests[-1].method == "GET" and dict(script.requests[-1].url.params) == {"days": "7"}
    assert "Idempotency-Key" not in script.requests[-1].headers


def test_select_sends_the_tap_and_joins_point_pairs() -> None:
    script = Script(PNG_OK)
    client = mock_client(script)
    client.select(PHOTO, x=10, y=np.int64(20), points=[(1, 2), (3, np.int64(4))], negative="5,6")
    client.select(PHOTO, x=0, y=7, negative=[[8, 9]], model="fast", format="png")
    client.select(PHOTO, x=1, y=1, points=[])
    first, second, empty = (dict(r.url.params) for r in script.requests)
    assert first == {"x": "10", "y": "20", "points": "1,2;3,4", "negative": "5,6"}
    assert second == {"model": "fast", "format": "png", "x": "0", "y": "7", "negative": "8,9"}
    assert empty == {"x": "1", "y": "1", "points": ""}  # no more taps: the service's default
    for bad, kind, words in [([(1, 2, 3)], TypeError, "(x, y) pairs"), ([(1.5, 2)], TypeError, "whole pixels"),
                             (["1,2"], TypeError, "pairs"), ([7], TypeError, "pairs"),
                             ([(True, 2)], TypeError, "pairs"), ([(4, -1)], ValueError, "off the photo")]:
        with pytest.raises(kind, match=re.escape(words)):
            client.select(PHOTO, x=1, y=1, points=bad)
        with pytest.raises(kind, match="negative"):
            client.select(PHOTO, x=1, y=1, negative=bad)
    with pytest.raises(TypeError, match="'x'"):
        client.select(PHOTO, y=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="x must be an integer"):
        client.select(PHOTO, x=2.5, y=3)  # type: ignore[arg-type]
    assert len(script.requests) == 3  # none of the bad ones was sent

    async def run() -> None:
        async with AsyncClient(BASE, "key", transport=httpx.MockTransport(script)) as async_client:
            await async_client.select(PHOTO, x=5, y=6, points=[(7, 8), (9, 10)], negative=[(0, 0)])

    asyncio.run(run())
    assert dict(script.requests[-1].url.params) == {"x": "5", "y": "6", "points": "7,8;9,10", "negative": "0,0"}


def test_erase_sends_the_tap_joins_its_points_and_reads_what_was_selected() -> None:
    mask = _png(Image.new("L", (64, 64), 0))
    script = Script(httpx.Response(200, content=PNG_OK.content, headers={"Content-Type": "image/png",
                                                                          "X-Selected": "person"}))
    client = mock_client(script)
    tapped = client.erase(PHOTO, x=12, y=np.int64(30), points=[(14, 31), (15, np.int64(33))], negative="0,0",
                          model="portrait", format="jpeg")
    client.erase(PHOTO, mask=mask, max_side=32)
    tap, masked = script.requests
    assert dict(tap.url.params) == {"model": "portrait", "format": "jpeg", "x": "12", "y": "30",
                                    "points": "14,31;15,33", "negative": "0,0"}
    assert tap.content == PHOTO and tap.headers["Content-Type"] == "image/jpeg"  # a tap needs no form
    assert (tapped.selected, tapped.operation) == ("person", "erase")
    assert dict(masked.url.params) == {"max_side": "32"}
    assert masked.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="mask"' in masked.content and mask in masked.content and PHOTO in masked.content
    with pytest.raises(TypeError, match=re.escape("negative must be (x, y) pairs")):
        client.erase(PHOTO, x=1, y=1, negative=[(1, 2, 3)])
    with pytest.raises(ValueError, match="points: .* is off the photo"):
        client.erase(PHOTO, x=1, y=1, points=[(-4, 2)])
    with pytest.raises(TypeError, match="y must be an integer"):
        client.erase(PHOTO, x=1, y=2.5)  # type: ignore[arg-type]
    assert len(script.requests) == 2  # none of the bad ones was sent

    async def run() -> None:
        async with AsyncClient(BASE, "key", transport=httpx.MockTransport(script)) as async_client:
            await async_client.erase(PHOTO, x=5, y=6, points=[(7, 8)], negative=[(0, 0), (1, 1)])

    asyncio.run(run())
    assert dict(script.requests[-1].url.params) == {"x": "5", "y": "6", "points": "7,8", "negative": "0,0;1,1"}


def test_subject_faces_and_selected_headers_and_the_faces_of_layers_are_parsed() -> None:
    matte = _png(Image.new("L", (8, 6), 200))
    face = {"box": [1.0, 2.0, 3.5, 4.0], "score": 0.93, "keypoints": [[2.0, 3.0]] * 6,
            "landmarks": [[2.5, 3.5]] * 468, "irises": [[[2.0, 3.0]] * 5] * 2}
    layers = {"width": 8, "height": 6, "photo_width": 8, "photo_height": 6,
              "faces": [face, {**face, "landmarks": None, "irises": None}],
              "layers": {"face": base64.b64encode(matte).decode()}}
    script = Script(
        httpx.Response(200, content=matte, headers={"Content-Type": "image/png", "X-Selected": "eyes",
                                                    "X-Faces": "2", "X-Subject": "person"}),
        httpx.Response(200, content=matte, headers={"Content-Type": "image/png", "X-Subject": "object",
                                                    "X-Faces": "0", "X-Matte-Refined": "1"}),
        httpx.Response(200, content=matte, headers={"Content-Type": "image/png", "X-Subject": "person"}),
        httpx.Response(200, json=layers, headers={"X-Subject": "person", "X-Faces": "2"}),
        httpx.Response(200, json={**layers, "faces": None, "layers": {}}),
    )
    client = mock_client(script)
    tap = client.select(PHOTO, x=3, y=4)
    assert (tap.selected, tap.faces, tap.subject, tap.operation) == ("eyes", 2, "person", "select")
    mask = client.mask(PHOTO, layer="hair")
    assert (mask.subject, mask.faces, mask.selected, mask.matte_refined) == ("object", 0, None, True)
    assert dict(script.requests[1].url.params) == {"layer": "hair"}
    crop = client.crop(PHOTO, aspect="1:1")
    assert (crop.subject, crop.faces) == ("person", None)  # crop declares X-Subject, not X-Faces
    result = client.layers(PHOTO, include="face,faces")
    assert result.faces == layers["faces"] and result.faces[0]["box"] == [1.0, 2.0, 3.5, 4.0]
    assert len(result.faces[0]["landmarks"]) == 468 and result.faces[1]["irises"] is None
    assert (result.subject, result.face_count) == ("person", 2) and result.names == ("face",)
    assert result.image("face").mode == "L"
    with pytest.raises(KeyError, match="result.faces"):
        result.image("faces")
    bare = client.layers(PHOTO)
    assert (bare.faces, bare.subject, bare.face_count) == (None, None, None)


# ---- 3. through the real gateway app in process ---------------------------------------------------------------


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[TestClient]:
    yield from make_client(Database(f"sqlite:///{tmp_path / 'gateway.db'}", None))


def client_for(gateway: TestClient, key: str) -> Client:
    """The client over the TestClient's in-process transport: the real app, no socket."""
    return Client("http://testserver", key, transport=gateway._transport, retry=Retry(max_retries=0))


def test_every_operation_through_the_gateway_app(gateway: TestClient) -> None:
    _, _, key = tenant_key(gateway, credits=100, rate_per_s=50, burst=50)
    client = client_for(gateway, key)
    results = {
        "depth": client.depth(PHOTO, max_side=32), "mask": client.mask(PHOTO, model="fast"),
        "cutout": client.cutout(PHOTO, format="webp"), "background": client.background(PHOTO, background=PHOTO),
        "bokeh": client.bokeh(PHOTO, focus_x=10, focus_y=20, aperture=6),
        "adjust": client.adjust(PHOTO, by="depth", bg_saturation=-0.5), "crop": client.crop(PHOTO, aspect="4:5"),
    }
    for name, result in results.items():
        assert result.content == b"\x89PNG fake", name  # FakeTriton's answer, as sent
        assert result.credits_charged == PRODUCT.operation(name).base_credits + 1, name  # 0.004 MP: 1 more
        assert result.request_id and len(result.request_id) == 32 and result.charge_id, name
    remaining = [r.credits_remaining for r in results.values()]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 100 - sum(
        r.credits_charged or 0 for r in results.values())
    assert (results["depth"].depth_near, results["depth"].depth_far) == (0.5, 3.0)
    assert results["mask"].matte_refined is True and results["crop"].crop_box == (4, 0, 48, 60)
    box = tuple(round(v) for v in HEADER_VALUES.get("FOREGROUND_BOX", [0.0] * 4))
    assert results["mask"].foreground_box == results["cutout"].foreground_box == box
    assert results["depth"].foreground_box is None
    assert results["cutout"].media_type == "image/webp"
    calls = gateway.app.state.triton
    assert calls.ensembles[1] == "photo_mask_fast"
    assert calls.inputs[3]["NEW_BACKGROUND"] == PHOTO  # the multipart part arrived as the background
    assert calls.inputs[4]["FOCUS_X"] == 10 and calls.inputs[4]["APERTURE"] == 6.0
    assert calls.inputs[5]["ADJUST_BY"] == "depth" and calls.inputs[5]["BG_SATURATION"] == -0.5
    report = client.usage(days=1)
    assert report.balance == remaining[-1] and {row.operation for row in report.usage} == set(results)


def test_select_and_mask_layers_through_the_gateway_app(gateway: TestClient) -> None:
    _, _, key = tenant_key(gateway, credits=100, rate_per_s=50, burst=50)
    client = client_for(gateway, key)
    tap = client.select(PHOTO, x=12, y=30, points=[(14, 31), (15, 33)], negative=[(0, 0)], format="png")
    hair = client.mask(PHOTO, layer="hair")
    assert tap.content == hair.content == b"\x89PNG fake" and tap.operation == "select"
    # FakeTriton answers zeros: the first label of each header (region; object) and no faces.
    assert (tap.selected, tap.faces, tap.subject) == ("region", 0, "object")
    assert (hair.subject, hair.faces, hair.selected) == ("object", 0, None)
    assert tap.credits_charged == PRODUCT.operation("select").base_credits + 1
    calls = gateway.app.state.triton
    sent = calls.inputs[0]
    assert (sent["POINT_X"], sent["POINT_Y"], sent["POINTS"], sent["NEGATIVE"]) == (12, 30, "14,31;15,33", "0,0")
    assert calls.inputs[1]["LAYER"] == "hair"
    with pytest.raises(BadRequest) as raised:
        client.select(PHOTO, x=1, y=1, points=[(i, i) for i in range(16)])  # 17 points with the tap: too many
    assert raised.value.code == "invalid_parameter" and "points" in raised.value.message


def test_erase_at_a_tap_and_with_a_mask_through_the_gateway_app(gateway: TestClient) -> None:
    _, _, key = tenant_key(gateway, credits=100, rate_per_s=50, burst=50)
    client = client_for(gateway, key)
    mask = _png(Image.new("L", (64, 64), 255))
    tap = client.erase(PHOTO, x=12, y=30, points=[(14, 31)], negative=[(0, 0)], model="fast")
    masked = client.erase(PHOTO, mask=mask)
    assert tap.content == masked.content == b"\x89PNG fake" and tap.operation == "erase"
    assert tap.selected == "region"  # FakeTriton answers zeros: the first label
    assert tap.credits_charged == masked.credits_charged == PRODUCT.operation("erase").base_credits + 1
    calls = gateway.app.state.triton
    assert calls.ensembles == ["photo_erase_fast", "photo_erase"]  # with a mask, the ensemble without a matte
    sent, uploaded = calls.inputs
    assert (sent["POINT_X"], sent["POINT_Y"], sent["POINTS"], sent["NEGATIVE"]) == (12, 30, "14,31", "0,0")
    assert uploaded["ERASE_MASK"] == mask and (uploaded["POINT_X"], uploaded["POINT_Y"]) == (-1, -1)
    for arguments, words in [({}, "got none"), ({"x": 1, "y": 1, "mask": mask}, "got mask and x with y"),
                             ({"x": 1}, "y is missing")]:
        with pytest.raises(BadRequest) as raised:
            client.erase(PHOTO, **arguments)
        assert raised.value.code == "invalid_parameter" and words in raised.value.message, arguments
    assert len(calls.ensembles) == 2  # the refused ones never reached Triton


def test_the_gateway_apps_errors_and_replays_through_the_client(gateway: TestClient) -> None:
    _, _, key = tenant_key(gateway, credits=100, rate_per_s=50, burst=50)
    client = client_for(gateway, key)
    with pytest.raises(BadRequest) as raised:
        client.bokeh(PHOTO, aperture=11)
    assert raised.value.code == "invalid_parameter" and "aperture" in raised.value.message
    assert raised.value.request_id and raised.value.status == 400
    with pytest.raises(Unauthorized) as denied:
        client_for(gateway, "not-a-key").mask(PHOTO)
    assert denied.value.code == "invalid_api_key"
    first = client.mask(PHOTO, idempotency_key="order-17")
    again = client.mask(PHOTO, idempotency_key="order-17")
    assert again.replayed and not first.replayed and again.charge_id == first.charge_id
    assert again.credits_remaining == first.credits_remaining  # not billed twice
    with pytest.raises(Conflict):
        client.mask(jpeg_bytes(np.full((64, 64, 3), 30, np.uint8)), idempotency_key="order-17")  # another photo
    assert client.health() == {"status": "ok"} and client.ready()["status"] == "ready"
