"""Metering: price, reserve, commit, release, and usage reports.

Credits move in three steps so failed calls are never billed:

1. ``reserve`` takes the cost from the tenant's balance (and monthly quota) in
   one transaction with a conditional ``UPDATE ... WHERE balance >= cost``, so
   concurrent requests can never overspend: the database serialises the row
   update and re-checks the condition.
2. ``commit`` appends a ``usage_ledger`` row after a successful inference; the
   credits stay taken.
3. ``release`` gives the credits back when anything failed after the
   reservation (bad input found by Triton, Triton error or timeout, client
   gone). If the ledger row cannot be written the credits are released too:
   nothing is billed without a ledger row, so ``sum(ledger.credits)`` always
   equals the credits spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import sessionmaker

from gateway.db import Tenant, UsageRecord, utcnow


class InsufficientCredits(Exception):
    def __init__(self, reason: str, needed: int, balance: int) -> None:
        super().__init__(reason)
        self.reason = reason  # "balance" or "monthly_quota"
        self.needed = needed
        self.balance = balance


class UnknownTenant(Exception):
    pass


@dataclass(frozen=True)
class PriceTable:
    """Cost of one request in whole credits::

        credits = base[operation] + ceil(input_megapixels * per_megapixel)

    e.g. with base depth=1 and per_megapixel=1, a 12 MP photo costs 1 + 12 = 13
    credits and a 0.26 MP (512x512) photo costs 1 + 1 = 2. Charging by input
    size follows the work: decoding and resizing back dominate at large sizes.
    """

    base: dict[str, int]
    per_megapixel: float

    def cost(self, operation: str, megapixels: float) -> int:
        return self.base[operation] + math.ceil(round(megapixels * self.per_megapixel, 9))


@dataclass(frozen=True)
class Reservation:
    tenant_id: int
    credits: int
    month: str
    remaining: int  # balance after the reservation


@dataclass(frozen=True)
class Charge:
    key_id: str
    operation: str
    model: str
    input_megapixels: float
    output_bytes: int
    gateway_latency_ms: float
    triton_latency_ms: float
    request_id: str


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def reserve(sessions: sessionmaker, tenant_id: int, credits: int) -> Reservation:
    """Take ``credits`` from the balance and monthly quota, or raise ``InsufficientCredits``."""
    month = _month(utcnow())
    used_this_month = case((Tenant.quota_month == month, Tenant.quota_used), else_=0)
    with sessions.begin() as session:
        result = session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id, Tenant.balance >= credits,
                   or_(Tenant.monthly_quota.is_(None), used_this_month + credits <= Tenant.monthly_quota))
            .values(balance=Tenant.balance - credits, quota_used=used_this_month + credits, quota_month=month)
            .returning(Tenant.balance)
            .execution_options(synchronize_session=False)
        )
        remaining = result.scalar_one_or_none()
    if remaining is not None:
        return Reservation(tenant_id, credits, month, remaining)
    with sessions() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        reason = "balance" if tenant.balance < credits else "monthly_quota"
        raise InsufficientCredits(reason, credits, tenant.balance)


def release(sessions: sessionmaker, reservation: Reservation) -> None:
    """Give a reservation back (balance and, if still the same month, the quota)."""
    with sessions.begin() as session:
        session.execute(
            update(Tenant).where(Tenant.id == reservation.tenant_id)
            .values(balance=Tenant.balance + reservation.credits,
                    quota_used=case((Tenant.quota_month == reservation.month,
                                     Tenant.quota_used - reservation.credits), else_=Tenant.quota_used))
            .execution_options(synchronize_session=False)
        )


def commit(sessions: sessionmaker, reservation: Reservation, charge: Charge) -> None:
    """Append the ledger row of a reservation that was used; raises if the row cannot be written."""
    with sessions.begin() as session:
        session.add(UsageRecord(
            tenant_id=reservation.tenant_id, key_id=charge.key_id, operation=charge.operation, model=charge.model,
            input_megapixels=charge.input_megapixels, output_bytes=charge.output_bytes, credits=reservation.credits,
            gateway_latency_ms=charge.gateway_latency_ms, triton_latency_ms=charge.triton_latency_ms,
            request_id=charge.request_id,
        ))


def add_credits(sessions: sessionmaker, tenant_name: str, credits: int) -> int:
    """Top up a tenant; returns the new balance."""
    with sessions.begin() as session:
        balance = session.execute(
            update(Tenant).where(Tenant.name == tenant_name).values(balance=Tenant.balance + credits)
            .returning(Tenant.balance).execution_options(synchronize_session=False)
        ).scalar_one_or_none()
    if balance is None:
        raise UnknownTenant(tenant_name)
    return balance


def balance(sessions: sessionmaker, tenant_id: int) -> int:
    with sessions() as session:
        return session.scalar(select(Tenant.balance).where(Tenant.id == tenant_id))


def usage(sessions: sessionmaker, tenant_id: int, days: int) -> list[dict[str, object]]:
    """The tenant's committed usage per UTC day and operation over the last ``days`` days, oldest first."""
    since = utcnow() - timedelta(days=days)
    day = func.date(UsageRecord.created_at)
    query = (
        select(day.label("day"), UsageRecord.operation, func.count().label("requests"),
               func.sum(UsageRecord.credits).label("credits"),
               func.sum(UsageRecord.input_megapixels).label("megapixels"),
               func.sum(UsageRecord.output_bytes).label("output_bytes"))
        .where(and_(UsageRecord.tenant_id == tenant_id, UsageRecord.created_at >= since))
        .group_by(day, UsageRecord.operation)
        .order_by(day, UsageRecord.operation)
    )
    with sessions() as session:
        return [
            {"day": str(row.day), "operation": row.operation, "requests": int(row.requests),
             "credits": int(row.credits), "input_megapixels": round(float(row.megapixels), 3),
             "output_bytes": int(row.output_bytes)}
            for row in session.execute(query)
        ]


def ledger_total(sessions: sessionmaker, tenant_id: int) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.coalesce(func.sum(UsageRecord.credits), 0))
                                  .where(UsageRecord.tenant_id == tenant_id)))
