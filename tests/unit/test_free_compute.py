"""Failed calls are not billed, but the work they cost Triton is bounded: per tenant for failures that
reached the models, per Idempotency-Key (and by the balance) for replays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.errors import BadImage
from tests.conftest import Database
from tests.unit.app_client import JPEG, PHOTO, balance, make_client, tenant_key

COST = 2  # a mask of the test photo


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database, max_unbilled_failures_per_minute=3, max_replays_per_key=2)


def post(client: TestClient, key: str, **headers: str):  # noqa: ANN201
    return client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": key, **headers})


def test_failures_that_reached_the_models_are_free_but_bounded_per_tenant(client: TestClient) -> None:
    tenant_id, _, key = tenant_key(client, credits=100)
    _, _, other = tenant_key(client, "other", credits=100)
    triton = client.app.state.triton
    triton.error = BadImage("the PNG is truncated", code="undecodable_image")
    statuses = [post(client, key).status_code for _ in range(8)]
    assert statuses[:4] == [422] * 4  # the allowance: 3 a minute, refused from the fourth failure on
    assert statuses[4:] == [429] * 4
    assert triton.calls == 4, "a tenant past its allowance must not reach Triton"
    refused = post(client, key)
    assert refused.json()["error"]["code"] == "too_many_failed_requests" and int(refused.headers["Retry-After"]) >= 1
    assert balance(client, tenant_id) == 100  # none of it billed
    triton.error = None
    assert post(client, other).status_code == 200  # other tenants are not affected


def test_a_replay_needs_a_balance_that_could_pay_for_it(client: TestClient) -> None:
    tenant_id, _, key = tenant_key(client, credits=COST)
    assert post(client, key, **{"Idempotency-Key": "k1"}).status_code == 200
    assert balance(client, tenant_id) == 0
    calls = client.app.state.triton.calls
    replay = post(client, key, **{"Idempotency-Key": "k1"})
    assert replay.status_code == 402 and "not billed again" in replay.json()["error"]["message"]
    assert client.app.state.triton.calls == calls


def test_replays_of_one_key_are_capped(client: TestClient) -> None:
    _, _, key = tenant_key(client, credits=100)
    answers = [post(client, key, **{"Idempotency-Key": "k2"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    assert answers[3].json()["error"]["code"] == "too_many_replays"
    assert client.app.state.triton.calls == 3
