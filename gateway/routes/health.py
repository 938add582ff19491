"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import MetricsDep, TritonDep

router = APIRouter(tags=["operations"])
READINESS_TTL_S = 1.0


class Readiness:
    """The last readiness answer, shared by every caller until it is ``READINESS_TTL_S`` old;
    concurrent callers wait for one check instead of each making their own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._checked_at = -math.inf
        self._models: dict[str, bool] = {}
        self._lock = asyncio.Lock()

    async def get(self, check: Callable[[], Awaitable[dict[str, bool]]]) -> dict[str, bool]:
        async with self._lock:
            if self._clock() - self._checked_at >= READINESS_TTL_S:
                self._models = await check()
                self._checked_at = self._clock()
            return self._models


@router.get("/healthz", summary="The gateway process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Whether the models the gateway calls are loaded in Triton",
            responses={503: {"description": "Triton is unreachable or no model is ready"}})
async def readyz(request: Request, triton: TritonDep) -> JSONResponse:
    """``ready`` when every model is loaded; ``degraded`` (still 200, so the replica keeps serving the
    endpoints that work) when some are missing, which ``missing`` names; 503 when none can serve.

    An ensemble is ready when it and every model its steps call (the faces step's networks, the matte a by-faces
    step chooses) are: Triton itself sees only the ensemble's own steps.

    The answer is kept for ``READINESS_TTL_S``: a flood of probes costs Triton one round of checks a second."""
    product = request.app.state.product
    called = {e.name: product.models_called_by(e) for e in product.ensembles()}
    every = list(dict.fromkeys([*called, *(m for models in called.values() for m in models)]))
    ready = await request.app.state.readiness.get(lambda: triton.model_readiness(every))
    models = {name: ready.get(name, False) and all(ready.get(m, False) for m in called[name]) for name in called}
    missing = sorted(name for name, ready in models.items() if not ready)
    status = "ready" if not missing else "degraded" if len(missing) < len(models) else "not_ready"
    body = {"status": status, "models": models, "missing": missing}
    return JSONResponse(body, status_code=503 if status == "not_ready" else 200)


metrics_router = APIRouter(tags=["operations"])


@metrics_router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
