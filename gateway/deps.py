"""Typed dependencies shared by the routes (async: FastAPI runs plain ``def`` dependencies in its threadpool)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import sessionmaker

from gateway.auth import require_principal
from gateway.keys import Principal
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import RateLimiter
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
    sessions: sessionmaker
    limiter: RateLimiter


async def _image_call(request: Request, principal: PrincipalDep) -> ImageCall:
    state = request.app.state
    return ImageCall(request, principal, state.settings, state.metrics, state.triton, state.sessions,
                     state.rate_limiter)


ImageCallDep = Annotated[ImageCall, Depends(_image_call)]
