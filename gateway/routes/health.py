"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import MetricsDep, TritonDep
from gateway.routes.images import served_ensembles

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The gateway process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Triton and every model the gateway calls are ready",
            responses={503: {"description": "Not ready; `models` says which are missing"}})
async def readyz(triton: TritonDep) -> JSONResponse:
    models = await triton.model_readiness(served_ensembles())
    ready = all(models.values())
    body = {"status": "ready" if ready else "not_ready", "models": models}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
