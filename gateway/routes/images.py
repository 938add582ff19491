"""The image routes, one ``POST`` per operation of the product declaration: one photo in, one image out.

The route does HTTP: permission, limits, reading and checking the upload, then billing
(``gateway.billing``) around the Triton call, and the response.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from contract.schema import SUBJECTS, Operation, Parameter, Product
from gateway import billing, ledger, openapi
from gateway.content_negotiation import output_format
from gateway.deps import ImageCall, ImageCallDep
from gateway.errors import (
    ApiError,
    BadImage,
    BadRequest,
    ClientClosedRequest,
    Forbidden,
    TooManyRequests,
    UnfitParameter,
    UpstreamTimeout,
)
from gateway.image_check import ImageInfo, inspect_image
from gateway.limits.rate import take_token
from gateway.limits.upload_bytes import declared_size
from gateway.upload import Upload, read_upload

# Failures after Triton took the work that are the caller's doing: not billed, but bounded per tenant.
UNBILLED_WORK = (BadImage, UnfitParameter, ClientClosedRequest, UpstreamTimeout)


def image_router(product: Product, max_output_side: int) -> APIRouter:
    """``POST {prefix}/{operation}`` for every declared operation, with its query parameters and OpenAPI."""
    router = APIRouter(prefix=product.api_prefix, tags=["images"])
    for operation in product.operations:
        router.add_api_route(
            f"/{operation.name}", _endpoint(product, operation, max_output_side), methods=["POST"],
            name=operation.name, summary=operation.summary, description=operation.description,
            response_class=Response, responses=openapi.responses(operation),
            openapi_extra=openapi.image_body(operation),
        )
    return router


def _upper_bound(product: Product, parameter: Parameter, max_output_side: int) -> float | None:
    if parameter.tensor == product.tensors.max_side and parameter.le is not None:
        return min(parameter.le, max_output_side)  # the operator may lower the declared limit
    return parameter.le


def _bounds(product: Product, operation: Operation, max_output_side: int) -> dict[str, float | None]:
    return {p.name: _upper_bound(product, p, max_output_side) for p in operation.parameters}


def _endpoint(product: Product, operation: Operation, max_output_side: int):  # noqa: ANN202
    """An endpoint whose signature declares the operation's query parameters, so FastAPI parses,
    validates and documents them. Upper bounds are checked here, with a message that names them."""
    bounds = _bounds(product, operation, max_output_side)
    signature = [inspect.Parameter("call", inspect.Parameter.KEYWORD_ONLY, annotation=ImageCallDep)]
    if operation.variants:
        choices = "; ".join(f"{v.name}: {v.description}" for v in operation.variants)
        signature.append(inspect.Parameter(
            operation.variant_parameter, inspect.Parameter.KEYWORD_ONLY, default=operation.default_variant,
            annotation=Annotated[Literal[operation.variant_names], Query(description=f"Variant. {choices}")]))
    # A one_of alternative with a default (style's built-in style) must be seen as not given when absent: its
    # description names the default, and the step applies it.
    alternatives = {name for group in operation.one_of for name in group}
    for p in operation.parameters:
        extra = {"maximum": bounds[p.name]} if bounds[p.name] is not None else {}
        default = None if p.name in alternatives else p.default
        if p.pattern:  # documented; checked in ``serve`` with a message that names an example
            extra["pattern"] = f"^{p.pattern}$"
        if p.choices and p.type is not str:  # a query's text is not coerced into a Literal of numbers: checked below
            extra["enum"] = list(p.choices)
        query = Query(description=p.description, ge=p.ge, examples=[p.example] if p.example is not None else None,
                      json_schema_extra=extra or None)
        kind = Literal[p.choices] if p.choices and p.type is str else p.type
        signature.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=Annotated[kind if default is not None else kind | None, query]))

    async def endpoint(call: ImageCall, **query: Any) -> Response:
        variant = query.pop(operation.variant_parameter, "") if operation.variants else ""
        return await serve(call, product, operation, variant, query, bounds)

    endpoint.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    endpoint.__name__ = operation.name
    return endpoint


# A route whose body decides the operation (``gateway.routes.removebg``): it reads the body itself, within the
# request's limits, and says what to serve.
Reader = Callable[[], Awaitable[tuple[Operation, str, dict[str, Any], Upload]]]


async def serve(call: ImageCall, product: Product, operation: Operation | None, variant: str, query: dict[str, Any],
                bounds: dict[str, float | None], read: Reader | None = None) -> Response:
    """Limits, header checks, then the Triton call inside the request's bill.

    With ``read``, the operation, variant and query come from the body, so permission and parameters are
    checked once it is read (``operation`` is None then). Counting, timing and the process-wide in-flight
    limit are done by ``middleware.ImageRouteGuard``.
    """
    request, principal, settings, metrics = call.request, call.principal, call.settings, call.metrics
    started = time.perf_counter()
    deadline = started + settings.request_budget_s
    charge_id = uuid.uuid4().hex  # the ledger row's id (X-Charge-Id); the request's own id is gateway.request_log's
    request.state.access = {"tenant": principal.tenant_id, "key": principal.key_id}
    inferring = False
    try:
        if operation is not None:
            _permit(product, operation, principal.operations)
        decision = await take_token(call.rate_limit, principal.key_id, principal.rate_per_s, principal.burst)
        if not decision.allowed:
            raise TooManyRequests(f"over the rate limit of {principal.rate_per_s:g} requests/s "
                                  f"(burst {principal.burst}) for this key; retry after {decision.retry_after_s} s",
                                  headers=decision.headers())
        if operation is not None:
            fmt = _admit(operation, query, bounds, request)
        claim_key = _idempotency_key(request)
        call.unbilled_limit.check(principal.tenant_id)
        upload_size = declared_size(request.headers.get("content-length"), settings.max_body_bytes)
        with call.tenant_limit.hold(principal.tenant_id), call.upload_budget.hold(upload_size):
            if read is None:
                upload = await read_upload(request, settings.max_body_bytes, settings.upload_timeout_s,
                                           tuple(part.name for part in operation.image_parts))
            else:
                operation, variant, query, upload = await read()
                _permit(product, operation, principal.operations)
                fmt = _admit(operation, query, _bounds(product, operation, settings.max_output_side), request)
            if operation.plain_with and upload.parts.get(operation.plain_with) is not None:
                variant = ""  # e.g. erase with an uploaded mask: no matte is needed, so none runs
            request.state.access.update(operation=operation.name, **({"variant": variant} if variant else {}))
            metrics.request_bytes.labels(operation.name).inc(len(upload.data))
            info = _inspect(operation, upload, settings.max_pixels, query)
            metrics.input_megapixels.labels(operation.name).observe(info.megapixels)
            billed_megapixels = _billed_megapixels(product, operation, query, info)
            claim = None if claim_key is None else ledger.IdempotencyClaim(claim_key, billing.fingerprint(
                operation.name, variant, list(query.values()), upload.data, *(u.data for u in upload.parts.values())))
            async with call.billing.open(principal, operation.name, billed_megapixels, charge_id, claim) as bill:
                inputs = _tensors(operation, query, upload)
                inferring = True
                outputs, triton_s = await _infer(call, product.ensemble_for(operation, variant, query), upload.data,
                                                 inputs, list(operation.triton_outputs), deadline, operation.name)
                body = bytes(outputs[operation.output.tensor].reshape(-1)[0])
                bill.charge = ledger.Charge(
                    key_id=principal.key_id, operation=operation.name, model=variant or "default",
                    input_megapixels=info.megapixels, output_bytes=len(body),
                    gateway_latency_ms=(time.perf_counter() - started) * 1000, triton_latency_ms=triton_s * 1000,
                    request_id=charge_id,
                )
        headers = {"X-Charge-Id": charge_id, **decision.headers(), **_header_outputs(operation, variant, outputs),
                   **bill.headers}
        replayed = bill.headers.get("Idempotent-Replayed") == "true"
        request.state.access.update(credits=0 if replayed else int(bill.headers.get("X-Credits-Charged", 0)),
                                    charge_id=headers["X-Charge-Id"], triton_ms=round(triton_s * 1000, 1),
                                    **({"replayed": True} if replayed else {}))
        metrics.response_bytes.labels(operation.name).inc(len(body))
        media_type = product.formats[fmt] if fmt else operation.output.media_type
        return Response(body, media_type=media_type, headers=headers)
    except ApiError as error:
        metrics.rejections.labels(error.reason).inc()
        if inferring and isinstance(error, UNBILLED_WORK):
            call.unbilled_limit.record(principal.tenant_id)
        raise


def _permit(product: Product, operation: Operation, allowed: Iterable[str]) -> None:
    if operation.name not in allowed:
        raise Forbidden(f"this API key may not use {product.path(operation)}; it may use "
                        f"{', '.join(sorted(allowed)) or 'no image operation'}", code="operation_not_allowed")


def _admit(operation: Operation, query: dict[str, Any], bounds: dict[str, float | None], request: Request) -> str:
    """The parameters checked, and the output format (``query["format"]`` is set to it)."""
    _check_parameters(operation, query, bounds)
    return output_format(operation, query, request.headers.get("accept", ""))


def _check_parameters(operation: Operation, query: dict[str, Any], bounds: dict[str, float | None]) -> None:
    """Upper bounds, text patterns and choices; ``one_of`` groups are checked with the upload (``_inspect``)."""
    for name, bound in bounds.items():
        if bound is not None and query[name] is not None and query[name] > bound:
            raise BadRequest(f"{name} {query[name]} is over the limit of {bound:g}", code="invalid_parameter")
    for p in operation.parameters:
        if p.type is str and query[p.name] is not None and (problem := p.check_text(query[p.name])):
            raise BadRequest(problem, code="invalid_parameter")
        if p.type is not str and p.choices and query[p.name] is not None and query[p.name] not in p.choices:
            raise BadRequest(f"{p.name} must be one of {', '.join(map(str, p.choices))}; got {query[p.name]}",
                             code="invalid_parameter")


def _check_one_of(operation: Operation, query: dict[str, Any], parts: dict[str, Upload]) -> None:
    if not operation.one_of:
        return
    given = {name for name, value in query.items() if value is not None} | set(parts)
    chosen = [group for group in operation.one_of if given & set(group)]
    alternatives = " or ".join(" with ".join(group) for group in operation.one_of)
    if not chosen and not operation.one_of_required:
        return
    if len(chosen) > 1 and not operation.one_of_required:
        raise BadRequest(f"{operation.name} takes at most one of {alternatives}; got "
                         f"{' and '.join(' with '.join(group) for group in chosen)}", code="invalid_parameter")
    if len(chosen) != 1:
        what = "none" if not chosen else " and ".join(" with ".join(group) for group in chosen)
        raise BadRequest(f"{operation.name} needs exactly one of {alternatives}; got {what}",
                         code="invalid_parameter")
    missing = [name for name in chosen[0] if name not in given]
    if missing:
        raise BadRequest(f"{' and '.join(chosen[0])} go together; {', '.join(missing)} is missing",
                         code="invalid_parameter")


def _inspect(operation: Operation, upload: Upload, max_pixels: int, query: dict[str, Any]) -> ImageInfo:
    """Header checks of the photo and of every further image part, which obey the same limits."""
    info = inspect_image(upload.data, max_pixels, upload.declared_type)
    for name, part in upload.parts.items():
        try:
            inspect_image(part.data, max_pixels, part.declared_type)
        except ApiError as error:
            raise type(error)(f"the {name!r} part: {error.message}", code=error.code) from None
    _check_one_of(operation, query, upload.parts)
    return info


def _billed_megapixels(product: Product, operation: Operation, query: dict[str, Any], info: ImageInfo) -> float:
    """The photo's megapixels, or the result's for an operation that enlarges it (within its limit)."""
    if not operation.output_scale:
        return info.megapixels
    scale = query[operation.output_scale]
    width, height, limit = info.width * scale, info.height * scale, product.limits.max_upscaled_pixels
    if width * height > limit:
        raise BadRequest(f"{operation.output_scale}={scale} would make {width}x{height} = {width * height / 1e6:.1f} "
                         f"megapixels, over the limit of {limit / 1e6:.1f} for {product.path(operation)}; send a "
                         f"photo of at most {limit / scale ** 2 / 1e6:.2f} megapixels for {operation.output_scale}="
                         f"{scale}", code="output_too_large")
    return info.megapixels * scale ** 2


def _tensors(operation: Operation, query: dict[str, Any], upload: Upload) -> dict[str, Any]:
    """The ensemble's inputs beside the photo: each parameter ("not given" as its ``unset``), each image part."""
    inputs: dict[str, Any] = {p.tensor: p.unset if query[p.name] is None else p.type(query[p.name])
                              for p in operation.parameters}
    inputs.update({part.tensor: upload.parts[part.name].data if part.name in upload.parts else b""
                   for part in operation.image_parts})
    return inputs


def _header_outputs(operation: Operation, variant: str, outputs: dict) -> dict[str, str]:
    """The header outputs' headers; a subject the ensemble left undecided (-1: a variant with a fixed matte) is
    the variant's declared one."""
    chosen = operation.variant(variant)
    headers = {}
    for output in operation.header_outputs:
        values = [float(v) for v in outputs[output.tensor].reshape(-1)]
        if output.labels == SUBJECTS and values and values[0] < 0 and chosen is not None and chosen.subject:
            values = [float(SUBJECTS.index(chosen.subject))]
        headers.update(output.render(values))
    return headers


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > openapi.IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {openapi.IDEMPOTENCY_KEY_MAX} printable ASCII characters, "
                         "e.g. a UUID made once per logical request", code="invalid_idempotency_key")
    return key


async def _infer(call: ImageCall, ensemble: str, data: bytes, inputs: dict[str, Any], outputs: list[str],
                 deadline: float, route: str) -> tuple[dict, float]:
    """The Triton call within what is left of the request budget, cancelled if the client goes away."""
    left_s = deadline - time.perf_counter()
    if left_s <= 0:
        raise UpstreamTimeout("the request budget was spent before inference could start (slow upload?); "
                              "retry with a faster connection or a smaller photo")
    started = time.perf_counter()
    inference = asyncio.ensure_future(call.triton.infer(ensemble, data, inputs, outputs, left_s))
    client_gone = asyncio.ensure_future(_disconnected(call.request))
    try:
        await asyncio.wait({inference, client_gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (inference, client_gone):
            if not task.done():
                task.cancel()
        triton_s = time.perf_counter() - started
        call.metrics.triton_duration.labels(route).observe(triton_s)
    if inference.cancelled() or not inference.done():
        call.metrics.cancelled_inferences.inc()
        raise ClientClosedRequest("the client closed the connection; the inference was cancelled and not billed")
    return inference.result(), triton_s


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
