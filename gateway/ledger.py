"""Metering statements: price, reserve, commit, release, sweep, and usage reports.

The order in which a request uses them (the billing protocol) is described once, in
``gateway.billing``. What this module guarantees: ``reserve`` is one conditional
``UPDATE ... WHERE balance >= cost`` plus a ``reservations`` row in one transaction, so
concurrent requests never overspend; ``commit`` turns that row into an append-only
``usage_ledger`` row; ``release`` deletes it and gives the credits back, and only the
transaction that deletes the row moves credits, so a release after a commit (or twice)
does nothing. Top-ups are ``credit_grants`` rows, so the books always balance:
``balance = sum(grants) - sum(ledger) - sum(open reservations)`` (``audit``).

When a reservation expires is the database's clock on PostgreSQL (where several replicas on
several hosts share the rows, so a replica whose clock runs slow or fast can neither make its
own reservations look abandoned to another's sweeper nor sweep another's live ones), and this
host's clock on SQLite (one file on one host, whose clock it is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Interval, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import CreditGrant, IdempotencyRecord, OpenReservation, Tenant, UsageRecord, as_utc, utcnow

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class InsufficientCredits(Exception):
    def __init__(self, reason: str, needed: int, balance: int) -> None:
        super().__init__(reason)
        self.reason = reason  # "balance" or "monthly_quota"
        self.needed = needed
        self.balance = balance


class UnknownTenant(Exception):
    pass


class ReservationGone(Exception):
    """The reservation was already released (by the sweeper): the result cannot be billed."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was first used for a different request."""


@dataclass(frozen=True)
class FirstCharge:
    """What the first request of an Idempotency-Key was billed."""

    request_id: str
    credits: int


@dataclass(frozen=True)
class IdempotencyClaim:
    key: str
    fingerprint: str


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
    id: str
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


# The statements of every request, built once on the tables (no ORM unit of work, no per-call
# statement construction): about half the CPU of building them per call (load_tests/results/tuning.md).
_TENANTS = Tenant.__table__
_USED_THIS_MONTH = case((_TENANTS.c.quota_month == bindparam("r_month"), _TENANTS.c.quota_used), else_=0)
_RESERVE = (
    update(_TENANTS)
    .where(_TENANTS.c.id == bindparam("r_tenant"), _TENANTS.c.balance >= bindparam("r_credits"),
           or_(_TENANTS.c.monthly_quota.is_(None),
               _USED_THIS_MONTH + bindparam("r_credits") <= _TENANTS.c.monthly_quota))
    .values(balance=_TENANTS.c.balance - bindparam("r_credits"), quota_used=_USED_THIS_MONTH + bindparam("r_credits"),
            quota_month=bindparam("r_month"))
    .returning(_TENANTS.c.balance)
)
_OPEN_RESERVATION = insert(OpenReservation.__table__)
_OPEN_RESERVATION_BY_DATABASE_CLOCK = insert(OpenReservation.__table__).values(
    created_at=func.now(), expires_at=func.now() + bindparam("hold", type_=Interval()))
_CLOSE_RESERVATION = delete(OpenReservation.__table__).where(OpenReservation.__table__.c.id == bindparam("r_id"))
_APPEND_USAGE = insert(UsageRecord.__table__)


def _shares_a_clock(session: Session) -> bool:
    """Whether reservation times come from the database's clock (PostgreSQL) rather than this host's."""
    return session.get_bind().dialect.name == "postgresql"


def reserve(sessions: sessionmaker, tenant_id: int, credits: int, request_id: str, hold: timedelta) -> Reservation:
    """Take ``credits`` from the balance and monthly quota for at most ``hold``, or raise ``InsufficientCredits``."""
    now = utcnow()
    month = _month(now)
    with sessions.begin() as session:
        remaining = session.execute(_RESERVE, {"r_tenant": tenant_id, "r_credits": credits, "r_month": month}
                                    ).scalar_one_or_none()
        if remaining is not None:
            row = {"id": request_id, "tenant_id": tenant_id, "credits": credits, "month": month}
            if _shares_a_clock(session):
                session.execute(_OPEN_RESERVATION_BY_DATABASE_CLOCK, row | {"hold": hold})
            else:
                session.execute(_OPEN_RESERVATION, row | {"created_at": now, "expires_at": now + hold})
    if remaining is not None:
        return Reservation(request_id, tenant_id, credits, month, remaining)
    with sessions() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        reason = "balance" if tenant.balance < credits else "monthly_quota"
        raise InsufficientCredits(reason, credits, tenant.balance)


def warm_up(sessions: sessionmaker) -> None:
    """Open a pooled connection and compile the per-request statements before the first request pays for it.

    Changes nothing: no tenant has id 0 and no reservation an empty id.
    """
    with sessions.begin() as session:
        session.execute(_RESERVE, {"r_tenant": 0, "r_credits": 0, "r_month": ""})
        session.execute(_CLOSE_RESERVATION, {"r_id": ""})


def release(sessions: sessionmaker, reservation_id: str) -> int:
    """Give a reservation back (balance and, if still the same month, the quota); returns the credits returned.

    Returns 0 when the reservation is no longer open (committed, or released already).
    """
    with sessions.begin() as session:
        row = session.execute(
            delete(OpenReservation).where(OpenReservation.id == reservation_id)
            .returning(OpenReservation.tenant_id, OpenReservation.credits, OpenReservation.month)
        ).first()
        if row is None:
            return 0
        session.execute(
            update(Tenant).where(Tenant.id == row.tenant_id)
            .values(balance=Tenant.balance + row.credits,
                    quota_used=case((Tenant.quota_month == row.month, Tenant.quota_used - row.credits),
                                    else_=Tenant.quota_used))
            .execution_options(synchronize_session=False)
        )
        return int(row.credits)


def commit(sessions: sessionmaker, reservation: Reservation, charge: Charge,
           idempotency: IdempotencyClaim | None = None) -> None:
    """Close the reservation and append its ledger row (and the Idempotency-Key's record) in one transaction.

    Raises ``ReservationGone`` if the sweeper released it meanwhile, ``IntegrityError``
    if the Idempotency-Key was claimed concurrently by another request, and any
    database error as is; in every case nothing was written.
    """
    with sessions.begin() as session:
        closed = session.execute(_CLOSE_RESERVATION, {"r_id": reservation.id}).rowcount
        if closed != 1:
            raise ReservationGone(reservation.id)
        session.execute(_APPEND_USAGE, {
            "tenant_id": reservation.tenant_id, "key_id": charge.key_id, "operation": charge.operation,
            "model": charge.model, "input_megapixels": charge.input_megapixels, "output_bytes": charge.output_bytes,
            "credits": reservation.credits, "gateway_latency_ms": charge.gateway_latency_ms,
            "triton_latency_ms": charge.triton_latency_ms, "request_id": charge.request_id, "created_at": utcnow(),
        })
        if idempotency is not None:
            session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == reservation.tenant_id, IdempotencyRecord.key == idempotency.key,
                IdempotencyRecord.created_at < utcnow() - IDEMPOTENCY_WINDOW))
            session.execute(insert(IdempotencyRecord).values(
                tenant_id=reservation.tenant_id, key=idempotency.key, fingerprint=idempotency.fingerprint,
                request_id=charge.request_id, credits=reservation.credits))


def first_charge(sessions: sessionmaker, tenant_id: int, claim: IdempotencyClaim) -> FirstCharge | None:
    """The charge of an earlier request with the same Idempotency-Key within the window, if any.

    Raises ``IdempotencyConflict`` if that request was a different one.
    """
    with sessions() as session:
        record = session.get(IdempotencyRecord, (tenant_id, claim.key))
    if record is None or as_utc(record.created_at) < utcnow() - IDEMPOTENCY_WINDOW:
        return None
    if record.fingerprint != claim.fingerprint:
        raise IdempotencyConflict(claim.key)
    return FirstCharge(record.request_id, int(record.credits))


def sweep_expired(sessions: sessionmaker, now: datetime | None = None) -> int:
    """Release reservations left by dead processes and forget expired Idempotency-Keys; returns credits returned.

    ``now`` (tests) replaces the clock reservations expire by (the database's on PostgreSQL)."""
    with sessions() as session:
        clock = now or (func.now() if _shares_a_clock(session) else utcnow())
        expired = list(session.scalars(select(OpenReservation.id).where(OpenReservation.expires_at < clock)))
    now = now or utcnow()
    returned = sum(release(sessions, reservation_id) for reservation_id in expired)
    with sessions.begin() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - IDEMPOTENCY_WINDOW))
    return returned


def grant(session: Session, tenant_id: int, credits: int, reason: str) -> None:
    """Record credits given to a tenant (the caller updates the balance in the same transaction)."""
    session.add(CreditGrant(tenant_id=tenant_id, credits=credits, reason=reason))


def add_credits(sessions: sessionmaker, tenant_name: str, credits: int) -> int:
    """Top up a tenant; returns the new balance."""
    with sessions.begin() as session:
        row = session.execute(
            update(Tenant).where(Tenant.name == tenant_name).values(balance=Tenant.balance + credits)
            .returning(Tenant.id, Tenant.balance).execution_options(synchronize_session=False)
        ).first()
        if row is None:
            raise UnknownTenant(tenant_name)
        grant(session, row.id, credits, "top-up")
    return int(row.balance)


@dataclass(frozen=True)
class Books:
    balance: int
    granted: int
    charged: int
    reserved: int

    @property
    def balanced(self) -> bool:
        return self.balance == self.granted - self.charged - self.reserved


def audit(sessions: sessionmaker, tenant_id: int) -> Books:
    """The tenant's balance next to what grants, charges and open reservations say it should be."""
    def total(column, where):  # noqa: ANN001, ANN202
        return int(session.scalar(select(func.coalesce(func.sum(column), 0)).where(where)))

    with sessions() as session:
        return Books(
            balance=int(session.scalar(select(Tenant.balance).where(Tenant.id == tenant_id))),
            granted=total(CreditGrant.credits, CreditGrant.tenant_id == tenant_id),
            charged=total(UsageRecord.credits, UsageRecord.tenant_id == tenant_id),
            reserved=total(OpenReservation.credits, OpenReservation.tenant_id == tenant_id),
        )


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
