"""Credits: reservations never overspend, releases give back, the ledger matches what was spent.

Runs on SQLite (a file in tmp) and on PostgreSQL (a fresh schema; marked integration).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway import ledger
from gateway.tenants import create_tenant


def charge(key_id: str = "k") -> ledger.Charge:
    return ledger.Charge(key_id=key_id, operation="mask", model="fast", input_megapixels=0.26, output_bytes=1000,
                         gateway_latency_ms=10.0, triton_latency_ms=5.0, request_id=uuid.uuid4().hex)


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
            reservation = ledger.reserve(sessions, tenant.id, 1)
        except ledger.InsufficientCredits as short:
            assert short.reason == "balance"
            return "refused"
        ledger.commit(sessions, reservation, charge())
        return "ok"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(one_request, range(200)))
    assert outcomes.count("ok") == 50
    assert outcomes.count("refused") == 150
    assert ledger.balance(sessions, tenant.id) == 0
    assert ledger.ledger_total(sessions, tenant.id) == 50


def test_release_gives_credits_back_and_writes_no_ledger_row(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=10)
    reservation = ledger.reserve(sessions, tenant.id, 7)
    assert reservation.remaining == 3
    with pytest.raises(ledger.InsufficientCredits):
        ledger.reserve(sessions, tenant.id, 4)
    ledger.release(sessions, reservation)
    assert ledger.balance(sessions, tenant.id) == 10
    assert ledger.ledger_total(sessions, tenant.id) == 0


def test_monthly_quota_refuses_even_with_balance(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=100, monthly_quota=5)
    first = ledger.reserve(sessions, tenant.id, 4)
    with pytest.raises(ledger.InsufficientCredits) as refused:
        ledger.reserve(sessions, tenant.id, 2)
    assert refused.value.reason == "monthly_quota"
    ledger.release(sessions, first)  # released credits count against the quota no more
    ledger.reserve(sessions, tenant.id, 5)
    assert ledger.balance(sessions, tenant.id) == 95


def test_usage_groups_by_day_and_operation(sessions) -> None:
    tenant = create_tenant(sessions, "acme", credits=100)
    other = create_tenant(sessions, "other", credits=100)
    for _ in range(3):
        ledger.commit(sessions, ledger.reserve(sessions, tenant.id, 2), charge())
    ledger.commit(sessions, ledger.reserve(sessions, other.id, 5), charge())
    rows = ledger.usage(sessions, tenant.id, days=7)
    assert len(rows) == 1
    assert rows[0]["operation"] == "mask" and rows[0]["requests"] == 3 and rows[0]["credits"] == 6
    assert len(rows[0]["day"]) == 10


def test_top_up_and_unknown_tenant(sessions) -> None:
    create_tenant(sessions, "acme", credits=1)
    assert ledger.add_credits(sessions, "acme", 9) == 10
    with pytest.raises(ledger.UnknownTenant):
        ledger.add_credits(sessions, "nobody", 1)
