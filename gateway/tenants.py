"""Tenants: who pays, what they may call, how fast."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from gateway.db import OPERATION_NAMES, Tenant
from gateway.ledger import grant


class TenantError(Exception):
    """A tenant request that cannot be done; the message says why and what to do."""


def parse_operations(value: str) -> str:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(OPERATION_NAMES))
    if unknown or not names:
        raise TenantError(f"operations must be a comma-separated subset of {','.join(OPERATION_NAMES)}; got {value!r}")
    return ",".join(name for name in OPERATION_NAMES if name in names)


def create_tenant(sessions: sessionmaker, name: str, credits: int = 0, operations: str = ",".join(OPERATION_NAMES),
                  rate_per_s: float = 5.0, burst: int = 10, monthly_quota: int | None = None) -> Tenant:
    if not name or len(name) > 64:
        raise TenantError("the tenant name must be 1 to 64 characters")
    if credits < 0 or rate_per_s <= 0 or burst < 1 or (monthly_quota is not None and monthly_quota < 0):
        raise TenantError("credits and monthly quota must be >= 0, rate > 0 and burst >= 1")
    tenant = Tenant(name=name, balance=credits, operations=parse_operations(operations), rate_per_s=rate_per_s,
                    burst=burst, monthly_quota=monthly_quota)
    try:
        with sessions.begin() as session:
            session.add(tenant)
            if credits:
                session.flush()
                grant(session, tenant.id, credits, "initial")
    except IntegrityError:
        raise TenantError(f"a tenant named {name!r} already exists") from None
    return tenant


def list_tenants(sessions: sessionmaker) -> list[Tenant]:
    with sessions() as session:
        return list(session.scalars(select(Tenant).order_by(Tenant.name)))
