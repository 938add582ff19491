"""``/v1.0/removebg`` at the gateway (TestClient, scripted Triton): remove.bg's fields become our operations,
its answers and errors have remove.bg's shape, and every refusal is remove.bg-style, before Triton, unbilled."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Database, jpeg_bytes
from tests.unit.app_client import PHOTO, balance, make_client, tenant_key

BIG = jpeg_bytes(np.full((1200, 1600, 3), 90, np.uint8))  # 1.92 MP


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database)


@pytest.fixture
def key(client: TestClient) -> tuple[int, str]:
    tenant_id, _, key = tenant_key(client, credits=100)
    return tenant_id, key


def post(client: TestClient, key: str, photo: bytes = PHOTO, **data: str):  # noqa: ANN201
    return client.post("/v1.0/removebg", files={"image_file": ("me.jpg", photo, "image/jpeg")}, data=data,
                       headers={"X-Api-Key": key})


@pytest.mark.parametrize(("data", "ensemble", "sent"), [
    ({}, "photo_cutout_auto", {"FORMAT": "png", "MAX_SIDE": 0}),
    ({"type": "product"}, "photo_cutout_object", {"FORMAT": "png"}),
    ({"channels": "alpha"}, "photo_mask_auto", {"FORMAT": "png"}),
    ({"bg_color": "81d4fa"}, "photo_background_auto", {"COLOR": "81d4fa", "FORMAT": "jpeg"}),
    ({"bg_color": "fff", "format": "png"}, "photo_background_auto", {"COLOR": "ffffff", "FORMAT": "png"}),
    ({"bg_color": "green"}, "photo_background_auto", {"COLOR": "008000"}),
    ({"format": "jpg"}, "photo_background_auto", {"COLOR": "ffffff", "FORMAT": "jpeg"}),
    ({"bg_color": "00000080"}, "photo_background_auto", {"FORMAT": "png"}),  # translucent: not JPEG
])
def test_fields_become_our_operations(client: TestClient, key: tuple[int, str], data: dict, ensemble: str,
                                      sent: dict) -> None:
    response = post(client, key[1], **data)
    assert response.status_code == 200, response.text
    triton = client.app.state.triton
    assert triton.ensembles[-1] == ensemble
    assert {name: triton.inputs[-1][name] for name in sent} == sent
    assert response.headers["X-Type"] in ("person", "product", "other")  # auto: what the choice found
    assert response.headers["X-Credits-Charged"] and response.headers["X-RateLimit-Limit"]


def test_size_preview_keeps_a_quarter_megapixel(client: TestClient, key: tuple[int, str]) -> None:
    assert post(client, key[1], BIG, size="preview").status_code == 200
    side = client.app.state.triton.inputs[-1]["MAX_SIDE"]
    assert side == 577 and side * round(side * 0.75) <= 250_000  # 1600x1200 -> 577x433
    assert post(client, key[1], BIG, size="full").status_code == 200
    assert client.app.state.triton.inputs[-1]["MAX_SIDE"] == 0


def test_a_background_image_goes_to_the_background_edit(client: TestClient, key: tuple[int, str]) -> None:
    response = client.post("/v1.0/removebg", headers={"X-Api-Key": key[1]},
                           files={"image_file": ("me.jpg", PHOTO, "image/jpeg"),
                                  "bg_image_file": ("beach.jpg", BIG, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert client.app.state.triton.inputs[-1]["NEW_BACKGROUND"] == BIG


def test_base64_in_json_and_the_json_answer(client: TestClient, key: tuple[int, str]) -> None:
    response = client.post("/v1.0/removebg", json={"image_file_b64": base64.b64encode(PHOTO).decode(),
                                                   "size": "auto"},
                           headers={"X-Api-Key": key[1], "Accept": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert base64.b64decode(data["result_b64"]) == b"\x89PNG fake"  # what the scripted ensemble answered
    assert set(data) == {"result_b64", "foreground_top", "foreground_left", "foreground_width", "foreground_height"}
    form = client.post("/v1.0/removebg", data={"image_file_b64": base64.b64encode(PHOTO).decode()},
                       headers={"X-Api-Key": key[1]})
    assert form.status_code == 200 and form.content == b"\x89PNG fake"


@pytest.mark.parametrize(("data", "status", "says"), [
    ({"image_url": "https://example.com/a.jpg"}, 400, "fetches nothing from the network"),
    ({"bg_image_url": "https://example.com/b.jpg"}, 400, "upload the file"),
    ({"format": "zip"}, 400, "format=zip is not supported"),
    ({"crop": "true"}, 400, "crop=true is not supported"),
    ({"scale": "50%"}, 400, "scale"),
    ({"roi": "10% 10% 90% 90%"}, 400, "roi"),
    ({"size": "huge"}, 400, "size='huge' is not one of"),
    ({"type": "tree"}, 400, "type='tree'"),
    ({"bg_color": "notacolour"}, 400, "not a hex colour"),
    ({"shadow_type": "car"}, 400, "unknown field(s) 'shadow_type'"),
])
def test_refusals_are_remove_bg_errors_before_triton_and_unbilled(client: TestClient, key: tuple[int, str],
                                                                  data: dict, status: int, says: str) -> None:
    tenant_id, api_key = key
    response = post(client, api_key, **data)
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert says in error["title"] and error["code"]
    assert response.headers["X-Request-Id"]
    assert client.app.state.triton.calls == 0 and balance(client, tenant_id) == 100


def test_auth_and_bad_images_use_remove_bg_status_codes(client: TestClient, key: tuple[int, str]) -> None:
    unknown = post(client, "not-a-key")
    assert unknown.status_code == 403 and unknown.json()["errors"][0]["code"] == "invalid_api_key"
    broken = post(client, key[1], PHOTO[:100])
    assert broken.status_code == 400 and broken.json()["errors"][0]["code"] == "truncated_image"
    missing = client.post("/v1.0/removebg", data={"size": "auto"}, headers={"X-Api-Key": key[1]})
    assert missing.status_code == 400 and "no image" in missing.json()["errors"][0]["title"]
    _, _, poor = tenant_key(client, "poor", credits=0)
    assert post(client, poor).status_code == 402
