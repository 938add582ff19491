"""Bad input is refused by the gateway itself, before any Triton call.

The app here points at a Triton address where nothing listens: a request
that reached Triton would get 503, so every 4xx below proves the early check.
"""

import io
import secrets

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import free_port, jpeg_bytes

ADMIN_KEY = secrets.token_urlsafe(32)


@pytest.fixture
def client(tmp_path) -> TestClient:
    """Authenticated with the bootstrap admin key; the database is a SQLite file in tmp."""
    settings = GatewaySettings(triton_grpc_url=f"127.0.0.1:{free_port()}", max_body_bytes=200_000,
                               max_pixels=1_000_000, request_budget_s=2,
                               database_url=f"sqlite:///{tmp_path / 'gateway.db'}", bootstrap_api_key=ADMIN_KEY)
    with TestClient(create_app(settings, CollectorRegistry()), headers={"X-API-Key": ADMIN_KEY}) as test_client:
        yield test_client


PHOTO = jpeg_bytes(np.full((64, 64, 3), 120, np.uint8))


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"", "image/jpeg", 422, "empty_body"),
    (b"definitely not an image", "image/jpeg", 415, "unsupported_format"),
    (PHOTO[: len(PHOTO) // 2], "image/jpeg", 422, "truncated_image"),
    (PHOTO, "image/png", 415, "content_type_mismatch"),
    (PHOTO, "text/plain", 415, "unsupported_media_type"),
    (png_bytes(1001, 1000), "image/png", 413, "too_many_pixels"),
    (b"\xff" * 300_000, "image/jpeg", 413, "payload_too_large"),
])
def test_bad_bodies_get_a_named_4xx(client: TestClient, body: bytes, content_type: str, status: int, code: str) -> None:
    response = client.post("/v1/mask", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_bad_query_parameters(client: TestClient) -> None:
    response = client.post("/v1/mask?model=huge", content=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 400 and "fast" in response.json()["error"]["message"]
    response = client.post("/v1/depth?max_side=-1", content=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 400
    response = client.post("/v1/depth?max_side=100000", content=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 400 and "over the limit" in response.json()["error"]["message"]


def test_multipart_without_image_field(client: TestClient) -> None:
    response = client.post("/v1/cutout", files={"photo": ("a.jpg", PHOTO, "image/jpeg")})
    assert response.status_code == 400 and "'image'" in response.json()["error"]["message"]


def test_malformed_multipart(client: TestClient) -> None:
    response = client.post("/v1/cutout", content=b"--x\r\ngarbage", headers={"Content-Type": "multipart/form-data"})
    assert response.status_code == 400 and "boundary" in response.json()["error"]["message"]


def test_valid_photo_reaches_triton_and_gets_503_when_it_is_down(client: TestClient) -> None:
    response = client.post("/v1/depth", content=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert client.get("/v1/nope").json()["error"]["code"] == "not_found"
    response = client.get("/v1/depth")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_rejections_are_counted(client: TestClient) -> None:
    client.post("/v1/mask", content=b"junk", headers={"Content-Type": "image/jpeg"})
    metrics = client.get("/metrics").text
    assert 'gateway_rejections_total{reason="bad_input"} 1.0' in metrics
    assert 'gateway_requests_total{route="mask",status_class="4xx"} 1.0' in metrics
