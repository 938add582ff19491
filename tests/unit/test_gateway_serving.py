"""Idempotent retries, in-flight limits, deadlines, response headers and unexpected errors (TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gateway import ledger
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import Database, free_port, jpeg_bytes
from tests.unit.app_client import ADMIN_KEY, JPEG, PHOTO, balance, make_client, metric, tenant_key


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database)


def post_mask(client: TestClient, key: str, body: bytes = PHOTO, **headers: str):  # noqa: ANN201
    return client.post("/v1/mask", content=body, headers={**JPEG, "X-API-Key": key, **headers})


def test_a_retry_with_the_same_idempotency_key_is_not_billed_again(client: TestClient) -> None:
    tenant_id, _, key = tenant_key(client, credits=10)
    first = post_mask(client, key, **{"Idempotency-Key": "order-17"})
    retry = post_mask(client, key, **{"Idempotency-Key": "order-17"})
    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["X-Charge-Id"] == first.headers["X-Charge-Id"]  # the billed request's ledger row
    assert retry.headers["X-Request-Id"] != first.headers["X-Request-Id"]  # but a request of its own
    assert retry.headers["X-Credits-Charged"] == first.headers["X-Credits-Charged"] == "2"
    assert retry.headers["X-Credits-Remaining"] == "8" and balance(client, tenant_id) == 8
    assert ledger.audit(client.app.state.sessions, tenant_id).charged == 2
    fresh = post_mask(client, key, **{"Idempotency-Key": "order-18"})
    assert "Idempotent-Replayed" not in fresh.headers and balance(client, tenant_id) == 6


def test_an_idempotency_key_reused_for_another_photo_is_409_and_bad_keys_400(client: TestClient) -> None:
    tenant_id, _, key = tenant_key(client, credits=10)
    assert post_mask(client, key, **{"Idempotency-Key": "k1"}).status_code == 200
    other_photo = jpeg_bytes(np.full((64, 64, 3), 30, np.uint8))
    conflict = post_mask(client, key, other_photo, **{"Idempotency-Key": "k1"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_key_reused"
    too_long = post_mask(client, key, **{"Idempotency-Key": "x" * 256})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "invalid_idempotency_key"
    assert balance(client, tenant_id) == 8


def test_concurrent_duplicates_of_one_idempotency_key_are_billed_once(client: TestClient) -> None:
    tenant_id, _, key = tenant_key(client, credits=100, rate_per_s=100, burst=100)
    client.app.state.triton.delay_s = 0.2  # all eight are in flight together
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: post_mask(client, key, **{"Idempotency-Key": "same"}), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.headers["X-Charge-Id"] for r in responses}) == 1
    assert balance(client, tenant_id) == 98
    assert ledger.audit(client.app.state.sessions, tenant_id) == ledger.Books(98, granted=100, charged=2, reserved=0)


def test_a_tenant_over_its_requests_in_flight_gets_429_others_are_served(database: Database) -> None:
    for client in make_client(database, max_in_flight_per_tenant=2):
        tenant_id, _, key = tenant_key(client, credits=100, rate_per_s=100, burst=100)
        _, _, other_key = tenant_key(client, "other", credits=100)
        client.app.state.triton.delay_s = 0.5
        with ThreadPoolExecutor(max_workers=6) as pool:
            busy = [pool.submit(post_mask, client, key) for _ in range(5)]
            other = pool.submit(post_mask, client, other_key)
            statuses = sorted(f.result().status_code for f in busy)
            assert other.result().status_code == 200
        assert statuses == [200, 200, 429, 429, 429]
        refused = next(f.result() for f in busy if f.result().status_code == 429)
        assert refused.json()["error"]["code"] == "too_many_concurrent_requests"
        assert refused.headers["Retry-After"] == "1"
        assert balance(client, tenant_id) == 96  # only the two served were billed


def test_the_process_sheds_load_beyond_max_in_flight_with_503(database: Database) -> None:
    for client in make_client(database, max_in_flight=2):
        keys_ = [tenant_key(client, f"t{i}", credits=10)[2] for i in range(3)]
        client.app.state.triton.delay_s = 0.5
        with ThreadPoolExecutor(max_workers=3) as pool:
            responses = list(pool.map(partial(post_mask, client), keys_))
        shed = [r for r in responses if r.status_code == 503]
        assert len(shed) == 1 and sum(r.status_code == 200 for r in responses) == 2
        assert shed[0].json()["error"]["code"] == "overloaded" and shed[0].headers["Retry-After"] == "1"
        assert metric(client, 'gateway_rejections_total{reason="overload"}') == 1
        assert metric(client, 'gateway_requests_total{route="mask",status_class="5xx"}') == 1


def test_every_image_request_is_counted_including_auth_failures(client: TestClient) -> None:
    _, _, key = tenant_key(client, credits=10)
    client.post("/v1/mask", content=PHOTO, headers=JPEG)  # no key
    client.post("/v1/depth", content=PHOTO, headers={**JPEG, "X-API-Key": "isk_000000000000_wrong"})
    post_mask(client, key)
    assert metric(client, 'gateway_requests_total{route="mask",status_class="4xx"}') == 1
    assert metric(client, 'gateway_requests_total{route="depth",status_class="4xx"}') == 1
    assert metric(client, 'gateway_requests_total{route="mask",status_class="2xx"}') == 1
    assert metric(client, 'gateway_request_duration_seconds_count{route="mask"}') == 2
    assert metric(client, "gateway_in_flight_requests") == 0


def test_triton_gets_what_is_left_of_the_request_budget(database: Database) -> None:
    for client in make_client(database, request_budget_s=3):
        _, _, key = tenant_key(client, credits=10)
        assert post_mask(client, key).status_code == 200
        (timeout_s,) = client.app.state.triton.timeouts
        assert 2.0 < timeout_s <= 3.0


def test_security_headers_and_no_cors_unless_configured(client: TestClient, database: Database) -> None:
    _, _, key = tenant_key(client, credits=10)
    for response in (post_mask(client, key), client.get("/healthz"), client.get("/v1/usage")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert response.headers["Cache-Control"] == "no-store"
        assert "server" not in {name.lower() for name in response.headers if response.headers[name] == "uvicorn"}
    preflight = {"Origin": "https://photos.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/mask", headers=preflight).headers
    for allowed in make_client(database, cors_origins=["https://photos.example"]):
        response = allowed.options("/v1/mask", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://photos.example"


def test_an_unexpected_error_is_a_json_500_without_internals(database: Database) -> None:
    settings = GatewaySettings(triton_grpc_url=f"127.0.0.1:{free_port()}", database_url=database.url,
                               database_schema=database.schema, bootstrap_api_key=ADMIN_KEY)
    app = create_app(settings, CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as client:
        tenant_id, _, key = tenant_key(client, credits=10)

        class Broken:
            async def infer(self, *_: object, **__: object) -> None:
                raise RuntimeError("internal detail at 10.0.0.7:8001")

            async def close(self) -> None:
                pass

        app.state.triton = Broken()
        response = post_mask(client, key)
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert "10.0.0.7" not in response.text and "Traceback" not in response.text
        assert balance(client, tenant_id) == 10  # released
        assert response.headers["X-Content-Type-Options"] == "nosniff"  # 500s bypass the middleware
        assert response.headers["Cache-Control"] == "no-store" and "frame-ancestors" in response.headers[
            "Content-Security-Policy"]


def test_an_answer_before_the_body_was_read_closes_the_connection(client: TestClient) -> None:
    refused = client.post("/v1/mask", content=PHOTO, headers=JPEG)  # 401: the body is never read
    assert refused.status_code == 401 and refused.headers["Connection"] == "close"
    _, _, key = tenant_key(client, credits=10)
    wrong_type = client.post("/v1/mask", content=PHOTO, headers={"Content-Type": "text/plain", "X-API-Key": key})
    assert wrong_type.status_code == 415 and wrong_type.headers["Connection"] == "close"
    too_large = client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": key,
                                                                 "Content-Length": str(10**9)})
    assert too_large.status_code == 413 and too_large.headers["Connection"] == "close"
    served = post_mask(client, key)
    assert served.status_code == 200 and "Connection" not in served.headers


def test_uploads_beyond_the_byte_budget_get_503_before_their_body_is_read(database: Database) -> None:
    photo = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    for client in make_client(database, max_upload_bytes_in_flight=int(len(photo) * 1.5)):
        tenant_ids, keys_ = zip(*[tenant_key(client, f"b{i}", credits=100)[::2] for i in range(3)], strict=True)
        client.app.state.triton.delay_s = 0.5
        with ThreadPoolExecutor(max_workers=3) as pool:
            responses = list(pool.map(partial(post_mask, client, body=photo), keys_))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 503, 503], statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.json()["error"]["code"] == "upload_budget_exhausted" and refused.headers["Retry-After"] == "1"
        assert sum(100 - balance(client, t) for t in tenant_ids) == 2  # only the one served was billed
        assert client.app.state.upload_budget.used == 0  # every hold was given back
        assert post_mask(client, keys_[0], photo).status_code == 200


def test_the_upload_budget_is_a_quarter_of_the_memory_limit() -> None:
    assert GatewaySettings(memory_limit_bytes=2 * 2**30).upload_budget_bytes == 2**29
    assert GatewaySettings(memory_limit_bytes=2 * 2**30, max_upload_bytes_in_flight=10).upload_budget_bytes == 10
