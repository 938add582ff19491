"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.triton_client import TritonClient


def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def _metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


def _triton(request: Request) -> TritonClient:
    return request.app.state.triton


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
TritonDep = Annotated[TritonClient, Depends(_triton)]
