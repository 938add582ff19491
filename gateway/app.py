"""Application factory: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.errors import register_error_handlers
from gateway.metrics import GatewayMetrics
from gateway.routes import health, images
from gateway.settings import GatewaySettings, get_settings
from gateway.triton_client import TritonClient


def create_app(settings: GatewaySettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.triton = TritonClient(settings.triton_grpc_url, settings.triton_timeout_s)
        try:
            yield
        finally:
            await app.state.triton.close()

    app = FastAPI(
        title="imageserve",
        version="0.1.0",
        summary="Depth maps, person mattes and cutouts from one photo.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = GatewayMetrics(registry or CollectorRegistry())
    register_error_handlers(app)
    app.include_router(images.router)
    app.include_router(health.router)
    return app
