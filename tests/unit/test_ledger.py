"""Credits: reservations never overspend, releases give back, the ledger matches what was spent.

Runs on SQLite (a file in tmp) and on PostgreSQL (a fresh schema; marked integration).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from gateway import ledger
from gateway.tenants import create_tenant, list_tenants

HOLD = timedelta(seconds=90)


def charge(reservation: ledger.Reservation | None = None) -> ledger.Charge:
    request_id = reservation.id if reservation is not None else uuid.uuid4().hex
    return ledger.Charge(key_id="k", operation="mask", model="fast", input_megapixels=0.26, output_bytes=1000,
                         gateway_latency_ms=10.0, triton_latency_ms=5.0, request_id=request_id)


def reserve(sessions, tenant_id: int, credits: int, hold: timedelta = HOLD) -> ledger.Reservation:
    return ledger.reserve(sessions, tenant_id, credits, uuid.uuid4().hex, hold)


def bill(sessions, tenant_id: int, credits: int, claim: ledger.IdempotencyClaim | None = None) -> ledger.Reservation:
    reservation = reserve(sessions, tenant_id, credits)
    ledger.commit(sessions, reservation, charge(reservation), claim)
    return reservation


def test_price_formula() -> None:
    prices = ledger.PriceTable({"depth": 1, "mask": 1, "cutout": 2}, per_megapixel=1.0)
    assert prices.cost("depth", 12.0) == 13
    assert prices.cost("depth", 0.262144) == 2
    assert prices.cost("cutout", 1.0) == 3
    assert ledger.PriceTable({"depth": 1, "mask": 1, "cutout": 2}, 0.0).cost("mask", 40.0) == 1


def test_200_concurrent_reservations_with_credits_for_50(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=50)
    start = threading.Barrier(50)
    outcomes: list[str] = []

    def one_request(_: int) -> str:
        try:
            start.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        try:
            reservation = reserve(sessions, tenant.id, 1)
        except ledger.InsufficientCredits as short:
            assert short.reason == "balance"
            return "refused"
        ledger.commit(sessions, reservation, charge(reservation))
        return "ok"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(one_request, range(200)))
    assert outcomes.count("ok") == 50
    assert outcomes.count("refused") == 150
    assert ledger.balance(sessions, tenant.id) == 0
    assert ledger.audit(sessions, tenant.id).charged == 50
    assert ledger.audit(sessions, tenant.id) == ledger.Books(balance=0, granted=50, charged=50, reserved=0)


def test_release_gives_credits_back_and_writes_no_ledger_row(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    reservation = reserve(sessions, tenant.id, 7)
    assert reservation.remaining == 3
    assert ledger.audit(sessions, tenant.id).reserved == 7
    with pytest.raises(ledger.InsufficientCredits):
        reserve(sessions, tenant.id, 4)
    assert ledger.release(sessions, reservation.id) == 7
    assert ledger.release(sessions, reservation.id) == 0  # a second release gives nothing twice
    assert ledger.balance(sessions, tenant.id) == 10
    assert ledger.audit(sessions, tenant.id).charged == 0
    assert ledger.audit(sessions, tenant.id).balanced


def test_release_after_commit_changes_nothing(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    reservation = bill(sessions, tenant.id, 4)
    assert ledger.release(sessions, reservation.id) == 0
    assert ledger.balance(sessions, tenant.id) == 6
    assert ledger.audit(sessions, tenant.id) == ledger.Books(balance=6, granted=10, charged=4, reserved=0)


def test_sweeper_returns_abandoned_reservations_and_a_late_commit_is_refused(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    abandoned = reserve(sessions, tenant.id, 3, hold=timedelta(seconds=-1))  # its process "died"; already expired
    live = reserve(sessions, tenant.id, 2)
    assert ledger.sweep_expired(sessions) == 3
    assert ledger.balance(sessions, tenant.id) == 8
    with pytest.raises(ledger.ReservationGone):
        ledger.commit(sessions, abandoned, charge(abandoned))
    ledger.commit(sessions, live, charge(live))
    assert ledger.audit(sessions, tenant.id) == ledger.Books(balance=8, granted=10, charged=2, reserved=0)


def test_a_replica_with_a_skewed_clock_neither_loses_nor_keeps_reservations(sessions, monkeypatch) -> None:
    """On PostgreSQL reservations expire by the database's clock: a replica whose clock runs 10 minutes slow
    does not make its live reservation look abandoned to a sweeper with a right clock, and a sweeper whose
    clock runs fast does not take it either. (On SQLite, one host's file, the host's clock is the one.)"""
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite is one host's file: its reservations use that host's clock")
    real = ledger.utcnow
    tenant = create_tenant(sessions, "acme", credits=10)
    monkeypatch.setattr(ledger, "utcnow", lambda: real() - timedelta(minutes=10))
    live = reserve(sessions, tenant.id, 4, hold=timedelta(seconds=60))
    monkeypatch.setattr(ledger, "utcnow", lambda: real() + timedelta(minutes=10))
    assert ledger.sweep_expired(sessions) == 0
    ledger.commit(sessions, live, charge(live))
    reserve(sessions, tenant.id, 3, hold=timedelta(seconds=-1))  # its replica died; expired
    monkeypatch.setattr(ledger, "utcnow", lambda: real() - timedelta(minutes=10))
    assert ledger.sweep_expired(sessions) == 3  # expired by the database's clock, whatever this host's says
    assert ledger.audit(sessions, tenant.id) == ledger.Books(balance=6, granted=10, charged=4, reserved=0)


def test_monthly_quota_refuses_even_with_balance(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=100, monthly_quota=5)
    first = reserve(sessions, tenant.id, 4)
    with pytest.raises(ledger.InsufficientCredits) as refused:
        reserve(sessions, tenant.id, 2)
    assert refused.value.reason == "monthly_quota"
    ledger.release(sessions, first.id)  # released credits count against the quota no more
    reserve(sessions, tenant.id, 5)
    assert ledger.balance(sessions, tenant.id) == 95


def test_usage_groups_by_day_and_operation(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=100)
    other = create_tenant(sessions, "other", credits=100)
    for _ in range(3):
        bill(sessions, tenant.id, 2)
    bill(sessions, other.id, 5)
    rows = ledger.usage(sessions, tenant.id, days=7)
    assert len(rows) == 1
    assert rows[0]["operation"] == "mask" and rows[0]["requests"] == 3 and rows[0]["credits"] == 6
    assert len(rows[0]["day"]) == 10


def test_top_up_and_unknown_tenant(sessions) -> None:
    create_tenant(sessions, "acme", credits=1)
    assert ledger.add_credits(sessions, "acme", 9) == 10
    with pytest.raises(ledger.UnknownTenant):
        ledger.add_credits(sessions, "nobody", 1)
    assert ledger.audit(sessions, tenant_id_of(sessions, "acme")) == ledger.Books(10, granted=10, charged=0, reserved=0)


def tenant_id_of(sessions, name: str) -> int:
    return next(t.id for t in list_tenants(sessions) if t.name == name)


def test_idempotency_key_is_billed_once_and_refuses_a_different_request(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    claim = ledger.IdempotencyClaim("retry-1", fingerprint="a" * 64)
    assert ledger.first_charge(sessions, tenant.id, claim) is None
    first = bill(sessions, tenant.id, 3, claim)
    assert ledger.first_charge(sessions, tenant.id, claim) == ledger.FirstCharge(first.id, 3)
    with pytest.raises(IntegrityError):  # a concurrent duplicate cannot be billed a second time
        bill(sessions, tenant.id, 3, claim)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.first_charge(sessions, tenant.id, ledger.IdempotencyClaim("retry-1", fingerprint="b" * 64))
    other = create_tenant(sessions, "other", credits=10)  # keys are per tenant
    assert ledger.first_charge(sessions, other.id, claim) is None
    assert ledger.audit(sessions, tenant.id).charged == 3


def test_warm_up_compiles_the_reservation_statements_and_changes_nothing(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    compiled = sessions.kw["bind"]._compiled_cache  # SQLAlchemy's per-engine cache of compiled statements
    before = len(compiled)
    ledger.warm_up(sessions)
    assert len(compiled) == before + 2  # the reserve UPDATE and the reservation DELETE
    warmed = len(compiled)
    reserve(sessions, tenant.id, 2)
    assert len(compiled) == warmed + 1  # only the reservation INSERT was new: the UPDATE came from the cache
    books = ledger.audit(sessions, tenant.id)
    assert (books.balance, books.charged, books.reserved) == (8, 0, 2) and books.balanced
