"""``GET /v1/usage``: the caller's committed usage by day and operation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway import ledger
from gateway.deps import PrincipalDep, SessionsDep
from gateway.errors import ErrorBody, TooManyRequests
from gateway.limits.rate import take_token

router = APIRouter(prefix="/v1", tags=["account"])


class UsageRow(BaseModel):
    day: str
    operation: str
    requests: int
    credits: int
    input_megapixels: float
    output_bytes: int


class UsageReport(BaseModel):
    tenant: str
    balance: int
    days: int
    usage: list[UsageRow]


@router.get("/usage", summary="Your usage per UTC day and operation, and your balance",
            responses={400: {"model": ErrorBody, "description": "Invalid parameter"},
                       401: {"model": ErrorBody, "description": "Missing or invalid API key"},
                       429: {"model": ErrorBody, "description": TooManyRequests.description}})
async def usage(request: Request, principal: PrincipalDep, sessions: SessionsDep,
                days: Annotated[int, Query(ge=1, le=366, description="How many days back")] = 30) -> UsageReport:
    decision = await take_token(request.app.state.rate_limiter, principal.key_id, principal.rate_per_s,
                                principal.burst)
    if not decision.allowed:  # the report reads the ledger: it shares the key's bucket with the image calls
        request.app.state.metrics.rejections.labels("rate").inc()
        raise TooManyRequests(f"over the rate limit of {principal.rate_per_s:g} requests/s for this key; retry "
                              f"after {decision.retry_after_s} s", headers=decision.headers())
    rows = await run_in_threadpool(ledger.usage, sessions, principal.tenant_id, days)
    balance = await run_in_threadpool(ledger.balance, sessions, principal.tenant_id)
    return UsageReport(tenant=principal.tenant_name, balance=balance, days=days,
                       usage=[UsageRow(**row) for row in rows])
