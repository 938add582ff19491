"""Typed dependencies shared by the routes (async: FastAPI runs plain ``def`` dependencies in its threadpool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import sessionmaker

from gateway.auth import require_principal
from gateway.keys import Principal
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.triton_client import TritonClient


async def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def _metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


async def _triton(request: Request) -> TritonClient:
    return request.app.state.triton


async def _sessions(request: Request) -> sessionmaker:
    return request.app.state.sessions


async def _rate_limiter(request: Request) -> RateLimiter:
    return request.app.state.rate_limiter


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
TritonDep = Annotated[TritonClient, Depends(_triton)]
SessionsDep = Annotated[sessionmaker, Depends(_sessions)]
RateLimiterDep = Annotated[RateLimiter, Depends(_rate_limiter)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
