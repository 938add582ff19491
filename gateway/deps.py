"""Typed dependencies shared by the routes (async: FastAPI runs plain ``def`` dependencies in its threadpool)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import sessionmaker

from gateway.auth import require_principal
from gateway.billing import Billing
from gateway.keys import Principal
from gateway.limits.rate import RateLimiter
from gateway.limits.tenant_in_flight import TenantInFlightLimit
from gateway.limits.unbilled_failures import UnbilledFailureLimit
from gateway.limits.upload_bytes import UploadByteBudget
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.triton_client import TritonClient


async def _metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


async def _triton(request: Request) -> TritonClient:
    return request.app.state.triton


async def _sessions(request: Request) -> sessionmaker:
    return request.app.state.sessions


MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
TritonDep = Annotated[TritonClient, Depends(_triton)]
SessionsDep = Annotated[sessionmaker, Depends(_sessions)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]


@dataclass(frozen=True)
class ImageCall:
    """What an image route needs besides its query parameters: the request, its caller, the app's services."""

    request: Request
    principal: Principal
    settings: GatewaySettings
    metrics: GatewayMetrics
    triton: TritonClient
    billing: Billing
    rate_limit: RateLimiter
    tenant_limit: TenantInFlightLimit
    unbilled_limit: UnbilledFailureLimit
    upload_budget: UploadByteBudget


async def _image_call(request: Request, principal: PrincipalDep) -> ImageCall:
    state = request.app.state
    return ImageCall(request, principal, state.settings, state.metrics, state.triton, state.billing,
                     state.rate_limiter, state.tenant_limit, state.unbilled_limit, state.upload_budget)


ImageCallDep = Annotated[ImageCall, Depends(_image_call)]
