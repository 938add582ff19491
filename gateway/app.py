"""Application factory: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from gateway import keys
from gateway.db import create_schema, make_engine, session_factory
from gateway.errors import register_error_handlers
from gateway.ledger import PriceTable
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import make_rate_limiter
from gateway.routes import health, images, usage
from gateway.settings import GatewaySettings, get_settings
from gateway.triton_client import TritonClient

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings.database_schema)
    sessions = session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(create_schema, engine)
        if settings.bootstrap_api_key is not None:
            key_id = await run_in_threadpool(
                keys.bootstrap, sessions, settings.bootstrap_api_key.get_secret_value(), settings.bootstrap_credits,
                settings.bootstrap_rate_per_s, settings.bootstrap_burst,
            )
            log.info("bootstrap API key ready (key id %s, tenant %s)", key_id, keys.BOOTSTRAP_TENANT)
        app.state.triton = TritonClient(settings.triton_grpc_url, settings.triton_timeout_s)
        try:
            yield
        finally:
            await app.state.triton.close()
            close = getattr(app.state.rate_limiter, "close", None)
            if close is not None:
                close()
            engine.dispose()

    app = FastAPI(
        title="imageserve",
        version="0.1.0",
        summary="Depth maps, person mattes and cutouts from one photo.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = GatewayMetrics(registry or CollectorRegistry())
    app.state.sessions = sessions
    app.state.rate_limiter = make_rate_limiter(settings.redis_url)
    app.state.prices = PriceTable(settings.price_base_credits, settings.price_per_megapixel_credits)
    register_error_handlers(app)
    app.include_router(images.router)
    app.include_router(usage.router)
    app.include_router(health.router)
    return app
