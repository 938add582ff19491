"""Application factory: ``uvicorn gateway.app:create_app --factory`` (or ``python -m gateway``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from contract.product import PRODUCT
from contract.schema import Product
from gateway import keys, ledger
from gateway.billing import Billing
from gateway.db import make_engine, session_factory
from gateway.errors import REJECTION_REASONS, document_errors, register_error_handlers
from gateway.ledger import PriceTable
from gateway.limits.process_in_flight import ProcessInFlightLimit
from gateway.limits.rate import InProcessRateLimiter, make_rate_limiter
from gateway.limits.tenant_in_flight import TenantInFlightLimit
from gateway.limits.unbilled_failures import UnbilledFailureLimit
from gateway.limits.upload_bytes import UploadByteBudget
from gateway.metrics import GatewayMetrics
from gateway.middleware import ImageRouteGuard, ResponseHeaders
from gateway.migrate import upgrade
from gateway.openapi import BILLING_HEADERS, RATE_HEADERS, document_alternative_defaults
from gateway.principal_cache import PrincipalCache
from gateway.request_log import RequestLog
from gateway.routes import demo, health, removebg, usage
from gateway.routes.images import image_router
from gateway.settings import GatewaySettings, get_settings
from gateway.triton_client import TritonClient

log = logging.getLogger(__name__)
SWEEP_INTERVAL_S = 30.0


def create_app(settings: GatewaySettings | None = None, registry: CollectorRegistry | None = None,
               product: Product = PRODUCT) -> FastAPI:
    """The gateway of ``product``: its routes, prices, readiness checks and metric labels."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings.database_schema)
    sessions = session_factory(engine)
    metrics = GatewayMetrics(registry or CollectorRegistry(), (*product.operation_names, removebg.ROUTE),
                             REJECTION_REASONS)
    prices = PriceTable({**{op.name: op.base_credits for op in product.operations}, **settings.price_base_credits},
                        settings.price_per_megapixel_credits)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(upgrade, engine)
        if settings.bootstrap_api_key is not None:
            key_id = await run_in_threadpool(
                keys.bootstrap, sessions, settings.bootstrap_api_key.get_secret_value(), settings.bootstrap_credits,
                settings.bootstrap_rate_per_s, settings.bootstrap_burst,
            )
            log.info("bootstrap API key ready (key id %s, tenant %s)", key_id, keys.BOOTSTRAP_TENANT)
        await run_in_threadpool(ledger.warm_up, sessions)
        app.state.triton = TritonClient(settings.triton_grpc_url)
        sweeper = asyncio.create_task(_sweep_forever(sessions, metrics))
        try:
            yield
        finally:
            sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await sweeper
            await app.state.triton.close()
            close = getattr(app.state.rate_limiter, "close", None)
            if close is not None:
                close()
            engine.dispose()

    app = FastAPIOffline(  # /docs and /redoc with their scripts served from the package, no CDN
        title="imageserve",
        version="0.1.0",
        summary="Image inference for photo apps: send a photo, get depth, mattes and cutouts back.",
        lifespan=lifespan,
    )
    app.state.product = product
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.sessions = sessions
    app.state.rate_limiter = make_rate_limiter(settings.redis_url)
    app.state.billing = Billing(sessions, prices, metrics, settings.request_budget_s, settings.max_replays_per_key)
    app.state.tenant_limit = TenantInFlightLimit(settings.max_in_flight_per_tenant)
    app.state.unbilled_limit = UnbilledFailureLimit(settings.max_unbilled_failures_per_minute)
    app.state.upload_budget = UploadByteBudget(settings.upload_budget_bytes)
    app.state.principal_cache = PrincipalCache(settings.auth_cache_ttl_s)
    app.state.readiness = health.Readiness()
    app.state.key_lookups = InProcessRateLimiter()  # bounds database reads for keys not in the cache
    register_error_handlers(app)
    app.include_router(image_router(product, settings.max_output_side))
    app.include_router(removebg.router)
    app.include_router(usage.router)
    app.include_router(health.router)
    app.include_router(demo.router)
    if settings.metrics_port is None:
        app.include_router(health.metrics_router)
    document_errors(app)
    document_alternative_defaults(app, product)
    # Outermost last: the request id and access log, response headers on everything (security, and closing
    # connections whose body was not read), then CORS (only if configured), then the image guard.
    app.add_middleware(ImageRouteGuard, metrics=metrics, limit=ProcessInFlightLimit(settings.max_in_flight),
                       routes={**product.routes(), removebg.PATH: removebg.ROUTE})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
                           expose_headers=[*BILLING_HEADERS, *RATE_HEADERS, "Retry-After", "Content-Type",
                                           *(name for out in product.header_outputs() for name, _ in out.headers)])
    app.add_middleware(ResponseHeaders)
    app.add_middleware(RequestLog)  # outermost: every answer gets its id, every request its log line
    return app


async def _sweep_forever(sessions: sessionmaker, metrics: GatewayMetrics) -> None:
    """Give back credits that dead gateway processes left reserved (every replica may run this safely)."""
    while True:
        try:
            returned = await run_in_threadpool(ledger.sweep_expired, sessions)
            if returned:
                metrics.swept_credits.inc(returned)
                log.warning("returned %d credits of abandoned reservations", returned)
        except Exception:  # the database may be briefly away; try again next round
            log.exception("reservation sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)
