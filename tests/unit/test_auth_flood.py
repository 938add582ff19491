"""Unauthenticated and cheap paths stay bounded: made-up keys, usage polling, readiness probes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from gateway.auth import LOOKUP_BURST, LOOKUP_RATE_PER_S
from gateway.limits.rate import InProcessRateLimiter
from tests.conftest import Database
from tests.unit.app_client import JPEG, PHOTO, make_client, tenant_key


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database)


@pytest.fixture
def key_reads(client: TestClient) -> Iterator[list[str]]:
    """Every SQL statement that reads the API keys table."""
    engine = client.app.state.sessions.kw["bind"]
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "api_keys" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def bogus_key() -> str:
    return f"isk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def test_a_flood_of_made_up_keys_costs_a_bounded_number_of_reads_and_spares_the_payer(
        client: TestClient, key_reads: list[str]) -> None:
    _, _, payer = tenant_key(client, credits=10_000, rate_per_s=1000, burst=1000)
    assert client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": payer}).status_code == 200
    # The lookup bucket's clock stands still, so the flood outruns its refill however slow this machine is
    # (on a busy 2-core machine 300 requests could take long enough to refill it, and never see a refusal).
    client.app.state.key_lookups = InProcessRateLimiter(lambda: 0.0)
    key_reads.clear()
    statuses, payer_statuses = [], []
    started = time.monotonic()
    for i in range(3 * LOOKUP_BURST):
        statuses.append(client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": bogus_key()}).status_code)
        if i % 10 == 0:
            answer = client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": payer})
            payer_statuses.append(answer.status_code)
    budget = LOOKUP_BURST + LOOKUP_RATE_PER_S * (time.monotonic() - started) + 1
    assert set(payer_statuses) == {200}
    assert statuses.count(401) <= budget and set(statuses) <= {401, 503}
    assert statuses.count(503) >= len(statuses) - budget  # past the budget: no read, a retryable refusal
    assert statuses.count(503) > 0
    assert len(key_reads) <= budget, f"{len(key_reads)} key reads for {len(statuses)} made-up keys"


def test_a_repeated_bad_key_is_read_once(client: TestClient, key_reads: list[str]) -> None:
    key = bogus_key()
    for _ in range(20):
        answer = client.post("/v1/depth", content=PHOTO, headers={**JPEG, "X-API-Key": key})
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    assert len(key_reads) == 1


def test_usage_shares_the_keys_rate_limit(client: TestClient) -> None:
    _, _, key = tenant_key(client, rate_per_s=0.01, burst=3)
    answers = [client.get("/v1/usage", headers={"X-API-Key": key}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limited" and "Retry-After" in answers[-1].headers


def test_readiness_probes_share_one_check_a_second(client: TestClient) -> None:
    triton = client.app.state.triton
    checks = []
    original = triton.model_readiness

    async def counted(models: list[str]) -> dict[str, bool]:
        checks.append(models)
        return await original(models)

    triton.model_readiness = counted
    answers = [client.get("/readyz") for _ in range(50)]
    assert {a.status_code for a in answers} == {200} and answers[0].json()["status"] == "ready"
    assert len(checks) <= 2
