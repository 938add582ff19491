"""The edits' parameters at the gateway (TestClient, scripted Triton): each bad one is a 400 naming it, before
any Triton call and without a charge; good ones reach the ensemble as the declared tensors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gateway.errors import UnfitParameter
from tests.conftest import Database, jpeg_bytes
from tests.unit.app_client import JPEG, PHOTO, balance, make_client, tenant_key

BACKGROUND = jpeg_bytes(np.full((40, 30, 3), 200, np.uint8))


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    yield from make_client(database)


@pytest.fixture
def key(client: TestClient) -> tuple[int, str]:
    tenant_id, _, key = tenant_key(client, credits=100)
    return tenant_id, key


def post(client: TestClient, key: str, path: str, files: dict | None = None, **headers: str):  # noqa: ANN201
    if files is not None:
        return client.post(path, files={"image": ("me.jpg", PHOTO, "image/jpeg"), **files},
                           headers={"X-API-Key": key, **headers})
    return client.post(path, content=PHOTO, headers={**JPEG, "X-API-Key": key, **headers})


@pytest.mark.parametrize(("path", "named"), [
    ("/v1/background?color=blue", "hex RRGGBB"),
    ("/v1/background?color=12345", "hex RRGGBB"),
    ("/v1/crop?aspect=0:1", "W:H"),
    ("/v1/crop?aspect=16x9", "W:H"),
    ("/v1/layers?include=depth,shadow", "comma-separated list"),
    ("/v1/bokeh?aperture=11", "aperture"),
    ("/v1/bokeh?focus_depth=1.5", "focus_depth"),
    ("/v1/bokeh?focus_x=-3&focus_y=4", "focus_x"),
    ("/v1/adjust?fg_saturation=2", "fg_saturation"),
    ("/v1/adjust?by=luck", "by"),
    ("/v1/crop?width=0&height=10", "width"),
    ("/v1/background?blur=1000", "blur"),
    ("/v1/mask?format=gif", "format"),
    ("/v1/mask?quality=0", "quality"),
    ("/v1/cutout?format=jpeg", "format=webp"),
])
def test_a_bad_parameter_is_a_400_naming_it_with_no_triton_call_and_no_charge(
        client: TestClient, key: tuple[int, str], path: str, named: str) -> None:
    tenant_id, api_key = key
    response = post(client, api_key, path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert named in response.json()["error"]["message"]
    assert client.app.state.triton.calls == 0 and balance(client, tenant_id) == 100


@pytest.mark.parametrize(("path", "files", "named"), [
    ("/v1/background", None, "exactly one of color or blur or background"),
    ("/v1/background?color=ffffff&blur=4", None, "color and blur"),
    ("/v1/background?color=ffffff", {"background": ("b.jpg", BACKGROUND, "image/jpeg")}, "color and background"),
    ("/v1/crop", None, "exactly one of aspect or width with height"),
    ("/v1/crop?width=100", None, "width and height go together; height is missing"),
    ("/v1/bokeh?focus_x=10", None, "focus_x and focus_y go together; focus_y is missing"),
    ("/v1/bokeh?focus_x=10&focus_y=5&focus_depth=0.5", None,
     "at most one of focus_x with focus_y or focus_depth; got focus_x with focus_y and focus_depth"),
])
def test_alternatives_need_exactly_one(client: TestClient, key: tuple[int, str], path: str, files: dict | None,
                                       named: str) -> None:
    tenant_id, api_key = key
    response = post(client, api_key, path, files)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]["message"]
    assert client.app.state.triton.calls == 0 and balance(client, tenant_id) == 100


def test_the_background_part_obeys_the_photos_checks(client: TestClient, key: tuple[int, str]) -> None:
    tenant_id, api_key = key
    response = post(client, api_key, "/v1/background", {"background": ("b.jpg", b"not an image", "image/jpeg")})
    assert response.status_code == 415, response.text
    assert "'background' part" in response.json()["error"]["message"]
    truncated = post(client, api_key, "/v1/background", {"background": ("b.jpg", BACKGROUND[:200], "image/jpeg")})
    assert truncated.status_code == 422 and "'background' part" in truncated.json()["error"]["message"]
    assert client.app.state.triton.calls == 0 and balance(client, tenant_id) == 100


def test_edits_reach_the_ensemble_as_the_declared_tensors(client: TestClient, key: tuple[int, str]) -> None:
    _, api_key = key
    triton = client.app.state.triton
    ok = post(client, api_key, "/v1/background?model=object&fit=contain&format=webp&quality=70",
              {"background": ("b.jpg", BACKGROUND, "image/jpeg")})
    assert ok.status_code == 200, ok.text
    assert ok.headers["content-type"] == "image/webp"
    assert triton.ensembles[-1] == "photo_background_object"
    sent = triton.inputs[-1]
    assert sent["NEW_BACKGROUND"] == BACKGROUND and sent["FIT"] == "contain"
    assert sent["FORMAT"] == "webp" and sent["QUALITY"] == 70
    assert sent["COLOR"] == "" and sent["BLUR"] == -1.0  # optional parameters left out: "not given"
    bokeh = post(client, api_key, "/v1/bokeh?focus_x=10&focus_y=20")
    assert bokeh.status_code == 200 and triton.inputs[-1]["FOCUS_X"] == 10 and triton.inputs[-1]["FOCUS_DEPTH"] == -1.0
    crop = post(client, api_key, "/v1/crop?aspect=4:5")
    assert crop.headers["X-Crop-Box"] == "4,0,48,60" and triton.inputs[-1]["ASPECT"] == "4:5"


@pytest.mark.parametrize(("path", "accept", "media"), [
    ("/v1/mask", "", "image/png"),
    ("/v1/mask", "*/*", "image/png"),
    ("/v1/mask", "image/webp,image/png;q=0.5", "image/webp"),
    ("/v1/mask", "image/png;q=0.4, image/jpeg", "image/jpeg"),
    ("/v1/cutout", "image/jpeg, image/webp;q=0.9", "image/webp"),  # JPEG cannot carry the cutout's alpha
    ("/v1/cutout", "image/jpeg", "image/png"),
    ("/v1/mask?format=png", "image/webp", "image/png"),  # an explicit format wins
])
def test_format_auto_follows_the_accept_header(client: TestClient, key: tuple[int, str], path: str, accept: str,
                                               media: str) -> None:
    response = post(client, key[1], path, **({"Accept": accept} if accept else {}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert client.app.state.triton.inputs[-1]["FORMAT"] == media.split("/")[1]


def test_layers_answer_json(client: TestClient, key: tuple[int, str]) -> None:
    response = post(client, key[1], "/v1/layers?include=matte")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert client.app.state.triton.inputs[-1] == {"MAX_SIDE": 0, "INCLUDE": "matte"}


def test_a_parameter_the_photo_refutes_is_a_400_not_billed_but_counted(
        client: TestClient, key: tuple[int, str], monkeypatch: pytest.MonkeyPatch) -> None:
    tenant_id, api_key = key
    recorded: list[int] = []
    monkeypatch.setattr(client.app.state.unbilled_limit, "record", recorded.append)
    client.app.state.triton.error = UnfitParameter("the focus point (900, 10) is outside the upright photo",
                                                   code="invalid_parameter")
    response = post(client, api_key, "/v1/bokeh?focus_x=900&focus_y=10")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parameter"
    assert balance(client, tenant_id) == 100
    assert recorded == [tenant_id]  # inference ran: it counts against the unbilled-failure allowance
