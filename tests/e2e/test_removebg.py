"""``/v1.0/removebg`` end to end with a real third-party remove.bg client (``removebg`` from PyPI, MIT),
pointed at our gateway by its base URL, and with requests shaped as remove.bg's documented examples."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import removebg.removebg as third_party
from PIL import Image

from tests.conftest import jpeg_bytes
from tests.e2e.conftest import BOOTSTRAP_KEY

pytestmark = pytest.mark.e2e

# In the 512x512 astronaut portrait: her torso, and the wall behind her on the right.
PERSON = (slice(256, 448), slice(96, 288))
BACKDROP = (slice(0, 256), slice(352, 512))


@pytest.fixture
def client(gateway_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> third_party.RemoveBg:
    monkeypatch.setattr(third_party, "API_ENDPOINT", f"{gateway_url}/v1.0/removebg")  # "change the base URL"
    return third_party.RemoveBg(BOOTSTRAP_KEY, str(tmp_path / "removebg-errors.log"))


def test_the_third_party_client_cuts_out_the_person(client: third_party.RemoveBg, astronaut, tmp_path: Path) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg_bytes(astronaut, quality=92))
    client.remove_background_from_img_file(str(photo), size="regular")  # regular: up to 0.25 MP
    result = Image.open(f"{photo}_no_bg.png")
    assert result.mode == "RGBA" and result.size == (500, 500)  # 512x512 = 0.26 MP -> 0.25 MP
    alpha = np.asarray(result)[..., 3]
    person = tuple(slice(s.start * 500 // 512, s.stop * 500 // 512) for s in PERSON)
    backdrop = tuple(slice(s.start * 500 // 512, s.stop * 500 // 512) for s in BACKDROP)
    assert alpha[person].mean() > 240 and alpha[backdrop].mean() < 20


def test_the_third_party_client_puts_a_colour_behind_from_base64(client: third_party.RemoveBg, astronaut,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "on-blue.png"
    b64 = base64.b64encode(jpeg_bytes(astronaut, quality=92)).decode()
    client.remove_background_from_base64_img(b64, size="full", new_file_name=str(out), bg_color="81d4fa")
    result = Image.open(out)
    assert result.format == "JPEG" and result.size == (512, 512)  # format auto: opaque, so JPEG
    wall = np.asarray(result)[BACKDROP].reshape(-1, 3).mean(axis=0)
    assert np.abs(wall - (0x81, 0xD4, 0xFA)).max() < 12


def test_documented_json_request_and_answer(gateway_url: str, astronaut) -> None:
    photo = jpeg_bytes(astronaut, quality=92)
    response = httpx.post(f"{gateway_url}/v1.0/removebg", timeout=60,
                          headers={"X-Api-Key": BOOTSTRAP_KEY, "Accept": "application/json"},
                          json={"image_file_b64": base64.b64encode(photo).decode(), "size": "auto", "type": "person"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    cutout = Image.open(io.BytesIO(base64.b64decode(data["result_b64"])))
    assert cutout.mode == "RGBA" and cutout.size == (512, 512)
    left, top, width, height = (data[f"foreground_{k}"] for k in ("left", "top", "width", "height"))
    assert 0 <= left < 200 and 0 <= top < 60 and width > 300 and height > 400  # the astronaut fills the frame
    assert response.headers["X-Type"] == "person"
    assert (response.headers["X-Width"], response.headers["X-Height"]) == ("512", "512")
    assert int(response.headers["X-Credits-Charged"]) >= 1 and response.headers["X-RateLimit-Remaining"]
    assert response.headers["X-Foreground-Width"] == str(width)


def test_remove_bg_errors(gateway_url: str, astronaut) -> None:
    url = f"{gateway_url}/v1.0/removebg"
    refused = httpx.post(url, headers={"X-Api-Key": BOOTSTRAP_KEY}, timeout=60,
                         data={"image_url": "https://www.remove.bg/example.jpg", "size": "auto"})
    assert refused.status_code == 400
    assert "upload the file" in refused.json()["errors"][0]["title"]
    unknown = httpx.post(url, headers={"X-Api-Key": "wrong"}, timeout=60,
                         files={"image_file": ("a.jpg", jpeg_bytes(astronaut), "image/jpeg")})
    assert unknown.status_code == 403 and unknown.json()["errors"][0]["code"] == "invalid_api_key"
