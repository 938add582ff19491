"""Request IDs in every answer and one access-log line per request (``gateway.request_log``), in process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.request_log import ACCESS_LOGGER
from tests.conftest import Database
from tests.unit.app_client import JPEG, PHOTO, make_client, tenant_key


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database)


def lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def test_an_error_names_its_request_id_in_the_header_and_the_body(client: TestClient) -> None:
    for response in (client.post("/v1/mask", content=PHOTO, headers=JPEG),  # 401: no key
                     client.get("/v1/nowhere"),  # 404
                     client.post("/v1/mask?max_side=-1", content=PHOTO, headers={**JPEG, "X-API-Key": "x"})):
        request_id = response.headers["X-Request-Id"]
        assert len(request_id) == 32 and response.json()["error"]["request_id"] == request_id


def test_each_request_gets_its_own_id_and_one_log_line_without_secrets(client: TestClient,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    tenant_id, key_id, key = tenant_key(client, credits=10)
    ok = client.post("/v1/mask?model=fast&max_side=32", content=PHOTO, headers={**JPEG, "X-API-Key": key})
    refused = client.post("/v1/mask", content=PHOTO, headers={**JPEG, "X-API-Key": "not-a-key"})
    assert ok.status_code == 200 and refused.status_code == 401
    assert ok.headers["X-Request-Id"] != refused.headers["X-Request-Id"]
    served, denied = lines(caplog)[-2:]
    assert served["request_id"] == ok.headers["X-Request-Id"] and served["status"] == 200
    assert served["path"] == "/v1/mask" and served["operation"] == "mask" and served["variant"] == "fast"
    assert (served["tenant"], served["key"], served["credits"]) == (tenant_id, key_id, 2)
    assert served["bytes_out"] == len(ok.content) and served["bytes_in"] == len(PHOTO) and served["duration_ms"] > 0
    assert served["charge_id"] == ok.headers["X-Charge-Id"] and served["triton_ms"] >= 0
    assert denied["request_id"] == refused.headers["X-Request-Id"] and denied["status"] == 401
    named = client.post("/v1/mask", files={"image": ("holiday-in-paris.jpg", PHOTO, "image/jpeg")},
                        headers={"X-API-Key": key})
    assert named.status_code == 200
    text = caplog.text
    assert key not in text and "not-a-key" not in text and "max_side" not in text  # no key, no query string
    assert "holiday-in-paris" not in text and PHOTO[:64].hex() not in text and "\\xff\\xd8" not in text


def test_a_replay_logs_no_credits_and_names_the_first_request(client: TestClient,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    _, _, key = tenant_key(client, credits=10)
    headers = {**JPEG, "X-API-Key": key, "Idempotency-Key": "order-1"}
    first = client.post("/v1/mask", content=PHOTO, headers=headers)
    retry = client.post("/v1/mask", content=PHOTO, headers=headers)
    assert retry.headers["X-Charge-Id"] == first.headers["X-Charge-Id"]  # the billed request's ledger row
    billed, replayed = lines(caplog)[-2:]
    assert billed["credits"] == 2 and billed["charge_id"] == first.headers["X-Charge-Id"]
    assert replayed["credits"] == 0 and replayed["replayed"] and replayed["charge_id"] == billed["charge_id"]
    assert replayed["request_id"] == retry.headers["X-Request-Id"] != billed["request_id"]


def test_a_valid_incoming_request_id_is_echoed_and_an_invalid_one_replaced(client: TestClient,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    traced = client.get("/healthz", headers={"X-Request-Id": "trace-4bf92f3577b34da6"})
    assert traced.headers["X-Request-Id"] == "trace-4bf92f3577b34da6"
    assert lines(caplog)[-1]["request_id"] == "trace-4bf92f3577b34da6"
    for bad in ("", "a" * 65, "has space", "<script>"):
        answer = client.get("/healthz", headers={"X-Request-Id": bad})
        assert len(answer.headers["X-Request-Id"]) == 32 and answer.headers["X-Request-Id"] != bad
