"""``GET /v1/usage``: the caller's committed usage by day and operation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway import ledger
from gateway.deps import PrincipalDep, SessionsDep
from gateway.errors import ErrorBody

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
                       401: {"model": ErrorBody, "description": "Missing or invalid API key"}})
async def usage(principal: PrincipalDep, sessions: SessionsDep,
                days: Annotated[int, Query(ge=1, le=366, description="How many days back")] = 30) -> UsageReport:
    rows = await run_in_threadpool(ledger.usage, sessions, principal.tenant_id, days)
    balance = await run_in_threadpool(ledger.balance, sessions, principal.tenant_id)
    return UsageReport(tenant=principal.tenant_name, balance=balance, days=days,
                       usage=[UsageRow(**row) for row in rows])
